"""`alignloop webhooks run`: drift events, training and gate results, rollout decisions and erasures, delivered to
the configured HTTP webhooks.

Guarantee: at least once, in order per source partition. Offsets are committed only after every delivery a
record raised succeeded or was dead-lettered to ``webhooks.dlq`` (acknowledged by Kafka), so a crash redelivers;
the ``webhook-id`` is the same on redelivery and receivers drop duplicates. A hanging receiver costs at most
``max_attempts`` timeouts, then its message goes to the DLQ and the stream moves on.
"""
from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter

from connectors.webhooks import deliver
from schemas.settings import ConfigError, load_yaml_config
from schemas.topics import WEBHOOKS_DLQ
from schemas.webhooks import WebhookDeadLetter, WebhooksConfig, WebhookTarget
from streams.webhooks import SOURCES, backoff, event_of, payload, webhook_id

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_CONFIG = Path("configs/webhooks.yaml")


def load_webhooks(path: Path) -> WebhooksConfig:
    if not path.is_file():
        raise ConfigError(f"webhooks config {path} not found; write one (see configs/webhooks.yaml) or pass --config")
    cfg = load_yaml_config(WebhooksConfig, path, "webhooks config", "fix the file (docs/integrations.md)")
    if not cfg.webhooks:
        raise ConfigError(f"webhooks config {path} names no webhooks; add one under webhooks:")
    return cfg


def secrets(cfg: WebhooksConfig, env: dict[str, str]) -> dict[str, str]:
    """{target name: secret} from the environment; a one-line error for a missing or malformed secret."""
    from standardwebhooks import Webhook

    out = {}
    for t in cfg.webhooks:
        value = env.get(t.secret_env)
        if not value:
            raise ConfigError(f"webhook {t.name}: set {t.secret_env} to its Standard Webhooks secret (whsec_<base64>)")
        try:
            Webhook(value)
        except Exception:
            raise ConfigError(f"webhook {t.name}: {t.secret_env} is not a whsec_<base64> secret") from None
        out[t.name] = value
    return out


class WebhookRunner:
    def __init__(self, settings: "Settings", cfg: WebhooksConfig, secret_of: dict[str, str],
                 registry: CollectorRegistry | None = None) -> None:
        self.settings, self.cfg, self.secret_of = settings, cfg, secret_of
        self.registry = registry or CollectorRegistry()
        self.outcomes = Counter("alignloop_webhook_deliveries", "Webhook deliveries by target and outcome "
                                "(delivered | retried | dead_lettered)", ["webhook", "outcome"],
                                registry=self.registry)
        self.logical = {settings.topic(t): t for t in SOURCES}

    def targets_for(self, event_type: str) -> list[WebhookTarget]:
        return [t for t in self.cfg.webhooks if event_type in t.events]

    async def handle(self, client: Any, producer: Any, msg: Any) -> None:
        """Deliver every webhook one record raises; dead-letter the failures (their acks awaited)."""
        event = event_of(self.logical.get(msg.topic, ""), msg.value or b"")
        if event is None:
            return
        body = payload(event)
        futures = []
        targets = self.targets_for(event.type)
        results = await asyncio.gather(*[deliver(
            client, str(t.url), self.secret_of[t.name], webhook_id(t.name, msg.topic, msg.partition, msg.offset),
            body, timeout_s=t.timeout_s, max_attempts=t.max_attempts, extra_headers=t.headers,
            delay=lambda a, t=t: backoff(a, t.backoff_s, t.max_backoff_s),
            on_retry=lambda t=t: self.outcomes.labels(t.name, "retried").inc()) for t in targets])
        for t, res in zip(targets, results):
            if res.ok:
                self.outcomes.labels(t.name, "delivered").inc()
                continue
            self.outcomes.labels(t.name, "dead_lettered").inc()
            letter = WebhookDeadLetter(webhook=t.name, url=str(t.url), event_type=event.type, payload=body,
                                       webhook_id=webhook_id(t.name, msg.topic, msg.partition, msg.offset),
                                       attempts=res.attempts, last_error=res.error, last_status=res.status,
                                       src_topic=msg.topic, src_partition=msg.partition, src_offset=msg.offset,
                                       failed_at=datetime.now(timezone.utc))
            log.warning("webhook %s: %s after %d attempts; dead-lettered", t.name, res.error, res.attempts)
            futures.append(await producer.send(self.settings.topic(WEBHOOKS_DLQ), letter.model_dump_json().encode(),
                                               key=t.name.encode()))
        for f in futures:
            await f

    async def run(self, *, stop_when_idle_s: float | None = None) -> None:
        """Consume until cancelled (or, for tests and one-shot catch-up runs, until idle that long)."""
        import httpx
        from aiokafka import AIOKafkaConsumer

        from connectors.kafka import aiokafka_client_kwargs, producer

        consumer = AIOKafkaConsumer(*self.logical, **aiokafka_client_kwargs(self.settings),
                                    group_id=f"{self.settings.app_id}-webhooks", enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        idle = 0.0
        try:
            async with producer(self.settings) as prod, httpx.AsyncClient() as client:
                while True:
                    batch = await consumer.getmany(timeout_ms=500, max_records=100)
                    if not batch:
                        idle += 0.5
                        if stop_when_idle_s is not None and idle >= stop_when_idle_s:
                            return
                        continue
                    idle = 0.0
                    for tp, msgs in batch.items():
                        for m in msgs:  # in order per partition: one record's deliveries before the next
                            await self.handle(client, prod, m)
                        await consumer.commit({tp: msgs[-1].offset + 1})
        finally:
            await consumer.stop()


def run_webhooks(settings: "Settings", config: Path, *, metrics_port: int = 0,
                 stop_when_idle_s: float | None = None) -> WebhookRunner:
    cfg = load_webhooks(config)
    runner = WebhookRunner(settings, cfg, secrets(cfg, dict(os.environ)))
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=runner.registry)
    asyncio.run(runner.run(stop_when_idle_s=stop_when_idle_s))
    return runner
