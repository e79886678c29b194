"""The agent SDK's edge: ``log_preference(prompt, candidates, chosen_idx, meta)`` publishes a seed-000
Preference to ``feedback.preferences``. Judging a draft (``decide``) is stream logic: ``streams/sdk.py``'s
``OversightSDK`` adds it on top of this class.

    >>> from connectors.sdk import PreferenceLogger
    >>> PreferenceLogger.make_preference("q", ["terse", "clear"], 1).rejected_idx
    0
"""
from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING, Any

from schemas.preference import Preference

if TYPE_CHECKING:
    from schemas.settings import Settings


class PreferenceLogger:
    """Publishes preferences with ``settings``' Kafka connection (None: ``make_preference`` only)."""

    def __init__(self, settings: "Settings | None" = None):
        self.settings = settings

    @staticmethod
    def make_preference(prompt: str, candidates: list[str], chosen_idx: int, meta: dict[str, Any] | None = None
                        ) -> Preference:
        meta = dict(meta or {})
        if not 0 <= chosen_idx < len(candidates):
            raise ValueError(f"chosen_idx {chosen_idx} out of range for {len(candidates)} candidates")
        rejected = meta.pop("rejected_idx", None)
        if rejected is None:
            rejected = next(i for i in range(len(candidates)) if i != chosen_idx) if len(candidates) > 1 else 0
        # Deterministic id: a retried call publishes the same preference, which idempotent sinks dedupe.
        pref_id = meta.pop("pref_id", None) or hashlib.sha256(json.dumps(
            [prompt, candidates, chosen_idx, rejected, meta.get("annotator"), meta.get("request_id")],
            ensure_ascii=False).encode()).hexdigest()[:32]
        return Preference(pref_id=pref_id, prompt=prompt, candidates=candidates, chosen_idx=chosen_idx,
                          rejected_idx=int(rejected), strength=float(meta.pop("strength", 1.0)),
                          rationale=str(meta.pop("rationale", "")), safety_tags=list(meta.pop("safety_tags", [])),
                          metadata={"source": meta.pop("source", "sdk"), **meta})

    async def alog_preference(self, prompt: str, candidates: list[str], chosen_idx: int,
                              meta: dict[str, Any] | None = None) -> Preference:
        from connectors.kafka import producer
        from schemas.topics import PREFERENCES

        if self.settings is None:
            raise ValueError("log_preference needs Kafka settings: build the SDK with OversightSDK.from_settings")
        pref = self.make_preference(prompt, candidates, chosen_idx, meta)
        async with producer(self.settings) as prod:
            await prod.send_and_wait(self.settings.topic(PREFERENCES), pref.model_dump_json().encode(),
                                     key=pref.pref_id.encode())
        return pref

    def log_preference(self, prompt: str, candidates: list[str], chosen_idx: int,
                       meta: dict[str, Any] | None = None) -> Preference:
        """Blocking form for scripts; inside an event loop use ``alog_preference``."""
        return asyncio.run(self.alog_preference(prompt, candidates, chosen_idx, meta))
