"""Removing what a benchmark created on the cluster."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.settings import Settings


def delete_topics(settings: "Settings") -> None:
    """Delete every topic carrying this run's prefix (best effort)."""
    from aiokafka.admin import AIOKafkaAdminClient

    from connectors.kafka import aiokafka_client_kwargs

    async def run() -> None:
        admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(settings))
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if settings.topic_prefix and t.startswith(settings.topic_prefix)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    try:
        asyncio.run(run())
    except Exception:  # cleanup must never hide the figures
        pass
