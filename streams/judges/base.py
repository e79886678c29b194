"""Judge plugin contract: ``judge(trace, ctx) -> Verdict``. Fast judges are pure and cheap."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from schemas.trace import Trace
from schemas.verdict import PiiFinding, Verdict


@dataclass(slots=True)
class JudgeContext:
    """What the pipeline knows about a trace besides the trace itself (already scrubbed)."""

    pii: list[PiiFinding] = field(default_factory=list)  # findings the scrubber made, by field


class Judge(ABC):
    name: str = "judge"
    version: str = "1"

    @abstractmethod
    def judge(self, trace: Trace, ctx: JudgeContext) -> Verdict: ...
