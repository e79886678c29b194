"""Prometheus metrics of the rollout controller: per rollout and per arm (deploy/prometheus/alerts.yml and
deploy/grafana/dashboards/rollouts.json read them)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.rollout import Decision, RolloutFlag

STAGES = ("stable", "canary", "paused", "promoted", "rolled_back")


class RolloutMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        key = ["agent_id", "rollout_id"]
        self.registry = r
        self.weight = Gauge("alignloop_rollout_candidate_weight", "Candidate weight in percent.", key, registry=r)
        self.version = Gauge("alignloop_rollout_flag_version", "Flag version in force.", key, registry=r)
        self.stage = Gauge("alignloop_rollout_stage", "1 for the rollout's current stage.", key + ["stage"],
                           registry=r)
        self.conversations = Gauge("alignloop_rollout_conversations", "Conversations per arm.", key + ["arm"],
                                   registry=r)
        self.judged = Gauge("alignloop_rollout_judged_conversations", "Judged conversations per arm.",
                            key + ["arm"], registry=r)
        self.critical = Gauge("alignloop_rollout_critical_breaches", "Conversations with a critical breach.",
                              key + ["arm"], registry=r)
        self.mean = Gauge("alignloop_rollout_metric_mean", "Per-conversation mean of a metric, per arm.",
                          key + ["metric", "arm"], registry=r)
        self.delta = Gauge("alignloop_rollout_metric_delta", "Candidate minus baseline, oriented so that "
                           "positive is worse.", key + ["metric"], registry=r)
        self.harm_upper = Gauge("alignloop_rollout_metric_harm_upper", "Upper end of the harm confidence "
                                "sequence.", key + ["metric"], registry=r)
        self.harm_lower = Gauge("alignloop_rollout_metric_harm_lower", "Lower end of the harm confidence "
                                "sequence (above 0: harm).", key + ["metric"], registry=r)
        self.ni_upper = Gauge("alignloop_rollout_metric_ni_upper", "Upper end of the non-inferiority sequence "
                              "(below the margin: non-inferior).", key + ["metric"], registry=r)
        self.decisions = Counter("alignloop_rollout_decisions", "Decisions committed, by action.",
                                 ["agent_id", "action"], registry=r)
        self.hold_seconds = Gauge("alignloop_rollout_hold_seconds", "Seconds the rollout has been on hold "
                                  "(0 when not holding).", key, registry=r)
        self.skipped = Counter("alignloop_rollout_skipped_records", "Input records the controller skipped, by "
                               "reason.", ["topic", "reason"], registry=r)
        self.turns_skipped = Gauge("alignloop_rollout_skipped_turns", "Turns of the rollout's agent not counted: "
                                   "unattributed (a policy/adapter hash of neither arm), switched (a conversation's "
                                   "turn on the other arm).", key + ["reason"], registry=r)
        self.last_look = Gauge("alignloop_rollout_last_analysis_timestamp_seconds", "When the rollout was last "
                               "analysed.", key, registry=r)

    def flag(self, flag: RolloutFlag) -> None:
        k = (flag.agent_id, flag.rollout_id or "")
        self.weight.labels(*k).set(flag.candidate_weight)
        self.version.labels(*k).set(flag.version)
        for s in STAGES:
            self.stage.labels(*k, s).set(1 if s == flag.stage else 0)

    def analysis(self, flag: RolloutFlag, d: Decision, hold_s: float, now_s: float,
                 skipped: dict[str, int] | None = None) -> None:
        k = (flag.agent_id, flag.rollout_id or "")
        for reason in ("unattributed", "switched"):
            self.turns_skipped.labels(*k, reason).set((skipped or {}).get(reason, 0))
        for arm, c in d.counts.items():
            self.conversations.labels(*k, arm).set(c.conversations)
            self.judged.labels(*k, arm).set(c.judged)
            self.critical.labels(*k, arm).set(c.critical_breaches)
        for m in d.metrics:
            for arm, v in (("baseline", m.mean_baseline), ("candidate", m.mean_candidate)):
                if v is not None:
                    self.mean.labels(*k, m.name, arm).set(v)
            for g, v in ((self.delta, m.delta), (self.harm_upper, m.harm_upper), (self.harm_lower, m.harm_lower),
                         (self.ni_upper, m.ni_upper)):
                if v is not None:
                    g.labels(*k, m.name).set(v)
        self.hold_seconds.labels(*k).set(hold_s)
        self.last_look.labels(*k).set(now_s)
