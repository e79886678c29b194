"""From judged turns to the analyzer's conversations: attribute each turn to a rollout arm, aggregate per
conversation (the unit), and build the `CanaryWindow` the analyzer decides on. Pure: records passed in.

A turn belongs to the candidate when it carries the candidate variant's policy id and adapter hash (the agent
stamps what served it), to the baseline when it carries the baseline's, and to neither otherwise (counted, with
a reason). The rollout's turns are recognised by the stamp ``RolloutClient`` writes before the trace is scrubbed
(``metadata.rollout.rollout_id``), and by the agent id only for turns without one: the scrubber pseudonymises an
agent id (or policy id) that looks like personal data, while flags and the client key variants by the raw id.
For a stamped turn whose policy id the scrubber changed, the stamped variant counts when its adapter hash (never
scrubbed) is that variant's. A conversation takes the arm of its first turn; a later turn on the other arm (only a rollback moves
conversations) is skipped and counted as ``switched``, so a conversation is never in both arms.

Per-turn values (all in [0, 1] except latency, which the latency metric's threshold turns into 1[slow]):
``judge_score`` (mean of the dimensions below that any judge scored), ``score.<dimension>`` (the lowest score any
judge gave the dimension), ``violation`` (a policy breach: a ``disallowed:``/``tool_not_allowed:``/
``arg_violation:``/``graph_op_not_allowed:`` tag or a failed policy verdict), ``refusal`` (the refusal judge's
``refusal:*`` or ``over_refusal`` tag), ``tool_error`` (a tool call that did not return ok), ``latency_p95``
(1 when the turn was slower than the threshold: by default the baseline's p95 before the rollout), ``escalation`` (the agent flagged the turn ``escalated``/``handoff``, or set
``metadata.escalated``) and ``label_pass`` (a high-fidelity or human label of the turn passed). A conversation's
value is the mean over its turns where observed; it is *judged* when any turn has a verdict that ran, and a
*critical* breach when any turn has a critical tag.
"""
from __future__ import annotations

import fnmatch
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from schemas.preference import Label
from schemas.rollout import RolloutFlag, VariantName
from schemas.verdict import DIMENSIONS, JudgedTrace
from streams.rollout.analysis import CanaryAnalyzer, CanaryWindow, Conversation

VIOLATION_PREFIXES = ("disallowed:", "tool_not_allowed:", "arg_violation:", "graph_op_not_allowed:")
ESCALATION_FLAGS = frozenset({"escalated", "escalation", "handoff"})


def turn_values(jt: JudgedTrace) -> tuple[dict[str, float], bool, list[str]]:
    """(metric values, judged, every verdict tag) of one judged turn."""
    ok = [v for v in jt.verdicts if v.status == "ok"]
    tags = [t for v in jt.verdicts for t in v.tags]
    values: dict[str, float] = {}
    for dim in DIMENSIONS:
        scores = [v.scores[dim] for v in ok if dim in v.scores]
        if scores:
            values[f"score.{dim}"] = min(scores)
    dims = [values[f"score.{d}"] for d in DIMENSIONS if f"score.{d}" in values]
    if dims:
        values["judge_score"] = sum(dims) / len(dims)
    if ok:
        values["violation"] = float(any(t.startswith(VIOLATION_PREFIXES) for t in tags)
                                    or any(v.judge == "policy" and not v.passed for v in ok))
        values["refusal"] = float(any(t.startswith("refusal:") or t == "over_refusal" for t in tags))
    t = jt.trace
    values["tool_error"] = float(any(c.status != "ok" for c in t.tool_calls))
    values["latency_p95"] = float(t.latency_ms)
    values["escalation"] = float(bool(ESCALATION_FLAGS & set(t.flags)) or t.metadata.get("escalated") is True)
    return values, bool(ok), tags


def stamp_of(jt: JudgedTrace) -> dict | None:
    """The ``metadata.rollout`` stamp of a turn (rollout id, variant, flag version), or None."""
    st = jt.trace.metadata.get("rollout") if isinstance(jt.trace.metadata, dict) else None
    return st if isinstance(st, dict) and isinstance(st.get("rollout_id"), str) else None


def arm_of_turn(flag: RolloutFlag, jt: JudgedTrace) -> tuple[bool, VariantName | None]:
    """(is this rollout's turn, its arm or None): by the stamp when there is one, else by the agent id."""
    t, st = jt.trace, stamp_of(jt)
    if st is not None and flag.rollout_id is not None:
        if st["rollout_id"] != flag.rollout_id:
            return False, None  # another rollout (or a stable flag) of this agent
        arm = arm_of(flag, t.policy_id, t.adapter_hash)
        variant = {"candidate": flag.candidate, "baseline": flag.baseline}.get(st.get("variant"))
        if arm is None and variant is not None and variant.adapter_hash == t.adapter_hash:
            arm = st["variant"]  # the policy id was pseudonymised; the adapter hash and the stamp agree
        return True, arm
    if t.agent_id != flag.agent_id:
        return False, None
    return True, arm_of(flag, t.policy_id, t.adapter_hash)


def arm_of(flag: RolloutFlag, policy_id: str, adapter_hash: str | None) -> VariantName | None:
    """Which variant of ``flag`` served a turn stamped (policy_id, adapter_hash); None: neither."""
    if flag.candidate is not None and (policy_id, adapter_hash) == (flag.candidate.policy_id,
                                                                    flag.candidate.adapter_hash):
        return "candidate"
    if (policy_id, adapter_hash) == (flag.baseline.policy_id, flag.baseline.adapter_hash):
        return "baseline"
    return None


@dataclass
class ConversationAgg:
    arm: VariantName
    first: tuple[int, int]            # (partition, offset) of its first judged turn
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    judged: bool = False
    critical: bool = False

    def add(self, name: str, x: float) -> None:
        if math.isfinite(x):
            self.sums[name] = self.sums.get(name, 0.0) + x
            self.counts[name] = self.counts.get(name, 0) + 1


@dataclass
class RolloutTraffic:
    """Every conversation of one rollout seen so far, per arm. Feed it ``judged`` / ``label`` in topic order."""

    flag: RolloutFlag
    critical_tags: tuple[str, ...] = ()
    latency_threshold_ms: float | None = None
    max_tracked_traces: int = 2_000_000
    conversations: dict[str, ConversationAgg] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    turns: Counter = field(default_factory=Counter)
    _trace_conv: "OrderedDict[str, str]" = field(default_factory=OrderedDict)
    _early_labels: "OrderedDict[str, float]" = field(default_factory=OrderedDict)

    def judged(self, jt: JudgedTrace, partition: int, offset: int) -> str | None:
        """Fold one judged turn; returns the arm it went to, or None (the reason is counted in ``skipped``)."""
        t = jt.trace
        ours, arm = arm_of_turn(self.flag, jt)
        if not ours:
            return None  # another agent's (or rollout's) traffic: not this rollout's business, not an error
        if arm is None:
            self.skipped["unattributed"] += 1
            return None
        conv = self.conversations.get(t.conversation_id)
        if conv is None:
            conv = self.conversations[t.conversation_id] = ConversationAgg(arm, (partition, offset))
        elif conv.arm != arm:
            self.skipped["switched"] += 1
            return None
        values, judged, tags = turn_values(jt)
        lat = values.pop("latency_p95")
        if self.latency_threshold_ms is not None:  # per turn, so a conversation's value is its share of slow turns
            values["latency_p95"] = float(lat > self.latency_threshold_ms)
        for name, x in values.items():
            conv.add(name, x)
        conv.judged |= judged
        conv.critical |= any(fnmatch.fnmatchcase(tag, pat) for tag in tags for pat in self.critical_tags)
        self.turns[arm] += 1
        self._remember(t.trace_id, t.conversation_id)
        return arm

    def label(self, label: Label) -> bool:
        """Fold a high-fidelity/human label; one for a trace not seen yet waits (bounded) for its trace."""
        conv_id = self._trace_conv.get(label.trace_id)
        if conv_id is None:
            self._early_labels[label.trace_id] = float(label.passed)
            while len(self._early_labels) > self.max_tracked_traces:
                self._early_labels.popitem(last=False)
            return False
        self.conversations[conv_id].add("label_pass", float(label.passed))
        return True

    def _remember(self, trace_id: str, conv_id: str) -> None:
        self._trace_conv[trace_id] = conv_id
        while len(self._trace_conv) > self.max_tracked_traces:
            self._trace_conv.popitem(last=False)
        early = self._early_labels.pop(trace_id, None)
        if early is not None:
            self.conversations[conv_id].add("label_pass", early)

    def window(self, analyzer: CanaryAnalyzer, since: dict[int, int] | None = None) -> tuple[CanaryWindow, int]:
        """The analyzer's window over every conversation so far, and the candidate conversations that began at
        or after ``since`` (partition -> offset: where the current weight began)."""
        win, at_weight, since = CanaryWindow(), 0, since or {}
        for conv in self.conversations.values():
            values = {k: conv.sums[k] / conv.counts[k] for k in conv.sums}
            analyzer.observe(win, conv.arm, Conversation(values, judged=conv.judged, critical=conv.critical))
            if conv.arm == "candidate" and conv.first[1] >= since.get(conv.first[0], 0):
                at_weight += 1
        return win, at_weight


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    return xs[min(len(xs) - 1, math.ceil(0.95 * len(xs)) - 1)]
