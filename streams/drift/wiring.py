"""Attach drift monitoring and calibration to the Faust worker (called from ``streams.app.create_app``)."""
from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from schemas.tables import CALIBRATION_TABLE, DRIFT_EVENTS_TABLE
from schemas.topics import DRIFT, DRIFT_ERASE, FEEDBACK_DLQ, LABELS, TRAIN_REQUESTS
from streams.drift.config import DriftConfig
from streams.drift.hook import DriftHook
from streams.drift.metrics import DriftMetrics
from streams.drift.state import KafkaStateStore, StateFile
from streams.feedback import FeedbackDeadLetters

if TYPE_CHECKING:
    import faust

    from schemas.settings import Settings


def build_hook(settings: "Settings", registry: CollectorRegistry, send: Any, cfg: DriftConfig) -> DriftHook | None:
    """The hook for ``TraceHandler.hooks`` (None when drift monitoring is disabled in the drift config)."""
    from connectors.delta_sink import DeltaSink, table_sink
    from connectors.erasure_key import erasure_keys

    if not cfg.enabled:
        return None
    worker = f"{settings.app_id}@{socket.gethostname()}"

    def sink(table: str) -> DeltaSink:
        return table_sink(settings, table, table)  # writer name = table: the transaction ids it always had

    path = cfg.state_path or str(settings.home / "worker" / f"drift-state-{settings.app_id}-{socket.gethostname()}.json")
    return DriftHook(cfg, send=send, metrics=DriftMetrics(registry), drift_topic=settings.topic(DRIFT),
                     train_topic=settings.topic(TRAIN_REQUESTS), labels_topic=settings.topic(LABELS),
                     events_sink=sink(DRIFT_EVENTS_TABLE), calibration_sink=sink(CALIBRATION_TABLE),
                     state=KafkaStateStore(settings, settings.app_id, StateFile(path)), worker=worker,
                     dead_letters=FeedbackDeadLetters(send, settings.topic(FEEDBACK_DLQ), registry),
                     trace_key=erasure_keys(settings).trace)


def install(app: "faust.App", handler: Any, settings: "Settings", registry: CollectorRegistry,
            cfg: DriftConfig) -> DriftHook | None:
    """Register the hook, the label and erasure-command follower tasks and a final state save at shutdown."""
    from streams.drift.labels import follow_labels

    hook = build_hook(settings, registry, handler.send, cfg)
    if hook is None:
        return None
    handler.hooks.append(hook)
    stop = asyncio.Event()

    @app.task
    async def _labels() -> None:
        await follow_labels(settings, settings.topic(LABELS), dict(hook.label_offsets), hook.on_labels, stop)

    @app.task
    async def _erasures() -> None:
        await follow_labels(settings, settings.topic(DRIFT_ERASE), dict(hook.erase_offsets), hook.on_erase, stop,
                            unknown="earliest")

    @app.on_before_shutdown.connect
    async def _save(app_: Any, **_: Any) -> None:
        stop.set()
        await hook.save()

    return hook
