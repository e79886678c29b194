"""Landing curated rows in Delta, idempotently.

``CurationHook`` (a ``TraceHandler.hooks`` member) writes SFT candidates and fast-judged candidate preferences
per batch; ``land_preferences`` consumes ``feedback.preferences`` (LLM pairwise, SDK, humans) into the
``preferences`` table and commits Kafka offsets only after the Delta commit. Both use ``DeltaSink`` transactions
per source partition, so a replay skips what already landed and never duplicates a row.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from connectors.delta_sink import DeltaSink, read_table
from schemas.preference import Preference
from schemas.tables import PREFERENCES_TABLE, SFT_EXAMPLES_TABLE, TABLES
from schemas.topics import PREFERENCES
from schemas.verdict import JudgedTrace, SourceRef
from streams.curation.rules import CurationConfig, judged_candidate_preference, preference_row, sft_row
from streams.judges.base import Judge

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger("alignloop.curate")


def make_sink(settings: "Settings", table: str, name: str) -> DeltaSink:
    schema, partition_by = TABLES[table]
    return DeltaSink(settings.table_uri(table), schema, partition_by, name=f"{settings.app_id}-{name}",
                     storage_options=settings.lake_storage_options or None)


class CurationHook:
    def __init__(self, sft: DeltaSink, prefs: DeltaSink, judges: list[Judge], cfg: CurationConfig | None = None):
        self.sft, self.prefs, self.judges = sft, prefs, judges
        self.cfg = cfg or CurationConfig()
        self.counts = {"sft": 0, "preferences": 0}

    def rows(self, judged: list[JudgedTrace]) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                       dict[tuple[str, int], int]]:
        offsets: dict[tuple[str, int], int] = {}
        sft, prefs = [], []
        for jt in judged:
            src = jt.source
            key = (src.topic, src.partition)
            offsets[key] = max(src.offset, offsets.get(key, -1))
            if src.offset <= self.sft.committed_offset(*key):
                continue  # replayed: already curated
            row = sft_row(jt, self.cfg)
            if row is not None:
                sft.append(row)
            if jt.trace.candidates:
                p = judged_candidate_preference(jt, self.judges, self.cfg)
                if p is not None:
                    prefs.append(preference_row(p, src))
        return sft, prefs, offsets

    def write(self, judged: list[JudgedTrace]) -> tuple[int, int]:
        sft, prefs, offsets = self.rows(judged)
        if not offsets:
            return 0, 0
        n_sft = self.sft.write(sft, offsets)
        n_pref = self.prefs.write(prefs, offsets)
        self.counts["sft"] += n_sft
        self.counts["preferences"] += n_pref
        return n_sft, n_pref

    async def __call__(self, judged: list[JudgedTrace]) -> list[Any]:
        await asyncio.to_thread(self.write, judged)
        return []


def install(handler: Any, settings: "Settings") -> CurationHook:
    """Curation for a worker: the spine's own fast judges in ``--role all``; the monitor (no pipeline) builds
    the same configured set to judge candidates."""
    pipeline = getattr(handler, "pipeline", None)
    if pipeline is not None:
        judges = pipeline.judges
    else:
        from streams.judges import build_fast_judges

        judges = build_fast_judges(settings)
    hook = CurationHook(make_sink(settings, SFT_EXAMPLES_TABLE, "sft"),
                        make_sink(settings, PREFERENCES_TABLE, "curated-prefs"), judges)
    handler.hooks.append(hook)
    return hook


async def land_preferences(settings: "Settings", stop: asyncio.Event, *, batch: int = 500,
                           registry: Any = None) -> int:
    """Consume feedback.preferences into the preferences table until ``stop``; returns rows landed. A record
    that is not a valid preference (or is from a newer schema) goes to feedback.dlq with its reason, counted in
    ``alignloop_feedback_dead_letters_total`` on ``registry``; dead letters are acknowledged before the Delta
    commit and the consumer commit, so none is lost."""
    from aiokafka import AIOKafkaConsumer
    from prometheus_client import CollectorRegistry

    from connectors.kafka import aiokafka_client_kwargs, producer
    from schemas.preference import PREFERENCE_SCHEMA_VERSION
    from schemas.topics import FEEDBACK_DLQ
    from streams.feedback import FeedbackDeadLetters, parse

    sink = make_sink(settings, PREFERENCES_TABLE, "feedback-prefs")
    consumer = AIOKafkaConsumer(settings.topic(PREFERENCES), **aiokafka_client_kwargs(settings),
                                group_id=f"{settings.app_id}-preferences", enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    landed = 0
    # Preference ids are deterministic (SDK retries, LLM replays): a re-published preference is not landed twice.
    seen: set[str] = set()
    existing = read_table(sink.uri, columns=["pref_id"], storage_options=sink.storage_options)
    if existing.num_columns:  # an absent table reads as empty
        seen.update(existing.column("pref_id").to_pylist())
    try:
        async with producer(settings) as prod:
            async def send(topic: str, key: bytes | None, value: bytes, headers: Any = None) -> Any:
                return await prod.send(topic, value=value, key=key, headers=headers)

            dead = FeedbackDeadLetters(send, settings.topic(FEEDBACK_DLQ), registry or CollectorRegistry())
            while not stop.is_set():
                got = await consumer.getmany(timeout_ms=500, max_records=batch)
                rows, offsets, futures = [], {}, []
                for tp, msgs in got.items():
                    for m in msgs:
                        offsets[(tp.topic, tp.partition)] = m.offset
                        if m.offset <= sink.committed_offset(tp.topic, tp.partition):
                            continue
                        p = parse(Preference, m.value, PREFERENCE_SCHEMA_VERSION)
                        if isinstance(p, tuple):
                            futures.append(await dead(m.value, m.key, tp.topic, tp.partition, m.offset, *p))
                            continue
                        if p.pref_id in seen:
                            continue
                        seen.add(p.pref_id)
                        rows.append(preference_row(p, SourceRef(topic=tp.topic, partition=tp.partition,
                                                                offset=m.offset)))
                if futures:
                    await asyncio.gather(*futures)  # the broker has every dead letter before anything commits
                if offsets:
                    landed += await asyncio.to_thread(sink.write, rows, offsets)
                    await consumer.commit()
    finally:
        await consumer.stop()
    return landed
