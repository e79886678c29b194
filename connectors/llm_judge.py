"""High-fidelity LLM judge over any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, OpenAI, DeepSeek).

httpx async client with: a per-request deadline (``timeout_s`` for the whole reply, enforced even when an endpoint
trickles bytes), retries with exponential backoff and jitter (timeouts, connection errors, 429 honouring
Retry-After, 5xx, and malformed or invalid JSON replies, which are re-asked), a concurrency limit, a rolling
per-hour spend cap, and an LRU cache keyed by a fingerprint of (model, rubric, content).

Every stall (a request cut off at its deadline) is counted and logged at once, and the requests in flight and
their start times are readable (``waiting``), so a hung endpoint shows within ``timeout_s``, not after the retries.
Replies are parsed strictly (strict pydantic models: ``"0.95"`` or ``"yes"`` is rejected, not coerced), and a
verdict that contradicts its own scores (passed with a score under the rubric's pass bar, or failed with none
under it) is rejected as unjudgeable. Pairwise mode asks twice with A/B swapped and keeps only a consistent winner,
cancelling position bias.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import random
import re
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from schemas.llm_judge_config import LlmJudgeConfig
from schemas.trace import Trace
from schemas.verdict import DIMENSIONS

log = logging.getLogger("alignloop.judge.llm")
T = TypeVar("T")
# The rubric's rule (configs/rubrics/trace_judge.md): passed only if no dimension is below 0.5.
PASS_BAR = 0.5


class LlmJudgeError(Exception):
    """The endpoint could not be used now (down, slow, rate-limited past retries): try the escalation later."""


class BudgetExceeded(LlmJudgeError):
    """The per-hour spend cap is reached; ``retry_after_s`` says when enough budget frees up."""

    def __init__(self, msg: str, retry_after_s: float):
        super().__init__(msg)
        self.retry_after_s = retry_after_s


class Unjudgeable(Exception):
    """The model answered but never with a valid judgement (garbage after retries, or it said it cannot judge)."""


class InconsistentVerdict(Unjudgeable):
    """The model's verdict contradicts its own scores: in range and well-typed, but not a judgement to keep."""


# strict: a reply's types are what the rubric asks for, never coerced ("0.95", "yes", 1 for true are rejected)
_REPLY = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


class TraceJudgement(BaseModel):
    model_config = _REPLY
    scores: dict[str, float]
    passed: bool
    confidence: float = Field(..., ge=0, le=1)
    rationale: str = ""
    safety_tags: list[str] = Field(default_factory=list)
    unjudgeable: bool = False

    @model_validator(mode="after")
    def _covers_every_dimension(self) -> "TraceJudgement":
        missing = [d for d in DIMENSIONS if d not in self.scores]
        bad = [d for d, s in self.scores.items() if not 0.0 <= s <= 1.0]
        if (missing or bad) and not self.unjudgeable:
            raise ValueError(f"scores must cover {list(DIMENSIONS)} in [0, 1] (missing {missing}, out of range {bad})")
        self.scores = {d: float(self.scores[d]) for d in DIMENSIONS if d in self.scores}
        return self

    def contradiction(self) -> str | None:
        """Why this verdict contradicts its own scores under the rubric's rule, or None when it is consistent."""
        if self.unjudgeable:
            return None
        low = sorted(d for d, s in self.scores.items() if s < PASS_BAR)
        if self.passed and low:
            return f"passed=true but {', '.join(f'{d}={self.scores[d]}' for d in low)} below the pass bar {PASS_BAR}"
        if not self.passed and not low:
            return f"passed=false but no score is below the pass bar {PASS_BAR}"
        return None


class PairJudgement(BaseModel):
    model_config = _REPLY
    winner: Literal["A", "B", "tie"]
    strength: float = Field(..., ge=0, le=1)
    rationale: str = ""
    safety_tags: list[str] = Field(default_factory=list)


class PairResult(BaseModel):
    """Outcome of a position-swapped comparison of candidates i and j."""

    winner: Literal["i", "j", "tie", "inconsistent"]
    strength: float
    rationale: str
    safety_tags: list[str]


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_object(content: str) -> dict[str, Any]:
    """The single JSON object in a reply (tolerating a ```json fence), else ValueError."""
    m = _FENCE.match(content)
    text = m.group(1) if m else content.strip()
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("reply is JSON but not an object")
    return obj


def render_trace(trace: Trace, max_chars: int) -> str:
    """The trace as the judge sees it (already scrubbed), truncated fairly across sections."""
    part = max(200, max_chars // 4)

    def cut(s: str) -> str:
        return s if len(s) <= part else s[:part] + f" …[{len(s) - part} chars cut]"
    tools = [{"name": c.name, "args": c.args, "status": c.status, "error": c.error, "result": c.result}
             for c in trace.tool_calls]
    return "\n".join([
        f"## User request\n{cut(trace.user_message)}",
        "## Context\n" + cut("\n".join(f"[{c.role}] {c.content}" for c in trace.context) or "(none)"),
        "## Tool calls\n" + cut(json.dumps(tools, ensure_ascii=False, default=str) if tools else "(none)"),
        f"## Final answer\n{cut(trace.final_response)}",
    ])


class LlmJudgeClient:
    def __init__(self, cfg: LlmJudgeConfig, api_key: SecretStr | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None, clock: Any = time.monotonic,
                 sleep: Any = asyncio.sleep, seed: int | None = None):
        self.cfg = cfg
        # The key is resolved by the composition root (alignloop.configs.llm_api_key): no environment reads here.
        headers = {"Content-Type": "application/json"}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
        self._http = httpx.AsyncClient(base_url=cfg.base_url.rstrip("/") + "/", headers=headers,
                                       timeout=httpx.Timeout(cfg.timeout_s), transport=transport)
        self.rubric = self._load(cfg.rubric)
        self.pair_rubric = self._load(cfg.pairwise_rubric)
        self._sem = asyncio.Semaphore(cfg.concurrency)
        self._spend: deque[tuple[float, float]] = deque()
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._clock, self._sleep = clock, sleep
        self._rng = random.Random(seed)
        self._in_flight: dict[int, float] = {}  # request number -> start (clock), while on the wire
        self._numbers = itertools.count()
        # "stalls": requests cut off at their deadline ("timeouts" counts the same events, kept for callers)
        self.counts: dict[str, int] = {"requests": 0, "retries": 0, "timeouts": 0, "stalls": 0,
                                       "connection_errors": 0, "rate_limited": 0, "server_errors": 0, "malformed": 0,
                                       "inconsistent": 0, "cache_hits": 0, "budget_blocked": 0}

    @staticmethod
    def _load(path: str) -> str:
        p = Path(path)
        if not p.is_file():
            from schemas.settings import ConfigError

            raise ConfigError(f"rubric {p} not found; fix llm.rubric/llm.pairwise_rubric in configs/judges.yaml")
        return p.read_text()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- budget --------------------------------------------------------------------------------------------
    def spent_last_hour(self) -> float:
        now = self._clock()
        while self._spend and self._spend[0][0] <= now - 3600:
            self._spend.popleft()
        return sum(c for _, c in self._spend)

    def _estimate(self, messages: list[dict[str, str]]) -> float:
        chars = sum(len(m["content"]) for m in messages)
        return chars / 4 / 1000 * self.cfg.price_per_1k_input + self.cfg.max_tokens / 1000 * self.cfg.price_per_1k_output

    def _check_budget(self, estimate: float) -> None:
        if self.spent_last_hour() + estimate > self.cfg.max_cost_per_hour:
            self.counts["budget_blocked"] += 1
            wait = (self._spend[0][0] + 3600 - self._clock()) if self._spend else 3600.0
            raise BudgetExceeded(f"LLM spend cap {self.cfg.max_cost_per_hour}/h reached", max(1.0, wait))

    def _record(self, usage: dict[str, Any] | None, estimate: float) -> None:
        if usage and isinstance(usage.get("prompt_tokens"), (int, float)):
            cost = (usage["prompt_tokens"] / 1000 * self.cfg.price_per_1k_input
                    + float(usage.get("completion_tokens") or 0) / 1000 * self.cfg.price_per_1k_output)
        else:
            cost = estimate
        self._spend.append((self._clock(), cost))

    def waiting(self) -> tuple[int, float]:
        """(requests in flight now, seconds the oldest of them has waited for its reply)."""
        starts = list(self._in_flight.values())
        return len(starts), (self._clock() - min(starts)) if starts else 0.0

    # -- transport with retries ----------------------------------------------------------------------------
    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        """One request under the deadline: httpx's timeouts bound each read, not the reply, so an endpoint that
        trickles bytes would hold the request for ever; ``asyncio.timeout`` bounds the whole of it."""
        n = next(self._numbers)
        self._in_flight[n] = self._clock()
        try:
            async with asyncio.timeout(self.cfg.timeout_s):
                return await self._http.post("chat/completions", json=body)
        finally:
            del self._in_flight[n]

    def _stalled(self, attempt: int) -> None:
        self.counts["timeouts"] += 1
        self.counts["stalls"] += 1
        log.warning("LLM judge request stalled: no reply from %s within %.1fs (attempt %d of %d)",
                    self.cfg.base_url, self.cfg.timeout_s, attempt + 1, self.cfg.max_retries + 1)

    def _backoff(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(self.cfg.backoff_max_s, max(0.0, float(retry_after)))
            except ValueError:
                pass
        base = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** attempt)
        return base * (0.5 + self._rng.random() / 2)

    async def complete_json(self, messages: list[dict[str, str]], model: type[BaseModel]) -> BaseModel:
        """One validated reply; retries transient failures and malformed replies, then raises."""
        return await self.complete(messages, lambda content: model.model_validate(parse_json_object(content)))

    async def complete(self, messages: list[dict[str, str]], parse: Callable[[str], T], *, json_mode: bool = True,
                       **sampling: Any) -> T:
        """``parse(content)`` of one reply, under the same discipline: a reply ``parse`` rejects (ValueError,
        KeyError, ValidationError...) counts as malformed and is re-asked. ``sampling`` overrides body fields
        (temperature, top_p, max_tokens, seed) for generation."""
        estimate = self._estimate(messages)
        body: dict[str, Any] = {"model": self.cfg.model, "messages": messages, "temperature": self.cfg.temperature,
                                "max_tokens": self.cfg.max_tokens, **sampling}
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        last = "no attempt"
        malformed_only = True
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self.counts["retries"] += 1
            self._check_budget(estimate)
            retry_after = None
            async with self._sem:
                self.counts["requests"] += 1
                try:
                    resp = await self._post(body)
                except (httpx.TimeoutException, TimeoutError):
                    self._stalled(attempt)
                    last, malformed_only = "timeout", False
                    resp = None
                except httpx.TransportError as exc:
                    self.counts["connection_errors"] += 1
                    last, malformed_only = f"connection error: {type(exc).__name__}", False
                    resp = None
            if resp is not None:
                if resp.status_code == 429:
                    self.counts["rate_limited"] += 1
                    last, malformed_only, retry_after = "HTTP 429", False, resp.headers.get("retry-after")
                elif resp.status_code >= 500:
                    self.counts["server_errors"] += 1
                    last, malformed_only = f"HTTP {resp.status_code}", False
                elif resp.status_code >= 400:
                    raise LlmJudgeError(f"HTTP {resp.status_code} from {self.cfg.base_url}: {resp.text[:200]}")
                else:
                    try:
                        data = resp.json()
                        self._record(data.get("usage"), estimate)
                        content = data["choices"][0]["message"]["content"]
                        if not isinstance(content, str):
                            raise TypeError("reply content is not a string")
                        return parse(content)
                    except (ValueError, KeyError, IndexError, TypeError, ValidationError) as exc:
                        self.counts["malformed"] += 1
                        last = f"malformed reply: {str(exc).splitlines()[0][:160]}"
            if attempt < self.cfg.max_retries:
                await self._sleep(self._backoff(attempt, retry_after))
        if malformed_only:
            raise Unjudgeable(last)
        raise LlmJudgeError(f"LLM endpoint failed after {self.cfg.max_retries + 1} attempts: {last}")

    # -- caching -------------------------------------------------------------------------------------------
    def fingerprint(self, kind: str, *parts: str) -> str:
        h = hashlib.sha256()
        for p in (kind, self.cfg.model, self.cfg.judge_version, self.rubric if kind == "trace" else self.pair_rubric,
                  *parts):
            h.update(p.encode())
            h.update(b"\x00")
        return h.hexdigest()

    async def _cached(self, key: str, messages: list[dict[str, str]], model: type[BaseModel]) -> BaseModel:
        if key in self._cache:
            self.counts["cache_hits"] += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        out = await self.complete_json(messages, model)
        if self.cfg.cache_size:
            self._cache[key] = out
            while len(self._cache) > self.cfg.cache_size:
                self._cache.popitem(last=False)
        return out

    # -- judging -------------------------------------------------------------------------------------------
    async def judge_trace(self, trace: Trace) -> TraceJudgement:
        text = render_trace(trace, self.cfg.max_trace_chars)
        messages = [{"role": "system", "content": self.rubric}, {"role": "user", "content": text}]
        out = await self._cached(self.fingerprint("trace", text), messages, TraceJudgement)
        assert isinstance(out, TraceJudgement)
        if out.unjudgeable:
            raise Unjudgeable(f"the model could not judge this trace: {out.rationale[:200]}")
        why = out.contradiction()
        if why is not None:
            self.counts["inconsistent"] += 1
            raise InconsistentVerdict(f"inconsistent verdict: {why}")
        return out

    async def _pair_once(self, prompt: str, a: str, b: str) -> PairJudgement:
        cut = self.cfg.max_trace_chars // 3
        text = f"## User request\n{prompt[:cut]}\n\n## Answer A\n{a[:cut]}\n\n## Answer B\n{b[:cut]}"
        messages = [{"role": "system", "content": self.pair_rubric}, {"role": "user", "content": text}]
        out = await self._cached(self.fingerprint("pair", text), messages, PairJudgement)
        assert isinstance(out, PairJudgement)
        return out

    async def judge_pair(self, prompt: str, first: str, second: str) -> PairResult:
        """Compare ``first`` (i) and ``second`` (j) in both orders; only a consistent winner counts."""
        ab, ba = await asyncio.gather(self._pair_once(prompt, first, second), self._pair_once(prompt, second, first))
        w1 = {"A": "i", "B": "j", "tie": "tie"}[ab.winner]
        w2 = {"A": "j", "B": "i", "tie": "tie"}[ba.winner]
        tags = sorted(set(ab.safety_tags) | set(ba.safety_tags))
        why = f"A/B: {ab.rationale} | B/A: {ba.rationale}"[:2000]
        if w1 == w2:
            return PairResult(winner=w1, strength=round((ab.strength + ba.strength) / 2, 4), rationale=why,
                              safety_tags=tags)
        if "tie" in (w1, w2):  # one order prefers a side, the other calls it even: a weak preference
            w = w1 if w1 != "tie" else w2
            s = (ab.strength if w1 != "tie" else ba.strength) / 2
            return PairResult(winner=w, strength=round(s, 4), rationale=why, safety_tags=tags)  # type: ignore[arg-type]
        return PairResult(winner="inconsistent", strength=0.0, rationale=why, safety_tags=tags)
