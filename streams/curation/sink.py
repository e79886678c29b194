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

from connectors.delta_sink import DeltaSink, table_sink
from schemas.preference import Preference
from schemas.tables import PREFERENCES_TABLE, SFT_EXAMPLES_TABLE
from schemas.topics import PREFERENCES
from schemas.verdict import JudgedTrace
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
        from streams.pipeline import fast_judges_for
        from streams.scrub import build_scrubber

        judges = fast_judges_for(configs, build_scrubber(settings, configs.scrub))
    hook = CurationHook(table_sink(settings, SFT_EXAMPLES_TABLE, "sft"),
                        table_sink(settings, PREFERENCES_TABLE, "curated-prefs"), judges)
    handler.hooks.append(hook)
    return hook


async def land_preferences(settings: "Settings", stop: asyncio.Event, *, batch: int = 500,
                           registry: Any = None) -> int:
    """Consume feedback.preferences into the preferences table until ``stop``; returns rows landed (one row per
    pref_id; bad records to feedback.dlq with a reason: ``streams.feedback.land_feedback``)."""
    from streams.feedback import land_feedback

    return await land_feedback(settings, stop, topic=PREFERENCES, model=Preference, table=PREFERENCES_TABLE,
                               writer="feedback-prefs", group=f"{settings.app_id}-preferences", id_column="pref_id",
                               row_of=preference_row, batch=batch, registry=registry)
