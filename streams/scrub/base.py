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


class Scrubber(ABC):
    """Finds PII in text and replaces it with typed, deterministic pseudonyms."""

    name: str = "scrubber"
    version: str = "1"

    @abstractmethod
    def scrub(self, text: str) -> ScrubResult: ...
