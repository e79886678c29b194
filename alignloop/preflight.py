"""What a long-running command checks before it starts, so a mistake ends in one line naming the fix (exit 2)
instead of a traceback or a process that retries forever: the broker is reachable, flags are in range, the
metrics port can be bound."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from alignloop.errors import UserError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from schemas.settings import Settings

LOGLEVELS = ("debug", "info", "warning", "error", "critical")
BROKER_TIMEOUT_S = 15.0


def check_loglevel(loglevel: str) -> str:
    if loglevel.lower() not in LOGLEVELS:
        raise UserError(f"--loglevel must be one of {', '.join(LOGLEVELS)} (got {loglevel!r})")
    return loglevel.lower()


def check_port(port: int, flag: str = "--metrics-port") -> int:
    if not 0 <= port <= 65535:
        raise UserError(f"{flag} must be between 0 and 65535, 0 disables /metrics (got {port})")
    return port


def start_metrics(port: int, registry: "CollectorRegistry") -> None:
    """Serve ``registry`` on /metrics at ``port`` (0: not at all)."""
    from prometheus_client import start_http_server

    if not check_port(port):
        return
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:
        raise UserError(f"cannot serve /metrics on port {port} ({exc.strerror}); pick a free port with "
                        "--metrics-port or ALIGNLOOP_METRICS_PORT (0 disables)") from None


async def _bootstrap(settings: "Settings") -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from connectors.kafka import aiokafka_client_kwargs

    admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(settings), request_timeout_ms=int(BROKER_TIMEOUT_S * 1000))
    try:
        await asyncio.wait_for(admin.start(), BROKER_TIMEOUT_S)
    finally:
        await admin.close()


def require_broker(settings: "Settings") -> None:
    """A UserError within ``BROKER_TIMEOUT_S`` when no broker answers at ``settings.kafka_bootstrap``. Runs on a
    loop of its own, so the command's own loop (Faust's, asyncio.run's) starts fresh afterwards."""
    log = logging.getLogger("aiokafka")
    level = log.level
    log.setLevel(logging.CRITICAL)  # its per-attempt "Unable connect" lines would repeat the one we print
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_bootstrap(settings))
    except Exception as exc:  # KafkaConnectionError, a timeout, a TLS or SASL failure
        why = f"no answer in {BROKER_TIMEOUT_S:.0f} s" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
        raise UserError(f"cannot reach the Kafka broker at {settings.kafka_bootstrap} ({why}); start one "
                        "(`alignloop broker start`) or fix ALIGNLOOP_KAFKA_BOOTSTRAP") from None
    finally:
        loop.close()
        log.setLevel(level)
