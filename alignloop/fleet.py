"""The simulated fleet: agents that read ``rollout.flags`` through the SDK (``RolloutClient``), pick the variant of
each conversation on every turn, and publish Traces stamped with its policy id and adapter hash, behaving as the
profile (``configs/fleet/*.yaml``) says that variant behaves. On a real fleet the behaviour comes from the model.

Deterministic: a turn's content is a function of (seed, agent, conversation, turn, the arm that served it), and
the arms' draws share random numbers, so two arms with the same rates produce the same turns. Timestamps are
wall-clock (the canary analyses live traffic).
"""
from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from alignloop.simulate_data import DOMAINS, REFUSALS, UNSAFE_ASKS, UNSAFE_COMPLIANCE, fake_pii
from connectors.rollout_client import stamp_served
from schemas.fleet import ArmBehaviour, FleetProfile
from schemas.rollout import RolloutFlag, RolloutVariant, VariantName

Served = tuple[VariantName, RolloutVariant, RolloutFlag]
# Compliance texts the policy judge flags on their own (configs/policy.yaml response patterns; tested).
VIOLATIONS = [(kind, ask) for kind, ask in UNSAFE_ASKS if kind in ("malware", "credential_theft", "weapons")]
NO_FLAG: Served | None = None


@dataclass
class ConversationLog:
    """What one conversation was served, turn by turn: (policy|adapter hash, candidate weight in force)."""

    turns: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class FleetSummary:
    turns: Counter[str] = field(default_factory=Counter)          # per arm ("baseline", "candidate", "no_flag")
    conversations: Counter[str] = field(default_factory=Counter)  # per arm of the first turn
    violations: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    tool_errors: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    # conversations moved between arms while the candidate weight grew or held (a ramp: must stay empty), and
    # those moved because it fell (a rollback, by design)
    switched: set[str] = field(default_factory=set)
    rolled_back: set[str] = field(default_factory=set)
    flag_versions: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        arms = sorted(self.turns)
        return {"turns": dict(self.turns), "conversations": dict(self.conversations),
                "violation_rate": {a: self.violations[a] / self.turns[a] for a in arms},
                "refusal_rate": {a: self.refusals[a] / self.turns[a] for a in arms},
                "tool_error_rate": {a: self.tool_errors[a] / self.turns[a] for a in arms},
                "latency_p95_ms": {a: _p(self.latencies[a], 0.95) for a in arms},
                "mid_conversation_switches": len(self.switched), "rollback_moves": len(self.rolled_back),
                "flag_versions_seen": sorted(self.flag_versions)}


def _p(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(math.ceil(q * len(s))) - 1)] if s else 0.0


class Fleet:
    """``agents`` x ``conversations`` each, ``turns`` (min, max) per conversation, ``open_per_agent`` of them in
    flight at once so each conversation's turns spread over time (and over flag changes)."""

    def __init__(self, profile: FleetProfile, *, agents: list[str], conversations: int, seed: int = 0,
                 turns: tuple[int, int] = (2, 6), open_per_agent: int = 20) -> None:
        if not agents or conversations < 1 or not 1 <= turns[0] <= turns[1]:
            raise ValueError("a fleet needs agents, conversations >= 1 and 1 <= min turns <= max turns")
        self.profile, self.agents, self.conversations = profile, agents, conversations
        self.seed, self.turn_range, self.open_per_agent = seed, turns, open_per_agent
        self.summary = FleetSummary()
        self.logs: dict[str, ConversationLog] = {}

    @property
    def total_turns_hint(self) -> int:
        return len(self.agents) * self.conversations * (self.turn_range[0] + self.turn_range[1]) // 2

    def schedule(self) -> Iterator[tuple[str, str, int, bool]]:
        """(agent, conversation id, turn index, last turn?) in the order the fleet speaks; same seed, same order."""
        rng = random.Random(f"fleet-schedule:{self.seed}")
        started = dict.fromkeys(self.agents, 0)
        open_: list[list[Any]] = []  # [agent, conversation, next turn, turns]

        def open_one(agent: str) -> None:
            i = started[agent]
            started[agent] += 1
            open_.append([agent, f"{agent}-s{self.seed}-c{i:06d}", 0, rng.randint(*self.turn_range)])

        for agent in self.agents:
            for _ in range(min(self.open_per_agent, self.conversations)):
                open_one(agent)
        while open_:
            slot = rng.randrange(len(open_))
            agent, conv, turn, n = open_[slot]
            yield agent, conv, turn, turn + 1 == n
            if turn + 1 < n:
                open_[slot][2] = turn + 1
            else:
                open_[slot] = open_[-1]
                open_.pop()
                if started[agent] < self.conversations:
                    open_one(agent)

    def run(self, served: Callable[[str, str], Served | None],
            end: Callable[[str, str], None] | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Kafka (key, value) per turn; ``served(agent, conversation)`` is ``RolloutClient.served`` and
        ``end(agent, conversation)`` its ``end_conversation``, called after a conversation's last turn."""
        from schemas.trace import Trace

        for agent, conv, turn, last in self.schedule():
            arm = served(agent, conv)
            record = self.turn(agent, conv, turn, arm)
            if last:
                self.logs.pop(conv, None)  # only conversations in flight are tracked
                if end is not None:
                    end(agent, conv)
            yield conv.encode(), Trace.model_validate(record).model_dump_json().encode()

    def turn(self, agent: str, conv: str, turn: int, arm: Served | None) -> dict[str, Any]:
        name = arm[0] if arm else "no_flag"
        self._track(conv, name, arm)
        behaviour = self.profile.arm(arm[0] if arm else None)
        record = self._draw(agent, conv, turn, name, behaviour)
        return stamp_served(record, arm) if arm else record

    def _track(self, conv: str, name: str, arm: Served | None) -> None:
        """Follow what served each turn (policy and adapter, not the arm's name: a promotion made final renames
        the candidate "baseline" without moving anyone)."""
        log = self.logs.setdefault(conv, ConversationLog())
        serving = f"{arm[1].policy_id}|{arm[1].adapter_hash}" if arm else "no_flag"
        weight = arm[2].candidate_weight if arm and arm[2].stage != "rolled_back" else 0
        if not log.turns:
            self.summary.conversations[name] += 1
        elif log.turns[-1][0] != serving:
            # a move while the candidate weight grew or held is a ramp breaking stickiness (must never happen);
            # a move after it fell is a rollback doing its job
            (self.summary.rolled_back if weight < log.turns[-1][1] else self.summary.switched).add(conv)
        log.turns.append((serving, weight))
        if arm:
            self.summary.flag_versions.add(arm[2].version)

    def _draw(self, agent: str, conv: str, turn: int, arm: str, b: ArmBehaviour) -> dict[str, Any]:
        rng = random.Random(f"fleet:{self.seed}:{agent}:{conv}:{turn}")  # common random numbers across arms
        s = self.summary
        domain = rng.choice(list(DOMAINS))
        spec = DOMAINS[domain]
        pii = fake_pii(rng)
        fill = {"name": pii["name"], "email": pii["email"], "phone": pii["phone"], "ip": pii["ip"],
                "topic": rng.choice(["Q3 roadmap", "contract renewal", "design review"])}
        # every draw up front, so two arms with the same rates make the same turn and differing rates change
        # only the turns they must
        u, kind_pick, tool_pick, z = rng.random(), rng.random(), rng.random(), rng.gauss(0.0, 1.0)
        tool_u = [rng.random() for _ in range(3)]
        ask_i, answer_i = rng.randrange(len(spec["asks"])), rng.randrange(len(spec["answers"]))
        tool_calls: list[dict[str, Any]] = []
        if u < b.violation_rate + b.unsafe_refused_rate:
            kind, ask = VIOLATIONS[int(kind_pick * len(VIOLATIONS))]
            if u < b.violation_rate:
                answer = UNSAFE_COMPLIANCE[kind]
                s.violations[arm] += 1
            else:
                answer = REFUSALS[1]
        else:
            ask = spec["asks"][ask_i].format(**fill)
            answer = spec["answers"][answer_i].format(**fill)
            errors = []
            for tool, tu in zip(spec["tools"][:1 + int(tool_pick * 2)], tool_u):
                failed = tu < b.tool_error_rate
                call: dict[str, Any] = {"name": tool, "args": {}, "latency_ms": round(40 + 200 * tu, 1)}
                if failed:
                    call.update(error="HTTP 500 from upstream", status="error", result=None)
                    errors.append(tool)
                else:
                    call["result"] = {"ok": True}
                tool_calls.append(call)
            if u >= 1 - b.refusal_rate:
                answer = REFUSALS[2]
                s.refusals[arm] += 1
            elif errors:
                answer = f"I couldn't complete that: {errors[0]} failed (HTTP 500 from upstream). Want me to retry?"
                s.tool_errors[arm] += 1
        latency = round(b.latency_median_ms * math.exp(b.latency_sigma * z), 1)
        s.turns[arm] += 1
        s.latencies.setdefault(arm, []).append(latency)
        return {"schema_version": 1, "trace_id": f"{conv}-t{turn}", "conversation_id": conv, "agent_id": agent,
                "policy_id": "base", "timestamp": datetime.now(timezone.utc).isoformat(), "user_message": ask,
                "tool_calls": tool_calls, "final_response": answer, "latency_ms": latency,
                "metadata": {"source": "fleet", "turn": turn + 1, "domain": domain}}


def parse_turns(spec: str) -> tuple[int, int]:
    """``"2-6"`` -> (2, 6); ``"4"`` -> (4, 4)."""
    try:
        lo, _, hi = spec.partition("-")
        rng = (int(lo), int(hi or lo))
    except ValueError:
        rng = (0, 0)
    if not 1 <= rng[0] <= rng[1]:
        raise ValueError(f"--turns {spec!r}: give MIN-MAX turns per conversation, e.g. 2-6")
    return rng


def run_fleet_command(*, profile: str, agents: list[str], conversations: int, turns: str, open_per_agent: int,
                      rate: float | None, seed: int, console: Any) -> FleetSummary:
    """`alignloop simulate --fleet`: follow the flags, publish every turn to agent.traces, print a summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from alignloop.commands.broker import _run
    from alignloop.errors import UserError
    from alignloop.publish import publish
    from connectors.rollout_client import RolloutClient
    from schemas.fleet import load_fleet_profile
    from schemas.settings import load_settings
    from schemas.topics import TRACES

    s = load_settings()
    try:
        fleet = Fleet(load_fleet_profile(profile), agents=agents, conversations=conversations, seed=seed,
                      turns=parse_turns(turns), open_per_agent=open_per_agent)
    except ValueError as exc:  # ConfigError included: one line naming the fix
        raise UserError(str(exc)) from None
    client = RolloutClient(s).start(wait_s=15)
    if not client.ready:
        console.print(f"[yellow]no flags yet from {client.topic} ({client.last_error or 'still reading'}): agents "
                      "without a flag serve the base policy until one arrives[/yellow]")
    try:
        with Progress(TextColumn("fleet"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console) as progress:
            task = progress.add_task("fleet", total=fleet.total_turns_hint)
            sent = _run(publish(s, s.topic(TRACES), fleet.run(client.served, client.end_conversation), rate=rate,
                                on_sent=lambda k: progress.advance(task, k)), s)
            progress.update(task, total=sent, completed=sent)  # the total was an estimate (turns are drawn)
    finally:
        client.stop()
    _print_summary(console, fleet.summary, sent, s.topic(TRACES), client.stats)
    return fleet.summary


def _print_summary(console: Any, summary: FleetSummary, sent: int, topic: str, stats: dict[str, Any]) -> None:
    from rich.table import Table

    d = summary.as_dict()
    table = Table(title=f"fleet: {sent} turns to {topic}")
    for col in ("arm", "conversations", "turns", "violations", "refusals", "tool errors", "latency p95 ms"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for arm in sorted(summary.turns):
        table.add_row(arm, str(summary.conversations[arm]), str(summary.turns[arm]),
                      f"{d['violation_rate'][arm]:.2%}", f"{d['refusal_rate'][arm]:.2%}",
                      f"{d['tool_error_rate'][arm]:.2%}", f"{d['latency_p95_ms'][arm]:,.0f}")
    console.print(table)
    console.print(f"flag versions served {d['flag_versions_seen'] or 'none'}; conversations switched mid-way by a "
                  f"ramp: {d['mid_conversation_switches']}; moved back by a rollback: {d['rollback_moves']}; "
                  f"flag records applied {stats['applied']}, ignored {stats['ignored'] or 0}, "
                  f"invalid {stats['invalid'] or 0}")
