"""Landing curated rows in Delta, idempotently.

``CurationHook`` (a ``TraceHandler.hooks`` member) writes SFT candidates and fast-judged candidate preferences
per batch through ``DeltaSink.add``/``flush``; ``land_preferences`` consumes ``feedback.preferences`` (LLM
pairwise, SDK, humans) into the ``preferences`` table and commits Kafka offsets only after the Delta commit. Both
use ``DeltaSink`` transactions per source partition, so a replay skips what already landed and never duplicates a
row.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from connectors.delta_sink import DeltaSink, read_table, table_sink
from schemas.preference import Preference
from schemas.tables import PREFERENCES_TABLE, SFT_EXAMPLES_TABLE
from schemas.topics import PREFERENCES
from schemas.verdict import JudgedTrace, SourceRef
from streams.curation.rules import CurationConfig, judged_candidate_preference, preference_row, sft_row
from streams.judges.base import Judge

if TYPE_CHECKING:
    from schemas.settings import Settings
    from streams.configs import AreaConfigs

log = logging.getLogger("alignloop.curate")


class CurationHook:
    """SFT candidates and fast-judged candidate preferences of each batch, each sink deciding per source offset
    what is new (a replay curates nothing twice) and committing its rows with the offsets."""

    def __init__(self, sft: DeltaSink, prefs: DeltaSink, judges: list[Judge], cfg: CurationConfig | None = None):
        self.sft, self.prefs, self.judges = sft, prefs, judges
        self.cfg = cfg or CurationConfig()
        self.counts = {"sft": 0, "preferences": 0}

    def add(self, jt: JudgedTrace) -> None:
        src = jt.source
        if self.sft.is_new(src):
            self.sft.add(sft_row(jt, self.cfg), src)
        if self.prefs.is_new(src):
            p = judged_candidate_preference(jt, self.judges, self.cfg) if jt.trace.candidates else None
            self.prefs.add(preference_row(p, src) if p is not None else None, src)

    def write(self, judged: list[JudgedTrace]) -> tuple[int, int]:
        for jt in judged:
            self.add(jt)
        n_sft, n_pref = self.sft.flush(), self.prefs.flush()
        self.counts["sft"] += n_sft
        self.counts["preferences"] += n_pref
        return n_sft, n_pref

    async def __call__(self, judged: list[JudgedTrace]) -> list[Any]:
        await asyncio.to_thread(self.write, judged)
        return []


def install(handler: Any, settings: "Settings", configs: "AreaConfigs") -> CurationHook:
    """Curation for a worker: the spine's own fast judges in ``--role all``; the monitor (no pipeline) builds
    the same configured set to judge candidates."""
    pipeline = getattr(handler, "pipeline", None)
    if pipeline is not None:
        judges = pipeline.judges
    else:
        from streams.judges import build_fast_judges

        judges = build_fast_judges(configs.policy, configs.judges)
    hook = CurationHook(table_sink(settings, SFT_EXAMPLES_TABLE, "sft"),
                        table_sink(settings, PREFERENCES_TABLE, "curated-prefs"), judges)
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
    from schemas.topics import FEEDBACK_DLQ
    from streams.feedback import FeedbackDeadLetters, parse

    sink = table_sink(settings, PREFERENCES_TABLE, "feedback-prefs")
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
                futures = []
                for tp, msgs in got.items():
                    for m in msgs:
                        src = SourceRef(topic=tp.topic, partition=tp.partition, offset=m.offset)
                        if not sink.is_new(src):
                            continue
                        p = parse(Preference, m.value)
                        if isinstance(p, tuple):
                            futures.append(await dead(m.value, m.key, tp.topic, tp.partition, m.offset, *p))
                            sink.add(None, src)
                        elif p.pref_id in seen:
                            sink.add(None, src)
                        else:
                            seen.add(p.pref_id)
                            sink.add(preference_row(p, src), src)
                if futures:
                    await asyncio.gather(*futures)  # the broker has every dead letter before anything commits
                if got:
                    landed += await asyncio.to_thread(sink.flush)
                    await consumer.commit()
    finally:
        await consumer.stop()
    return landed
