"""The full scrubber: structured tier (regex + checksums) plus the unstructured tier (names, places, orgs, DOB).

Both tiers share one byte mask per text; overlaps are resolved once, structured kinds first (a card number inside
an address stays a card), then the longer span.
"""
from __future__ import annotations

from collections.abc import Iterable

from streams.scrub.entities import UNSTRUCTURED_KINDS, EntityDetector
from streams.scrub.memo import PieceMemo, ScrubMemo
from streams.scrub.pseudonym import Pseudonymizer
from streams.scrub.regex import STRUCTURED_KINDS, DetectingScrubber, RegexScrubber, Span, make_mask


class TieredScrubber(DetectingScrubber):
    """Structured and unstructured kinds in one pass; which kinds and thresholds come from configs/scrub.yaml."""

    name = "tiered"
    version = "1"
    min_len = 2
    supported = STRUCTURED_KINDS + UNSTRUCTURED_KINDS

    def __init__(self, pseudonymizer: Pseudonymizer, kinds: Iterable[str] | None = None,
                 thresholds: dict[str, float] | None = None, default_threshold: float = 0.5) -> None:
        kinds = list(kinds if kinds is not None else self.supported)
        unknown = set(kinds) - set(self.supported)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; known: {list(self.supported)}")
        self.pseudo = pseudonymizer
        self.structured = RegexScrubber(pseudonymizer, [k for k in kinds if k in STRUCTURED_KINDS], thresholds,
                                        default_threshold)
        self.entities = EntityDetector([k for k in kinds if k in UNSTRUCTURED_KINDS])
        self.thresholds = {k: (thresholds or {}).get(k, default_threshold) for k in UNSTRUCTURED_KINDS}
        self.memo = ScrubMemo()
        self.ident_memo = {}
        self.piece_memo = PieceMemo()
        self.kinds = frozenset(kinds)

    def detect(self, text: str, mask: bytes | None = None, low: str | None = None) -> list[Span]:
        # both tiers read the same mask and lower-cased text: made once here
        mask = mask if mask is not None else make_mask(text)
        low = low if low is not None else text.lower()
        out = self.structured.detect(text, mask, low)
        if self.entities.kinds:
            th = self.thresholds
            out += [c for c in self.entities.detect(text, mask, low) if c[3] >= th[c[0]]]
        return out
