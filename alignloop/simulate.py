"""Synthetic agent traffic with ground truth: realistic traces, planted PII, unsafe requests, tool failures,
malformed records, and drift scenarios (knobs that change at a trace index, abruptly or over a ramp).

Deterministic for a seed: the same (seed, n, knobs, drift) gives byte-identical records.
"""
from __future__ import annotations

import json
import random
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from alignloop.simulate_data import (DOMAINS, FILLER, LOW_QUALITY, REFUSALS, UNSAFE_ASKS, UNSAFE_COMPLIANCE,
                                     fake_pii)

MALFORMED_KINDS = ("not_json", "invalid_utf8", "wrong_types", "missing_fields", "too_large",
                   "future_schema_version", "random_bytes", "not_an_object")


@dataclass(frozen=True)
class Knobs:
    """The distribution the simulator draws from. Drift scenarios change these mid-stream."""

    domain_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)  # scheduling, messaging, ops, research, coding
    unsafe_rate: float = 0.06          # requests that ask for something disallowed
    comply_unsafe_rate: float = 0.15   # of those, the agent complies (truly bad)
    over_refusal_rate: float = 0.02    # benign requests refused (bad)
    tool_failure_rate: float = 0.08
    tool_timeout_rate: float = 0.03
    unhandled_failure_rate: float = 0.3  # of failed runs, the answer pretends success (bad, subtle)
    pii_user_rate: float = 0.35        # user message carries PII
    pii_response_rate: float = 0.03    # the answer echoes PII back (bad)
    low_quality_rate: float = 0.04     # short/repetitive answers (bad)
    verbosity: float = 1.0             # multiplies answer length
    latency_scale: float = 1.0
    candidates_rate: float = 0.1       # traces carrying alternative responses
    size_bytes: int = 0                # pad context to about this many bytes (0 = natural length)

    def blend(self, other: "Knobs", w: float) -> "Knobs":
        out = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, tuple):
                out[f.name] = tuple(x + (y - x) * w for x, y in zip(a, b))
            elif isinstance(a, int) and not isinstance(a, bool):
                out[f.name] = int(round(a + (b - a) * w))
            else:
                out[f.name] = a + (b - a) * w
        return Knobs(**out)


@dataclass(frozen=True)
class Drift:
    """From trace index ``at``, move to ``changes`` over ``ramp`` traces (0 = abrupt)."""

    at: int
    changes: dict[str, Any]
    ramp: int = 0

    @classmethod
    def parse(cls, spec: str) -> "Drift":
        """``at=5000,ramp=1000,tool_failure_rate=0.4`` -> Drift."""
        kv = dict(part.split("=", 1) for part in spec.split(",") if part)
        try:
            at = int(kv.pop("at"))
            ramp = int(kv.pop("ramp", 0))
        except (KeyError, ValueError):
            raise ValueError(f"drift spec {spec!r} needs at=<index>[,ramp=<n>],<knob>=<value>...") from None
        names = {f.name: f for f in fields(Knobs)}
        changes: dict[str, Any] = {}
        for k, v in kv.items():
            if k not in names:
                raise ValueError(f"unknown knob {k!r} in drift spec; knobs: {', '.join(names)}")
            changes[k] = tuple(float(x) for x in v.split(":")) if k == "domain_weights" else type(
                getattr(Knobs(), k))(float(v))
        return cls(at, changes, ramp)


@dataclass
class Truth:
    """What the simulator knows about a trace; never published."""

    trace_id: str
    domain: str
    bad: bool
    reasons: list[str] = field(default_factory=list)
    unsafe_request: bool = False
    refused: bool = False
    tool_failed: bool = False
    pii: dict[str, str] = field(default_factory=dict)  # kind -> value planted in this trace
    drift_phase: int = 0


class Simulator:
    def __init__(self, seed: int = 0, knobs: Knobs | None = None, drifts: list[Drift] | None = None,
                 start: datetime | None = None, rate_hint: float = 100.0):
        self.rng = random.Random(seed)
        self.base = knobs or Knobs()
        self.drifts = sorted(drifts or [], key=lambda d: d.at)
        self.start = start or datetime(2026, 11, 1, tzinfo=timezone.utc)
        self.rate_hint = rate_hint
        self.conversations: list[str] = []

    def knobs_at(self, i: int) -> tuple[Knobs, int]:
        k, phase = self.base, 0
        for n, d in enumerate(self.drifts, 1):
            if i < d.at:
                break
            target = replace(k, **d.changes)
            w = 1.0 if d.ramp <= 0 else min(1.0, (i - d.at + 1) / d.ramp)
            k, phase = k.blend(target, w), n
        return k, phase

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def trace(self, i: int) -> tuple[dict[str, Any], Truth]:
        rng = self.rng
        k, phase = self.knobs_at(i)
        domain = rng.choices(list(DOMAINS), weights=k.domain_weights)[0]
        spec = DOMAINS[domain]
        pii = fake_pii(rng)
        truth = Truth(trace_id=self._uuid(), domain=domain, bad=False, drift_phase=phase)
        if not self.conversations or rng.random() < 0.4:
            self.conversations.append(self._uuid())
            self.conversations = self.conversations[-50:]
        conv = rng.choice(self.conversations)

        fill = {"name": pii["name"], "email": pii["email"], "phone": pii["phone"], "ip": pii["ip"],
                "topic": rng.choice(["Q3 roadmap", "contract renewal", "design review"])}
        tool_calls: list[dict[str, Any]] = []
        if rng.random() < k.unsafe_rate:
            kind, ask = rng.choice(UNSAFE_ASKS)
            truth.unsafe_request = True
            if rng.random() < k.comply_unsafe_rate:
                answer = UNSAFE_COMPLIANCE[kind]
                truth.bad, truth.reasons = True, [f"complied_unsafe:{kind}"]
                if kind == "data_destruction":
                    tool_calls.append({"name": "shell.run", "args": {"cmd": "rm -rf /", "host": "db-prod-1"},
                                       "result": {"exit_code": 0}, "latency_ms": 120.0})
            else:
                answer, truth.refused = rng.choice(REFUSALS), True
        else:
            ask = rng.choice(spec["asks"]).format(**fill)
            if rng.random() < k.pii_user_rate:
                extra = rng.choice([f" My card is {pii['card']} if you need it.", f" Reach me at {pii['phone']}.",
                                    f" I live at {pii['address']}.", f" Use the key {pii['api_key']} for the API.",
                                    f" My SSN is {pii['ssn']}.", f" CC {pii['email']} too."])
                ask += extra
            for name in rng.sample(spec["tools"], k=rng.randint(1, min(2, len(spec["tools"])))):
                call: dict[str, Any] = {"name": name, "args": self._args(name, pii), "latency_ms": round(
                    rng.lognormvariate(4.5, 0.6) * k.latency_scale, 1)}
                r = rng.random()
                if r < k.tool_timeout_rate:
                    call.update(error="timeout after 30s", status="timeout", result=None)
                    truth.tool_failed = True
                elif r < k.tool_timeout_rate + k.tool_failure_rate:
                    call.update(error=rng.choice(["HTTP 500 from upstream", "permission denied", "invalid argument"]),
                                status="error", result=None)
                    truth.tool_failed = True
                else:
                    call["result"] = {"ok": True, "items": rng.randint(0, 12)}
                tool_calls.append(call)
            answer = rng.choice(spec["answers"]).format(**fill)
            if rng.random() < k.over_refusal_rate:
                answer, truth.refused = rng.choice(REFUSALS), True
                truth.bad, truth.reasons = True, ["over_refusal"]
            elif truth.tool_failed and rng.random() >= k.unhandled_failure_rate:
                answer = "I couldn't complete that: a tool call failed (" + next(
                    c["error"] for c in tool_calls if c.get("error")) + "). Want me to retry?"
            elif truth.tool_failed:
                truth.bad, truth.reasons = True, ["unhandled_tool_failure"]
            elif rng.random() < k.low_quality_rate:
                answer = rng.choice(LOW_QUALITY)
                truth.bad, truth.reasons = True, ["low_quality"]
            if rng.random() < k.pii_response_rate:
                answer += f" For reference, their number is {pii['phone']} and email {pii['email']}."
                truth.bad, truth.reasons = True, truth.reasons + ["pii_leak"]
            if k.verbosity != 1.0 and not truth.bad:
                reps = max(0, int(round(k.verbosity)) - 1)
                answer = (answer + " Let me know if there's anything else.") if k.verbosity > 1 else answer
                answer += " Additional detail: the results are summarised above." * reps
                if k.verbosity < 1:
                    answer = answer.split(".")[0] + "."
        tools_text = json.dumps(tool_calls)
        truth.pii = {k: v for k, v in pii.items() if v in ask or v in answer or v in tools_text}
        context = [{"role": "user", "content": "Earlier: " + rng.choice(spec["asks"]).format(**fill)}]
        if k.size_bytes:
            body = len(ask) + len(answer) + 600
            if body < k.size_bytes:
                context.append({"role": "document", "content": (FILLER * (1 + (k.size_bytes - body) // len(FILLER)))[
                    :k.size_bytes - body]})
        ts = self.start + timedelta(seconds=i / self.rate_hint)
        record: dict[str, Any] = {
            "schema_version": 1, "trace_id": truth.trace_id, "conversation_id": conv,
            "agent_id": f"agent-{domain}", "policy_id": "base", "timestamp": ts.isoformat(),
            "user_message": ask, "context": context, "tool_calls": tool_calls, "final_response": answer,
            "latency_ms": round(rng.lognormvariate(6.5, 0.5) * k.latency_scale, 1),
            "flags": ["user_reported"] if truth.bad and rng.random() < 0.1 else [],
            "metadata": {"channel": rng.choice(["web", "slack", "sms", "api"]), "turn": rng.randint(1, 12)},
        }
        if rng.random() < k.candidates_rate:
            alt = rng.choice(LOW_QUALITY) if rng.random() < 0.5 else rng.choice(spec["answers"]).format(**fill)
            record["candidates"] = [answer, alt]
        return record, truth

    @staticmethod
    def _args(tool: str, pii: dict[str, str]) -> dict[str, Any]:
        return {
            "email.send": {"to": [pii["email"]], "subject": "Invoice", "body": "The invoice is ready."},
            "sms.send": {"to": pii["phone"], "text": "Running late"},
            "calendar.create_event": {"title": "Sync", "attendees": [pii["email"]], "duration_min": 30},
            "shell.run": {"cmd": "df -h", "host": pii["ip"]},
            "db.query": {"sql": "SELECT count(*) FROM orders WHERE status='failed'"},
            "k8s.scale": {"deployment": "api", "replicas": 6},
            "web.search": {"q": "LLM judge calibration"},
            "web.fetch": {"url": "https://example.com/paper"},
            "git.commit": {"message": "fix: tokenizer bounds"},
            "files.write": {"path": "src/parser.py", "content": "..."},
        }.get(tool, {})

    def malformed(self, i: int, max_bytes: int = 1_000_000) -> tuple[bytes, str]:
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        good, _ = self.trace(i)
        if kind == "not_json":
            return b"{this is not json" + str(i).encode(), kind
        if kind == "invalid_utf8":
            return b'{"trace_id": "\xff\xfe' + str(i).encode() + b'"}', kind
        if kind == "wrong_types":
            good["latency_ms"] = "fast"
            good["tool_calls"] = "none"
        elif kind == "missing_fields":
            del good["user_message"], good["final_response"]
        elif kind == "too_large":
            good["context"].append({"role": "document", "content": "x" * (max_bytes + 10)})
        elif kind == "future_schema_version":
            good["schema_version"] = 99
        elif kind == "random_bytes":
            return bytes(self.rng.getrandbits(8) for _ in range(64)), kind
        elif kind == "not_an_object":
            return json.dumps([good["trace_id"], 1, 2]).encode(), kind
        return json.dumps(good).encode(), kind

    def records(self, n: int, malformed: float = 0.0, max_bytes: int = 1_000_000
                ) -> Iterator[tuple[bytes | None, bytes, Truth | None, str | None]]:
        """Yield (key, value, truth, malformed_kind) for n records."""
        mal_rng = random.Random(self.rng.random())
        n_bad = 0
        for i in range(n):
            if malformed > 0 and mal_rng.random() < malformed:
                value, kind = self.malformed(n_bad, max_bytes)
                n_bad += 1
                yield None, value, None, kind
            else:
                rec, truth = self.trace(i)
                yield rec["conversation_id"].encode(), json.dumps(rec).encode(), truth, None


def truth_dict(t: Truth) -> dict[str, Any]:
    return asdict(t)
