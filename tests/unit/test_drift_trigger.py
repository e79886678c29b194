from datetime import datetime, timezone

from streams.drift.config import TriggerConfig
from streams.drift.events import DriftEvent
from streams.drift.trigger import RetrainTrigger

T = datetime(2026, 11, 1, tzinfo=timezone.utc)


def event(signal, policy="base"):
    return DriftEvent(event_id=signal, policy_id=policy, signal=signal, detector="page_hinkley", since=T,
                      detected_at=T, ref_mean=0.1, current_mean=0.3, magnitude=0.2, z=8.0)


def test_drift_events_within_the_window_request_retraining_once_per_cooldown():
    tr = RetrainTrigger(TriggerConfig(drift_events=2, window_s=60, labels=100, cooldown_s=600))
    assert tr.on_drift(event("tool_error"), now=0) is None
    assert tr.on_drift(event("refusal"), now=100) is None  # the first one left the window
    req = tr.on_drift(event("latency"), now=130)
    assert req is not None and req.reason == "drift" and req.drift_signals == ["latency", "refusal"]
    assert tr.on_drift(event("a"), now=140) is None and tr.on_drift(event("b"), now=150) is None  # cooling down
    assert tr.on_drift(event("c", policy="other"), now=150) is None  # policies are separate


def test_label_volume_requests_retraining():
    tr = RetrainTrigger(TriggerConfig(labels=100, cooldown_s=0))
    assert tr.on_labels("base", 60, now=0) is None
    req = tr.on_labels("base", 50, now=1)
    assert req is not None and req.reason == "labels" and req.labels_since_last == 110
    assert tr.on_labels("base", 60, now=2) is None  # the count restarted


def test_a_drift_request_is_one_the_trainer_runner_runs_train_then_gate():
    """The trigger names a trainer, a recipe and an eval gate: before this, its requests had no kind and the runner
    refused every one of them ("bad train request field kind")."""
    from trainers.runner import job_commands, parse_request

    tr = RetrainTrigger(TriggerConfig(drift_events=1, kind="dpo"))
    req = tr.on_drift(event("refusal"), now=0)
    parsed = parse_request(req.model_dump_json().encode())
    train, gate = job_commands(parsed, publish=True)
    assert train[3:6] == ["train", "dpo", "--config"] and train[6] == "configs/train/dpo.yaml"
    assert gate[3:4] == ["eval"] and "configs/eval/golden_v0.jsonl" in gate and "configs/eval/gate.yaml" in gate
    from pathlib import Path
    assert all(Path(p).exists() for p in ("configs/train/dpo.yaml", "configs/eval/golden_v0.jsonl",
                                          "configs/eval/gate.yaml"))
