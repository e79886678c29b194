"""Publishing records to agent.traces at a steady rate (used by simulate, bench and tests)."""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from connectors.kafka import producer

if TYPE_CHECKING:
    from schemas.settings import Settings


async def publish(settings: "Settings", topic: str, records: Iterable[tuple[bytes | None, bytes]], *,
                  rate: float | None = None, on_sent: Callable[[int], None] | None = None,
                  record_time: list[float] | None = None) -> int:
    """Send records (key, value); ``rate`` in records/s (None = as fast as possible). Waits for every ack.

    ``record_time`` gets the monotonic send time of each record, for latency measurement.
    """
    sent = 0
    started = time.monotonic()
    pending: list[Any] = []
    async with producer(settings) as prod:
        for key, value in records:
            if rate:
                ahead = started + sent / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if record_time is not None:
                record_time.append(time.time())
            pending.append(await prod.send(topic, value=value, key=key))
            sent += 1
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
            if on_sent and sent % 200 == 0:
                on_sent(200)
        await asyncio.gather(*pending)
        if on_sent:
            on_sent(sent % 200)
    return sent
