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


# On the byte mask (digits -> "0", capitals -> "A"): the first three digits of a token (letters between), and eight
# digits with single spaces or hyphens between. Literal-led, so re skips ahead fast; every match of _MIXED_ID or
# _DIGIT_GROUPS in an ASCII text starts where one of these does (see id_spans).
_THREE_DIGITS_MASK = re.compile(rb"0[a-zA]{0,38}0[a-zA]{0,38}0")
_EIGHT_DIGITS_MASK = re.compile(rb"0(?:[ -]?0){7}")


def id_spans(text: str, mask: bytes) -> list[tuple[int, int]]:
    """Spans of ``_MIXED_ID`` matches, then of ``_DIGIT_GROUPS`` matches that are not dates: as their ``finditer``
    over ``text`` gives them. Both patterns start with a class, so ``re`` tries them at every position (~100 us
    per 1.5 KB curated prompt, about a third of the strict pass); in ASCII text (where the mask is exact) only the
    places the mask finds are tried, with the patterns themselves. Tests check this against the plain finditer."""
    if not text.isascii():  # \d also matches other scripts' digits, which the mask does not show as "0"
        return [m.span() for m in _MIXED_ID.finditer(text)] + [
            m.span() for m in _DIGIT_GROUPS.finditer(text) if not _DATE.fullmatch(m.group())]
    out: list[tuple[int, int]] = []
    # a _MIXED_ID match is a whole token of 6-40 letters and digits with a letter and three digits: it holds a
    # _THREE_DIGITS_MASK match from its first digit, and no match of that crosses a token's end
    pos, n = 0, len(text)
    while (c := _THREE_DIGITS_MASK.search(mask, pos)) is not None:
        s = e = c.start()
        while s > 0 and text[s - 1].isalnum():
            s -= 1
        e = c.end()
        while e < n and text[e].isalnum():
            e += 1
        m = _MIXED_ID.match(text, s)
        if m is not None:
            out.append(m.span())
        pos = e
    # a _DIGIT_GROUPS match starts where _EIGHT_DIGITS_MASK matches; candidates are tried in order, each with match(),
    # and the next search starts after a match (as finditer's) or one past a failed candidate
    pos = 0
    while (c := _EIGHT_DIGITS_MASK.search(mask, pos)) is not None:
        m = _DIGIT_GROUPS.match(text, c.start())
        if m is None:
            pos = c.start() + 1
            continue
        if not _DATE.fullmatch(m.group()):
            out.append(m.span())
        pos = m.end()
    return out


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
        self.piece_memo = None  # its lower-case name rule reads a joined text whole, across scrub_trace's strings
        self.kinds = frozenset(self.supported)

    def detect(self, text: str, mask: bytes | None = None, low: str | None = None) -> list[Span]:
        mask = mask if mask is not None else make_mask(text)
        out = super().detect(text, mask, low)
        out += [("ID", s, e, 0.6) for s, e in id_spans(text, mask)]
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
