"""Grafana dashboards: structure Grafana needs, and every metric they query is one the code exports."""
import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from alignloop.rollout_metrics import RolloutMetrics
from connectors.llm_judge import LlmJudgeClient
from schemas.llm_judge_config import LlmJudgeConfig
from streams.drift.metrics import DriftMetrics
from streams.escalation.wiring import EscalationMetrics
from streams.hifi.worker import JudgeWorkerMetrics, LlmClientCollector
from streams.metrics import PipelineMetrics

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
# Exported by Prometheus itself.
EXTERNAL = {"up"}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "changes", "histogram_quantile", "le", "label_values"}


def exported_metric_names() -> set[str]:
    reg = CollectorRegistry()
    PipelineMetrics(reg)
    DriftMetrics(reg)
    EscalationMetrics(reg)
    JudgeWorkerMetrics(reg)
    RolloutMetrics(reg)
    reg.register(LlmClientCollector(LlmJudgeClient(LlmJudgeConfig())))  # the LLM client's own metrics
    names = set()
    for fam in reg.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(fam.type, ("",))
        names |= {fam.name + sfx for sfx in suffixes}
    return names | EXTERNAL


def dashboards():
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def test_dashboards_cover_the_required_views():
    titles = " ".join(d["title"] for d in dashboards().values()).lower()
    for view in ("pipeline health", "judge scores", "drift timeline", "calibration", "escalation", "rollouts"):
        assert view in titles


def test_dashboard_structure():
    uids = set()
    for name, d in dashboards().items():
        assert d["uid"] not in uids, name
        uids.add(d["uid"])
        assert d["schemaVersion"] >= 30 and d["panels"], name
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for p in d["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (name, p["title"])
            assert p["targets"] and p["datasource"]["uid"] == "prometheus", (name, p["title"])
            assert all(t["expr"] and t["refId"] for t in p["targets"])
            for t in p["targets"]:
                assert t["expr"].count("(") == t["expr"].count(")"), (name, t["expr"])


def test_every_queried_metric_is_exported():
    known = exported_metric_names()
    for name, d in dashboards().items():
        exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
        exprs += [a["expr"] for a in d["annotations"]["list"] if "expr" in a]
        exprs += [v["definition"] for v in d["templating"]["list"]]
        for e in exprs:
            e = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', "", e)  # drop label matchers, strings, ranges
            for word in re.findall(r"[a-z_][a-z0-9_]*", e):
                if word.startswith("alignloop_") or word == "up":
                    assert word in known, f"{name}: {word} is not exported by any metrics class"


def test_drift_timeline_has_event_annotations_and_provisioning_points_at_the_dashboards():
    d = dashboards()["drift-timeline.json"]
    assert any("alignloop_drift_events_total" in a.get("expr", "") for a in d["annotations"]["list"])
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "alignloop.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["datasources"][0]["uid"] == "prometheus" and ds["datasources"][0]["url"] == "http://prometheus:9090"
