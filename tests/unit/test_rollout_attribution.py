"""Judged turns -> arms -> conversations -> the analyzer's window (streams/rollout/attribution.py), and the
controller's config (streams/rollout/config.py)."""
from __future__ import annotations

import pytest

from schemas.preference import Label
from schemas.rollout import CanaryConfig, CanaryMetric, RolloutFlag, RolloutVariant
from schemas.settings import ConfigError
from schemas.trace import ToolCall
from schemas.verdict import Verdict
from streams.rollout.analysis import CanaryAnalyzer
from streams.rollout.attribution import RolloutTraffic, arm_of, turn_values
from streams.rollout.config import load_rollout_config
from tests.rollout_helpers import judged

BASE = RolloutVariant(policy_id="base")
CAND = RolloutVariant(policy_id="sft@1", adapter_id="sft@1", adapter_hash="sha256:ab")
FLAG = RolloutFlag(agent_id="bot", version=3, rollout_id="r1", stage="canary", baseline=BASE, candidate=CAND,
                   weights={"candidate": 25, "baseline": 75})


def test_turn_values_read_every_signal() -> None:
    jt = judged("bot", "c1", CAND, score=0.6, latency_ms=900.0)
    jt = jt.model_copy(update={
        "verdicts": [Verdict(judge="quality", scores={"task_success": 0.6, "helpfulness": 0.9}),
                     Verdict(judge="policy", scores={"task_success": 0.4, "safety": 0.0}, passed=False,
                             tags=["disallowed:malware"]),
                     Verdict(judge="refusal", scores={"safety": 1.0}, tags=["refusal:appropriate"]),
                     Verdict(judge="llm", status="error", scores={"helpfulness": 0.0})],
        "trace": jt.trace.model_copy(update={"tool_calls": [ToolCall(name="search", error="boom")],
                                             "flags": ["handoff"]})})
    values, judged_, tags = turn_values(jt)
    assert values["score.task_success"] == 0.4          # the lowest score a judge gave the dimension
    assert values["score.helpfulness"] == 0.9           # the errored verdict does not count
    assert values["score.safety"] == 0.0
    assert values["judge_score"] == pytest.approx((0.4 + 0.9 + 0.0) / 3)
    assert (values["violation"], values["refusal"], values["tool_error"], values["escalation"]) == (1, 1, 1, 1)
    assert values["latency_p95"] == 900.0 and judged_ and "disallowed:malware" in tags
    plain, _, _ = turn_values(judged("bot", "c2", CAND))
    assert (plain["violation"], plain["refusal"], plain["tool_error"], plain["escalation"]) == (0, 0, 0, 0)
    unjudged, ok, _ = turn_values(judged("bot", "c3", CAND).model_copy(update={"verdicts": []}))
    assert not ok and "violation" not in unjudged and "judge_score" not in unjudged


def test_arms_by_policy_and_adapter_hash() -> None:
    assert arm_of(FLAG, "sft@1", "sha256:ab") == "candidate"
    assert arm_of(FLAG, "base", None) == "baseline"
    assert arm_of(FLAG, "sft@1", "sha256:other") is None   # same policy id, other weights: not this arm
    assert arm_of(FLAG, "base", "sha256:ab") is None


def test_conversation_is_the_unit_and_labels_attach_to_it() -> None:
    t = RolloutTraffic(FLAG, critical_tags=("disallowed:*",), latency_threshold_ms=500.0)
    turns = [judged("bot", "c1", CAND, score=1.0, latency_ms=100), judged("bot", "c1", CAND, score=0.0,
                                                                            latency_ms=900),
             judged("bot", "c2", BASE, score=0.5), judged("other", "c9", CAND),
             judged("bot", "c3", RolloutVariant(policy_id="stranger"))]
    label = Label(label_id="l1", trace_id=turns[0].trace.trace_id, passed=False)
    early = judged("bot", "c2", BASE)
    assert not t.label(Label(label_id="l2", trace_id=early.trace.trace_id, passed=True))  # before its trace
    for i, jt in enumerate([*turns, early]):
        t.judged(jt, 0, 10 + i)
    assert t.label(label)
    assert t.judged(judged("bot", "c1", BASE), 1, 99) is None   # a conversation never changes arm
    assert t.skipped == {"unattributed": 1, "switched": 1}
    assert set(t.conversations) == {"c1", "c2"}
    c1, c2 = t.conversations["c1"], t.conversations["c2"]
    assert c1.sums["judge_score"] / c1.counts["judge_score"] == 0.5 and c1.counts["judge_score"] == 2
    assert c1.sums["latency_p95"] / c1.counts["latency_p95"] == 0.5     # one of its two turns was slow
    assert c1.sums["label_pass"] == 0.0 and c2.sums["label_pass"] == 1.0  # the early label waited for its trace
    metrics = (CanaryMetric(name="judge_score", direction="higher_is_better", margin=0.1),
               CanaryMetric(name="label_pass", direction="higher_is_better", margin=0.1, optional=True))
    analyzer = CanaryAnalyzer(CanaryConfig(metrics=metrics, burn_in=2))
    win, at_weight = t.window(analyzer, since={0: 11})
    assert (win.candidate.conversations, win.baseline.conversations) == (1, 1)
    assert win.candidate.metrics["judge_score"].mean == 0.5 and win.candidate.metrics["judge_score"].n == 1
    assert at_weight == 0                       # c1 began at offset 10, before the current weight (11)
    assert t.window(analyzer, since={0: 10})[1] == 1
    breach = judged("bot", "c4", CAND).model_copy(update={"verdicts": [Verdict(judge="policy",
                                                                              tags=["disallowed:weapons"])]})
    t.judged(breach, 0, 50)
    assert t.window(analyzer)[0].candidate.critical_breaches == 1


def test_optional_metric_neither_holds_nor_blocks_promotion_until_it_has_data() -> None:
    from datetime import datetime, timezone

    from streams.rollout.analysis import CanaryWindow, Conversation

    metrics = (CanaryMetric(name="judge_score", direction="higher_is_better", margin=0.2),
               CanaryMetric(name="label_pass", direction="higher_is_better", margin=0.2, optional=True))
    a = CanaryAnalyzer(CanaryConfig(metrics=metrics, steps=(50, 100), min_conversations=30,
                                    min_conversations_per_step=30, burn_in=10))
    win = CanaryWindow()
    for i in range(200):
        for arm in ("baseline", "candidate"):
            a.observe(win, arm, Conversation({"judge_score": 0.8 + (i % 3) * 0.01}))
    d = a.decide(win, 50, 200, datetime.now(timezone.utc))
    assert d.action == "promote", d.reason
    required = CanaryAnalyzer(CanaryConfig(metrics=(metrics[0], metrics[1].model_copy(update={"optional": False})),
                                           steps=(50, 100), min_conversations=30, min_conversations_per_step=30,
                                           burn_in=10))
    assert required.decide(win, 50, 200, datetime.now(timezone.utc)).action == "hold"


def test_rollout_config_loads_defaults_and_names_a_bad_field(tmp_path) -> None:
    cfg = load_rollout_config(None)
    names = [m.name for m in cfg.canary.metrics]
    assert {"judge_score", "score.safety", "violation", "refusal", "tool_error", "latency_p95", "escalation",
            "label_pass"} <= set(names)
    assert next(m for m in cfg.canary.metrics if m.name == "refusal").direction == "band"
    bad = tmp_path / "r.yaml"
    bad.write_text("canary:\n  metrics: [{name: x, direction: sideways, margin: 0.1}]\n")
    with pytest.raises(ConfigError, match=r"bad rollout config field 'canary.metrics.0.direction'"):
        load_rollout_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_rollout_config(tmp_path / "missing.yaml")


def test_attribution_survives_an_agent_id_the_scrubber_pseudonymises() -> None:
    """The RolloutClient keys variants by the raw agent id and stamps ``metadata.rollout`` before the trace is
    scrubbed; the scrubber then pseudonymises an agent id that looks like PII (and a policy id too). The
    controller reads scrubbed traces.judged: the turns must still land in their arms."""
    from connectors.rollout_client import stamp_served
    from schemas.trace import Trace
    from streams.scrub import Pseudonymizer, TieredScrubber, scrub_trace

    agent = "support/jane.doe@acme.io"
    cand = RolloutVariant(policy_id="sft-for-jane.doe@acme.io", adapter_id="a@1", adapter_hash="sha256:cd")
    flag = FLAG.model_copy(update={"agent_id": agent, "candidate": cand})
    scrubber = TieredScrubber(Pseudonymizer("k"))
    t = RolloutTraffic(flag, critical_tags=("disallowed:*",))
    arms = []
    for i, arm in enumerate([cand, BASE, cand, BASE, BASE]):
        name = "candidate" if arm is cand else "baseline"
        raw = Trace(trace_id=f"t{i}", conversation_id=f"c{i}", agent_id=agent, user_message="hi",
                    final_response="hello")
        scrubbed, _ = scrub_trace(stamp_served(raw, (name, arm, flag)), scrubber)
        assert scrubbed.agent_id != agent  # the scrubber did change it
        jt = judged(agent, f"c{i}", arm).model_copy(update={"trace": scrubbed})
        arms.append(t.judged(jt, 0, i))
    assert arms == ["candidate", "baseline", "candidate", "baseline", "baseline"]
    assert not t.skipped
    # a stamp of another rollout of the same (scrubbed) agent is not this rollout's traffic
    other = Trace(trace_id="t9", conversation_id="c9", agent_id=agent, user_message="hi", final_response="ok")
    other = scrub_trace(stamp_served(other, ("candidate", cand, flag.model_copy(update={"rollout_id": "r2"}))),
                        scrubber)[0]
    assert t.judged(judged(agent, "c9", cand).model_copy(update={"trace": other}), 0, 9) is None
    # unstamped turns from before the rollout (the latency reference) match by the ids as the scrubber writes them
    from alignloop.rollout_ops import as_scrubbed
    from schemas.settings import Settings

    assert as_scrubbed(Settings(pii_hmac_key="k"), agent, "base") == (scrubbed.agent_id, "base")
