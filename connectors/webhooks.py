"""Delivering one webhook: a Standard Webhooks signed POST (webhook-id, webhook-timestamp, webhook-signature),
retried with exponential backoff on a connection error, a timeout, 429 or 5xx; a 4xx other than 408/429 is final
(the receiver refused the message, a retry would not change that)."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

RETRYABLE = {408, 409, 425, 429}


@dataclass
class Delivery:
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""


def signed_headers(secret: str, msg_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    from standardwebhooks import Webhook

    ts = now or datetime.now(timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(ts.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, ts, body), "content-type": "application/json"}


async def deliver(client: Any, url: str, secret: str, msg_id: str, body: dict[str, Any], *, timeout_s: float,
                  max_attempts: int, delay: Callable[[int], float], extra_headers: dict[str, str] | None = None,
                  on_retry: Callable[[], None] | None = None) -> Delivery:
    """POST ``body`` until a 2xx or ``max_attempts``; each attempt re-signed with a fresh timestamp (receivers
    reject timestamps older than 5 minutes, and backoff can exceed that)."""
    import httpx

    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    result = Delivery(ok=False, attempts=0)
    for attempt in range(1, max_attempts + 1):
        result.attempts = attempt
        headers = {**(extra_headers or {}), **signed_headers(secret, msg_id, text)}
        try:
            resp = await asyncio.wait_for(client.post(url, content=text, headers=headers, timeout=timeout_s),
                                          timeout_s + 1)  # a body trickled byte by byte still ends
            result.status, result.error = resp.status_code, f"HTTP {resp.status_code}"
            if 200 <= resp.status_code < 300:
                result.ok, result.error = True, ""
                return result
            if 400 <= resp.status_code < 500 and resp.status_code not in RETRYABLE:
                return result
        except (httpx.HTTPError, asyncio.TimeoutError) as exc:
            result.status, result.error = None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        if attempt < max_attempts:
            if on_retry:
                on_retry()
            await asyncio.sleep(delay(attempt))
    return result
