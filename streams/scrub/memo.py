"""A bounded memo of scrub results for long texts that recur (system prompts, retrieved documents, templates).

Agent traffic repeats long context verbatim; scrubbing is deterministic for a given key and config, so a repeated
text gets the same result without running the detectors again. Bounded by total characters held; cleared (not
evicted one by one) when full, which keeps it O(1). Holds raw text in process memory only, like the record itself.
"""
from __future__ import annotations

from collections.abc import Callable

from streams.scrub.base import ScrubResult

MIN_CHARS = 256           # shorter texts are cheaper to scrub than to look up and copy
MAX_CHARS = 16_384        # longer ones are rarely repeated verbatim
BUDGET_CHARS = 4_000_000  # ~8-16 MB of text at most


class ScrubMemo:
    def __init__(self, budget_chars: int = BUDGET_CHARS) -> None:
        self.budget = budget_chars
        self.held = 0
        self._d: dict[str, ScrubResult] = {}
        self.hits = 0

    @staticmethod
    def holds(text: str) -> bool:
        """Whether ``text`` is the kind of text this memo keeps (and so may hit)."""
        return MIN_CHARS <= len(text) <= MAX_CHARS and "\x1f" not in text  # joined per-trace strings never recur

    def get(self, text: str, compute: Callable[[str], ScrubResult]) -> ScrubResult:
        if not self.holds(text):
            return compute(text)
        hit = self._d.get(text)
        if hit is not None:
            self.hits += 1
            return ScrubResult(hit.text, list(hit.findings))
        res = compute(text)
        if self.held + len(text) > self.budget:
            self._d.clear()
            self.held = 0
        self._d[text] = ScrubResult(res.text, list(res.findings))
        self.held += len(text)
        return res


class PieceMemo:
    """What ``scrub_trace`` found in each short string it has scrubbed: ``(kind, start, end, replacement)`` per
    finding, usually none. Tool errors, canned replies, URLs, argument values and repeated questions recur across
    traces far more than whole documents do (about two thirds of the short strings' characters in the simulator's
    traffic); a string seen before is not joined into the trace's text again, so the detectors read only new text.

    Exact because no detector reads context across scrub_trace's separator (a joined string gets what it would get
    alone: ``tests/unit/test_scrub_pieces.py``). Bounded by total characters held, cleared when full, like
    ``ScrubMemo``; holds raw text in process memory only, like the record itself."""

    def __init__(self, budget_chars: int = 2_000_000) -> None:
        self.budget = budget_chars
        self.held = 0
        self.hits = 0
        self._d: dict[str, tuple[tuple[str, int, int, str], ...]] = {}

    def get(self, piece: str) -> tuple[tuple[str, int, int, str], ...] | None:
        hit = self._d.get(piece)
        if hit is not None:
            self.hits += 1
        return hit

    def put(self, piece: str, found: tuple[tuple[str, int, int, str], ...]) -> None:
        if "\x1f" in piece:  # a string holding the separator itself is scrubbed with the others every time
            return
        if self.held + len(piece) > self.budget:
            self._d.clear()
            self.held = 0
        self._d[piece] = found
        self.held += len(piece)
