from __future__ import annotations

import json

import pytest

from schemas.settings import ConfigError, load_settings
from alignloop.simulate import Drift, Knobs, Simulator
from schemas.trace import Trace


def test_env_overrides_and_one_line_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("ALIGNLOOP_CONFIG", "")  # empty: no settings file
    monkeypatch.setenv("ALIGNLOOP_KAFKA_BOOTSTRAP", "k1:9092,k2:9093")
    monkeypatch.setenv("ALIGNLOOP_PII_HMAC_KEY", "s3cret-value")
    s = load_settings()
    assert s.kafka_bootstrap == "k1:9092,k2:9093"
    assert "s3cret-value" not in repr(s) and "s3cret-value" not in str(s.model_dump())
    monkeypatch.setenv("ALIGNLOOP_PARTITIONS", "zero")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = str(err.value)
    assert "\n" not in msg and "ALIGNLOOP_PARTITIONS" in msg


def test_yaml_config_is_read_and_env_wins(monkeypatch, tmp_path):
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text("partitions: 8\ntopic_prefix: prod.\n")
    monkeypatch.setenv("ALIGNLOOP_CONFIG", str(cfg))
    monkeypatch.setenv("ALIGNLOOP_TOPIC_PREFIX", "stage.")
    s = load_settings()
    assert s.partitions == 8 and s.topic("agent.traces") == "stage.agent.traces"


def test_simulator_is_deterministic_and_valid():
    a = list(Simulator(seed=5).records(300, malformed=0.1))
    b = list(Simulator(seed=5).records(300, malformed=0.1))
    assert [r[1] for r in a] == [r[1] for r in b]
    assert [r[1] for r in a] != [r[1] for r in Simulator(seed=6).records(300, malformed=0.1)]
    valid = [v for _, v, truth, kind in a if kind is None]
    assert len(valid) > 200
    traces = [Trace.model_validate_json(v) for v in valid]
    assert {t.agent_id for t in traces} == {f"agent-{d}" for d in
                                            ("scheduling", "messaging", "ops", "research", "coding")}
    truths = [truth for _, _, truth, kind in a if kind is None]
    assert any(t.bad for t in truths) and any(t.pii for t in truths) and any(t.tool_failed for t in truths)
    assert any(t.unsafe_request and t.refused for t in truths)


def test_size_knob_pads_traces():
    sizes = [len(v) for _, v, _, _ in Simulator(seed=1, knobs=Knobs(size_bytes=2000)).records(100)]
    assert 1800 < sum(sizes) / len(sizes) < 2600


def test_drift_changes_distribution_after_the_change_point():
    sim = Simulator(seed=2, drifts=[Drift.parse("at=2000,tool_failure_rate=0.6")])
    truths = [sim.trace(i)[1] for i in range(4000)]
    before = sum(t.tool_failed for t in truths[:2000] if not t.unsafe_request) / 2000
    after = sum(t.tool_failed for t in truths[2000:] if not t.unsafe_request) / 2000
    assert after > before + 0.3
    assert {t.drift_phase for t in truths[:2000]} == {0} and {t.drift_phase for t in truths[2000:]} == {1}


def test_gradual_drift_ramps():
    sim = Simulator(seed=2, drifts=[Drift(at=100, changes={"unsafe_rate": 0.5}, ramp=100)])
    assert sim.knobs_at(99)[0].unsafe_rate == pytest.approx(0.06)
    assert 0.06 < sim.knobs_at(150)[0].unsafe_rate < 0.5
    assert sim.knobs_at(250)[0].unsafe_rate == pytest.approx(0.5)


@pytest.mark.parametrize("spec", ["ramp=3", "at=x,unsafe_rate=1", "at=1,nope=2"])
def test_bad_drift_specs_name_the_fix(spec):
    with pytest.raises(ValueError, match="drift spec|unknown knob"):
        Drift.parse(spec)


def test_malformed_kinds_are_really_malformed():
    sim = Simulator(seed=3)
    for i in range(8):
        raw, kind = sim.malformed(i, max_bytes=4096)
        if kind in ("not_json", "random_bytes", "invalid_utf8"):
            with pytest.raises(ValueError):
                json.loads(raw)


def test_settings_env_carries_settings_and_secrets_and_keeps_area_variables(monkeypatch):
    from pydantic import SecretStr

    from alignloop.runner import settings_env
    from schemas.settings import Settings

    monkeypatch.setenv("ALIGNLOOP_JUDGES_CONFIG", "configs/other-judges.yaml")
    s = Settings(kafka_bootstrap="k:1", kafka_sasl_password=SecretStr("pw"), lake_storage_options={"a": "b"})
    env = settings_env(s)
    assert env["ALIGNLOOP_KAFKA_BOOTSTRAP"] == "k:1" and env["ALIGNLOOP_KAFKA_SASL_PASSWORD"] == "pw"
    assert env["ALIGNLOOP_JUDGES_CONFIG"] == "configs/other-judges.yaml"  # area configs pass through
    monkeypatch.setattr("os.environ", env)
    assert load_settings() == s  # a subprocess with this environment loads exactly these settings
