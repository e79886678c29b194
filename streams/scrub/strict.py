"""The strict tier: a second, heavier pass over what becomes training data (``sft_examples``, ``preferences``, the
trainers' dataset export), run on text the stream already scrubbed.

Curated rows are a few percent of traffic, so this tier can afford what the stream cannot: every kind on, lower
score thresholds, lower-case "first last" names without a cue, and a token-level id check — any token mixing
letters and three or more digits, or eight or more digits in groups, becomes ``<ID>``. What it finds becomes a plain
``<KIND>`` tag (no key needed, nothing to join on); the stream's ``<KIND_xxxxxxxx>`` pseudonyms are left as they are.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final

from streams.scrub.entities import UNSTRUCTURED_KINDS
from streams.scrub.pseudonym import Pseudonymizer
from streams.scrub.regex import STRUCTURED_KINDS, Span, make_mask
from streams.scrub.tiered import TieredScrubber

STRICT_THRESHOLD: Final = 0.3
_TAG = re.compile(r"<[A-Z][A-Z_]{1,30}(?:_[0-9a-f]{6,64})?>")  # a pseudonym or a strict tag: never re-scrubbed
_MIXED_ID = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[A-Za-z])(?=(?:[A-Za-z]*\d){3})[A-Za-z0-9]{6,40}(?![A-Za-z0-9])")
_DIGIT_GROUPS = re.compile(r"(?<![\w.,])\d(?:[ -]?\d){7,30}(?![\w.,])")
_DATE = re.compile(r"\d{4}-\d\d-\d\d|\d\d-\d\d-\d{4}")


class PlainTags(Pseudonymizer):
    """``<KIND>`` for every value: the strict pass needs no key and gives nothing to join on."""

    def __init__(self) -> None:
        super().__init__("strict-tier")
        self.key_id = ""

    def token(self, kind: str, value: str) -> str:
        return f"<{kind}>"


class StrictScrubber(TieredScrubber):
    """Every kind, thresholds at ``STRICT_THRESHOLD``, lower-case names without a cue, id-like tokens as ``ID``."""

    name = "strict"
    version = "1"
    supported = STRUCTURED_KINDS + UNSTRUCTURED_KINDS + ("ID",)

    def __init__(self, pseudonymizer: Pseudonymizer | None = None, threshold: float = STRICT_THRESHOLD) -> None:
        super().__init__(pseudonymizer or PlainTags(), STRUCTURED_KINDS + UNSTRUCTURED_KINDS,
                         default_threshold=threshold)
        self.entities.strict_names = True
        self.kinds = frozenset(self.supported)

    def detect(self, text: str, mask: bytes | None = None, low: str | None = None) -> list[Span]:
        mask = mask if mask is not None else make_mask(text)
        out = super().detect(text, mask, low)
        out += [("ID", m.start(), m.end(), 0.6) for m in _MIXED_ID.finditer(text)]
        out += [("ID", m.start(), m.end(), 0.6) for m in _DIGIT_GROUPS.finditer(text) if not _DATE.fullmatch(m.group())]
        if "<" in text:  # leave pseudonyms and tags alone
            tags = [m.span() for m in _TAG.finditer(text)]
            if tags:
                out = [c for c in out if not any(a < c[2] and c[1] < b for a, b in tags)]
        return out


@lru_cache(maxsize=1)
def strict_scrubber() -> StrictScrubber:
    """One per process: it holds no key and no state beyond its bounded memos."""
    return StrictScrubber()


def strict_text(text: str) -> str:
    """``text`` after the strict pass."""
    return strict_scrubber().scrub(text).text if text else text


def strict_value(v: Any) -> Any:
    """Strings in a JSON-like value (lists, dicts) after the strict pass; other values as they are."""
    if isinstance(v, str):
        return strict_text(v)
    if isinstance(v, list):
        return [strict_value(x) for x in v]
    if isinstance(v, dict):
        return {k: strict_value(x) for k, x in v.items()}
    return v
