"""QualityJudge: cheap response-quality heuristics — empty, too short, too long, repetitive, placeholder text,
and lexical overlap with the request as a weak "answers the question" signal (it only moves the score: tool
answers often share no words with the request)."""
from __future__ import annotations

from schemas.trace import Trace
from schemas.verdict import Verdict
from streams.judges._text import TextView, config_hash, text_view, tokens_of
from streams.judges.base import Judge, JudgeContext, VerdictInterner

LOGIC_VERSION = "1"
_STOP = frozenset("the a an and or but if of to in on at for with from by is are was were be been it this that "
                  "these those i me my you your we our can could would should will please what which who how why "
                  "when where do does did have has had not no yes so as about into than then there their them they "
                  "he she his her its also just some any all more most very".split())


class QualityJudge(Judge):
    name = "quality"

    def __init__(self, *, min_chars: int = 20, max_chars: int = 8000, min_unique_ratio: float = 0.35,
                 placeholder_markers: list[str] | None = None):
        if min_chars < 0 or max_chars <= min_chars:
            raise ValueError("need 0 <= min_chars < max_chars")
        if not 0 <= min_unique_ratio <= 1:
            raise ValueError("min_unique_ratio must be in [0, 1]")
        self.min_chars, self.max_chars, self.min_unique_ratio = min_chars, max_chars, min_unique_ratio
        self.placeholders = tuple(m.lower() for m in (placeholder_markers if placeholder_markers is not None else
                                  ["lorem ipsum", "todo:", "{{", "[insert", "as an ai language model"]))
        self._marker_tokens = tokens_of(self.placeholders)
        # The distinct-word bar by answer length, precomputed (same expressions as before, so the same floats):
        # longer texts repeat function words naturally (Heaps' law), so the bar drops with length.
        self._u_mid = min_unique_ratio * 0.7
        self._u_long = min_unique_ratio * 0.45
        self.version = f"{LOGIC_VERSION}.{config_hash([min_chars, max_chars, min_unique_ratio, self.placeholders])}"
        self._verdicts = VerdictInterner(self.name, self.version)  # its findings, shared

    def _overlap_helpful(self, view: TextView, helpful: float) -> float:
        """``helpful`` capped by how much of the request's content words the answer shares (a weak signal)."""
        content = view.req_tokens - _STOP
        m = len(content)
        if m < 4:
            return helpful
        h = round(0.6 + 0.4 * min(1.0, len(content & view.resp_tokens) / m * 3), 4)
        # min(helpful, h): every constant helpful is already a 4-decimal number, so rounding commutes with min
        return min(helpful, h)

    def _placeholder(self, view: TextView) -> str | None:
        """The first placeholder marker in the answer, if any."""
        resp = view.response
        for marker in self.placeholders:
            if marker in resp:
                return marker
        return None

    def judge(self, trace: Trace, ctx: JudgeContext) -> Verdict:
        raw = trace.final_response
        text = raw.strip()
        n_chars = len(text)
        if n_chars == 0:
            return self._verdicts.get("ok", {"task_success": 0.0, "helpfulness": 0.0}, 0.95, False,
                               ["empty answer"], ["quality:empty"])
        view = text_view(trace, ctx)
        resp_tokens = view.resp_tokens
        n = len(view.resp_words)
        repetitive = n >= 8 and len(resp_tokens) / n < (self.min_unique_ratio if n <= 60 else
                                                        self._u_mid if n <= 400 else self._u_long)
        tags: list[str] = []
        reasons: list[str] = []
        helpful = success = 0.85
        confidence = 0.7
        failed = False
        if n_chars < self.min_chars:
            tags.append("quality:too_short")
            reasons.append(f"answer is only {n_chars} characters")
            helpful, success, failed = 0.2, 0.3, True
            confidence = 0.45 if len(trace.user_message) < 40 else 0.65
        elif n_chars > self.max_chars:
            tags.append("quality:too_long")
            reasons.append(f"answer is {n_chars} characters (> {self.max_chars})")
            helpful = 0.6
        if repetitive:
            ratio = len(resp_tokens) / n
            tags.append("quality:repetitive")
            reasons.append(f"only {ratio:.0%} of the words are distinct")
            helpful, success, failed, confidence = min(helpful, 0.2), min(success, 0.3), True, 0.75
        if "\n" in text:
            lines = [ln.strip() for ln in text.split("\n") if len(ln.strip()) > 20]
            if len(lines) - len(set(lines)) >= 3:
                tags.append("quality:repeated_lines")
                reasons.append("the same line repeats")
                helpful, failed, confidence = min(helpful, 0.3), True, 0.7
        if "{" in raw or "[" in raw or not self._marker_tokens.isdisjoint(resp_tokens):
            marker = self._placeholder(view)
            if marker is not None:
                tags.append("quality:placeholder")
                reasons.append(f"placeholder text {marker!r}")
                helpful, success, failed, confidence = min(helpful, 0.3), min(success, 0.3), True, 0.7
        if not failed:
            helpful = self._overlap_helpful(view, helpful)
        return self._verdicts.get("ok", {"task_success": success, "helpfulness": helpful},
                           confidence, not failed, reasons, tags)
