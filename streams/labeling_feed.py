"""The labeling UI's Kafka edges: ``judge.human_queue`` → servable items in the DB, the DB outbox → Kafka
(``feedback.labels`` / ``feedback.preferences``) + the audit trail + SFT examples, and the ``labels`` lander.

Guarantees: the queue consumer commits its offsets only after the DB commit (a crash re-reads, and items are
idempotent on id); an outbox row is marked published only after the broker acknowledged it (a crash re-sends,
and deterministic label/preference ids let the landers drop the copy); corrections land in ``sft_examples``
through a ``DeltaSink`` keyed by the outbox id, so a re-run writes none twice.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from schemas.escalation import HumanQueueItem
from schemas.preference import Label
from schemas.topics import HUMAN_QUEUE, LABELS, PREFERENCES
from schemas.verdict import SourceRef
from streams.feedback import parse
from streams.labeling import item_from_queue

if TYPE_CHECKING:
    from connectors.labeling_db import LabelStore
    from schemas.labeling import LabelingConfig
    from schemas.settings import Settings

log = logging.getLogger("alignloop.ui.feed")
SFT_SOURCE_TOPIC = "ui.corrections"  # the pseudo source of correction rows (DeltaSink offsets = outbox ids)


def items_from_records(msgs: list[Any], cfg: "LabelingConfig") -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Items from raw queue records, and counts of what was not servable (by reason)."""
    items, skipped = [], {}
    for m in msgs:
        hq = parse(HumanQueueItem, m.value)
        if isinstance(hq, tuple):
            skipped[hq[0]] = skipped.get(hq[0], 0) + 1
            continue
        row = item_from_queue(hq, cfg)
        if row is None:
            skipped["no_trace"] = skipped.get("no_trace", 0) + 1
        else:
            items.append(row)
    return items, skipped


async def consume_queue(settings: "Settings", store: "LabelStore", cfg: "LabelingConfig", stop: asyncio.Event,
                        *, batch: int = 2000, on_batch: Any = None, ready: asyncio.Event | None = None) -> int:
    """Follow judge.human_queue into the DB until ``stop``; returns new items. ``on_batch(new, skipped,
    seconds)`` is told about each batch (metrics); ``ready`` is set once partitions are assigned."""
    from aiokafka import AIOKafkaConsumer

    from connectors.kafka import aiokafka_client_kwargs

    consumer = AIOKafkaConsumer(settings.topic(HUMAN_QUEUE), **aiokafka_client_kwargs(settings),
                                group_id=f"{settings.app_id}-ui", enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    total = 0
    try:
        while not stop.is_set():
            got = await consumer.getmany(timeout_ms=200, max_records=batch)
            if ready is not None and consumer.assignment():
                ready.set()
            msgs = [m for ms in got.values() for m in ms]
            if not msgs:
                continue
            t0 = time.monotonic()
            items, skipped = items_from_records(msgs, cfg)
            new = await asyncio.to_thread(store.add_items, items)
            await consumer.commit()  # after the DB commit: a crash in between re-reads, add_items skips them
            total += new
            if on_batch:
                on_batch(new, skipped, time.monotonic() - t0)
    finally:
        await consumer.stop()
    return total


class OutboxDrain:
    """Publishes the outbox: labels and preferences through an idempotent producer, audit entries through the
    shared ``AuditTrail``, corrections into ``sft_examples``. Marks rows published only once they are safe."""

    def __init__(self, settings: "Settings", store: "LabelStore", *, audit: Any = None):
        self.settings, self.store = settings, store
        self.audit = audit  # an AuditTrail (or anything with ``append``); None: audit rows are dropped, logged
        self.counts = {"label": 0, "preference": 0, "audit": 0, "sft": 0}
        self._sft: Any = None

    def _sft_sink(self) -> Any:
        if self._sft is None:
            from connectors.delta_sink import table_sink
            from schemas.tables import SFT_EXAMPLES_TABLE

            self._sft = table_sink(self.settings, SFT_EXAMPLES_TABLE, "ui-corrections")
        return self._sft

    async def once(self, prod: Any) -> int:
        rows = await asyncio.to_thread(self.store.pending)
        if not rows:
            return 0
        topics = {"label": self.settings.topic(LABELS), "preference": self.settings.topic(PREFERENCES)}
        futures, sft = [], []
        for r in rows:
            if r.kind in topics:
                futures.append(await prod.send(topics[r.kind], key=r.key.encode(),
                                               value=_json(r.payload)))
            elif r.kind == "sft":
                sft.append(r)
        if futures:
            await asyncio.gather(*futures)
        for r in rows:  # the audit chain is sequential by nature
            if r.kind == "audit":
                if self.audit is not None:
                    p = r.payload
                    await self.audit.append(actor=p["actor"], action=p["action"], subject=p["subject"],
                                            details={**p["details"], "ref": r.id})
                else:
                    log.warning("no audit trail configured; dropping %s by %s", r.payload["action"],
                                r.payload["actor"])
        if sft:
            await asyncio.to_thread(self._write_sft, sft)
        for r in rows:
            self.counts[r.kind] = self.counts.get(r.kind, 0) + 1
        await asyncio.to_thread(self.store.mark_published, [r.id for r in rows])
        return len(rows)

    def _write_sft(self, rows: list[Any]) -> None:
        sink = self._sft_sink()
        for r in rows:
            src = SourceRef(topic=SFT_SOURCE_TOPIC, partition=0, offset=r.id)
            if sink.is_new(src):
                row = dict(r.payload)
                row["created_at"] = datetime.fromisoformat(row["created_at"])
                row.update(src_topic=SFT_SOURCE_TOPIC, src_partition=0, src_offset=r.id)
                sink.add(row, src)
        sink.flush()

    async def run(self, stop: asyncio.Event, *, interval_s: float = 0.2) -> None:
        from connectors.kafka import producer

        async with producer(self.settings) as prod:
            while not stop.is_set():
                try:
                    n = await self.once(prod)
                except Exception as exc:  # broker blip: the rows stay pending and go next time
                    log.warning("outbox drain failed (%s); retrying", exc)
                    n = 0
                if not n:
                    try:
                        await asyncio.wait_for(stop.wait(), interval_s)
                    except asyncio.TimeoutError:
                        pass
            await self.once(prod)


def _json(payload: dict[str, Any]) -> bytes:
    import json

    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def label_row(lab: Label, src: SourceRef) -> dict[str, Any]:
    import json

    return {"label_id": lab.label_id, "trace_id": lab.trace_id, "policy_id": lab.policy_id, "source": lab.source,
            "annotator": lab.annotator, "passed": lab.passed, "scores_json": json.dumps(lab.scores, sort_keys=True),
            "confidence": lab.confidence, "rationale": lab.rationale, "judge_version": lab.judge_version,
            "date": lab.created_at.date().isoformat(), "src_topic": src.topic, "src_partition": src.partition,
            "src_offset": src.offset, "created_at": lab.created_at.astimezone(timezone.utc)}


async def land_labels(settings: "Settings", stop: asyncio.Event, *, batch: int = 500, registry: Any = None) -> int:
    """Consume feedback.labels into the ``labels`` table until ``stop`` (like ``land_preferences``): one row per
    label id, bad records dead-lettered, Kafka offsets committed after the Delta commit."""
    from schemas.tables import LABELS_TABLE
    from streams.feedback import land_feedback

    return await land_feedback(settings, stop, topic=LABELS, model=Label, table=LABELS_TABLE,
                               writer="feedback-labels", group=f"{settings.app_id}-labels", id_column="label_id",
                               row_of=label_row, batch=batch, registry=registry)
