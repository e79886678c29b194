"""The full scrubber: structured tier (regex + checksums) plus the unstructured tier (names, places, orgs, DOB).

Both tiers share one byte mask per text; overlaps are resolved once, structured kinds first (a card number inside
an address stays a card), then the longer span.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from streams.scrub.base import Finding, Scrubber, ScrubResult
from streams.scrub.entities import UNSTRUCTURED_KINDS, EntityDetector
from streams.scrub.memo import ScrubMemo
from streams.scrub.pseudonym import Pseudonymizer
from streams.scrub.regex import _INVISIBLE, STRUCTURED_KINDS, RegexScrubber, Span, apply, make_mask, resolve


def without_invisible(text: str, scrub: Callable[[str], ScrubResult]) -> ScrubResult:
    """Scrub ``text`` with invisible characters removed (zero-width spaces can split an email so that no pattern
    sees it); findings keep offsets into the original ``text``."""
    keep = [i for i, c in enumerate(text) if not _INVISIBLE.match(c)]
    res = scrub("".join(text[i] for i in keep))
    keep.append(len(text))
    return ScrubResult(res.text, [Finding(f.kind, keep[f.start], keep[f.end - 1] + 1 if f.end else 0, f.score,
                                          f.replacement) for f in res.findings])


class TieredScrubber(Scrubber):
    """Structured and unstructured kinds in one pass; which kinds and thresholds come from configs/scrub.yaml."""

    name = "tiered"
    version = "1"
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

    @property
    def key_id(self) -> str:
        return self.pseudo.key_id

    def detect(self, text: str) -> list[Span]:
        mask = make_mask(text)
        out = self.structured.detect(text, mask)
        if self.entities.kinds:
            th = self.thresholds
            out.extend(c for c in self.entities.detect(text, mask) if c[3] >= th[c[0]])
        return out

    def scrub(self, text: str) -> ScrubResult:
        if len(text) < 2:
            return ScrubResult(text, [])
        return self.memo.get(text, self._scrub)

    def _scrub(self, text: str) -> ScrubResult:
        if not text.isascii() and _INVISIBLE.search(text):
            return without_invisible(text, self._scrub)
        return apply(text, resolve(self.detect(text)), self.pseudo)
