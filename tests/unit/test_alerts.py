"""Prometheus alert rules: syntax check and `promtool test rules` unit tests (deploy/prometheus/*.test.yml).

promtool comes from Debian's `prometheus` package (apt-get install -y prometheus)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROM = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")


def _run(*args: str) -> subprocess.CompletedProcess:
    if PROMTOOL is None:  # a missing tool fails the test: these rules are only trusted when promtool ran them
        pytest.fail("promtool not found: apt-get update && apt-get install -y prometheus")
    return subprocess.run([PROMTOOL, *args], cwd=PROM, capture_output=True, text=True, timeout=120)


def test_rules_and_config_are_valid():
    r = _run("check", "rules", "alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run("check", "config", "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_unit_tests_pass():
    r = _run("test", "rules", *sorted(p.name for p in PROM.glob("*.test.yml")))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


def test_every_alert_has_a_firing_and_a_silent_case():
    alerts = {r["alert"] for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    assert {"AlignloopDriftDetected", "AlignloopCalibrationErrorHigh", "AlignloopEscalationBudgetExhausted",
            "AlignloopDLQRateHigh", "AlignloopConsumerLagHigh", "AlignloopWorkerDown",
            "AlignloopRolloutRolledBack", "AlignloopRolloutStuckOnHold"} <= alerts
    fired, silent = set(), set()
    for path in PROM.glob("*.test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    assert fired == alerts, f"alerts never shown firing: {alerts - fired}"
    assert silent == alerts, f"alerts never shown silent: {alerts - silent}"


def test_scrape_config_targets_the_worker_and_judge_services():
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    targets = {j["job_name"]: t for j in cfg["scrape_configs"] for s in j["static_configs"] for t in s["targets"]}
    assert targets["alignloop-worker"] == "worker:9108" and targets["alignloop-judge"] == "judge:9109"
    jobs_in_rules = set(re.findall(r'job="([^"]+)"', (PROM / "alerts.yml").read_text()))
    assert jobs_in_rules <= set(targets)
