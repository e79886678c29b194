"""Scrubber plugin contract: ``scrub(text) -> ScrubResult`` (redacted text + findings)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected entity; offsets refer to the *input* text."""

    kind: str          # upper-case entity kind: EMAIL, PHONE, CREDIT_CARD, IP_ADDRESS, IBAN, US_SSN, SECRET, PERSON, ...
    start: int
    end: int
    score: float = 1.0
    replacement: str = ""


@dataclass(slots=True)
class ScrubResult:
    text: str
    findings: list[Finding] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind] = out.get(f.kind, 0) + 1
        return out


def piece_start(text: str, s: int) -> int:
    """Where the piece of ``text`` holding offset ``s`` starts: just after the last "\\x1f" before ``s`` and the one
    line break that follows it (scrub_trace joins a trace's strings with "\\n\\x1f\\n"), or 0. Detectors read no
    context from before it, so each joined string is scrubbed exactly as it would be alone."""
    i = text.rfind("\x1f", 0, s)
    if i < 0:
        return 0
    return i + 2 if text[i + 1:i + 2] == "\n" and i + 1 < s else i + 1


def piece_end(text: str, s: int) -> int:
    """Where the piece of ``text`` holding offset ``s`` ends: at the next "\\x1f", or the end of the text."""
    i = text.find("\x1f", s)
    return i if i >= 0 else len(text)


class Scrubber(ABC):
    """Finds PII in text and replaces it with typed, deterministic pseudonyms."""

    name: str = "scrubber"
    version: str = "1"

    @abstractmethod
    def scrub(self, text: str) -> ScrubResult: ...
