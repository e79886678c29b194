"""Trace contract: canonical and flat (seed 004) layouts, versioning, JSON Schema export."""
from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import TOPICS, Trace, TrainRequest
from schemas.export import export_json_schemas
from schemas.versions import current_schema_version, newer_schema_version

REPO = Path(__file__).resolve().parents[2]

FLAT = {
    "trace_id": "t1", "conversation_id": "c1", "user_message": "book a room",
    "context": "user prefers mornings", "selected_tools": ["calendar.create_event", "email.send"],
    "tool_args": [{"title": "sync"}, {"to": ["a@b.c"]}], "tool_results": [{"id": 7}, None],
    "final_response": "done", "latency": 1.25, "flags": {"safety": False, "quality": True, "lang": "en"},
}


def test_flat_seed_004_layout_maps_onto_canonical_fields():
    t = Trace.model_validate(FLAT)
    assert [c.name for c in t.tool_calls] == ["calendar.create_event", "email.send"]
    assert t.tool_calls[0].args == {"title": "sync"} and t.tool_calls[0].result == {"id": 7}
    assert t.latency_ms == pytest.approx(1250.0)
    assert t.context[0].content == "user prefers mornings"
    assert t.flags == ["lang:en", "quality"]


def test_flat_layout_with_dicts_by_tool_name():
    t = Trace.model_validate({**FLAT, "tool_args": {"email.send": {"to": ["x@y.z"]}}, "tool_results": {}})
    assert t.tool_calls[1].args == {"to": ["x@y.z"]} and t.tool_calls[0].args == {}


def test_tool_error_sets_status():
    t = Trace.model_validate({**FLAT, "selected_tools": [], "tool_calls": [
        {"name": "web.fetch", "error": "Timed out after 30s"}, {"name": "db.query", "error": "boom"}]})
    assert [c.status for c in t.tool_calls] == ["timeout", "error"]


@pytest.mark.parametrize("bad", [
    {"schema_version": 2}, {"trace_id": ""}, {"latency_ms": -1}, {"unknown_field": 1}, {"tool_calls": "x"},
])
def test_invalid_traces_are_rejected(bad):
    base = {k: v for k, v in FLAT.items() if k not in ("selected_tools", "tool_args", "tool_results", "latency")}
    with pytest.raises(ValidationError):
        Trace.model_validate({**base, **bad})


def test_json_schema_export_covers_every_topic(tmp_path):
    paths = export_json_schemas(tmp_path)
    assert {p.name for p in paths} == {f"{s.name}.schema.json" for s in TOPICS.values()} and len(paths) == len(TOPICS)
    trace_schema = json.loads((tmp_path / "agent.traces.schema.json").read_text())
    assert {"trace_id", "user_message", "final_response", "tool_calls"} <= set(trace_schema["properties"])
    assert trace_schema["properties"]["schema_version"]["maximum"] == 1


def test_committed_json_schemas_are_current(tmp_path):
    """schemas/json/ is what non-Python agents read: one file per topic, matching the models (run `alignloop schema
    export`), and no file for a topic that is gone."""
    committed = REPO / "schemas" / "json"
    exported = export_json_schemas(tmp_path)
    assert sorted(p.name for p in committed.glob("*.json")) == sorted(p.name for p in exported)
    for p in exported:
        assert (committed / p.name).read_text() == p.read_text(), f"{p.name} is stale: run alignloop schema export"


# ---- every topic's contract -------------------------------------------------------------------------------------
T0 = "2026-11-01T12:00:00+00:00"
_TRACE = {"trace_id": "t1", "conversation_id": "c1", "user_message": "hi", "final_response": "hello"}
_JUDGED = {"trace": _TRACE, "source": {"topic": "agent.traces", "partition": 0, "offset": 3}, "processed_at": T0}
_MANIFEST = {"adapter_id": "a@1", "name": "a", "version": "1", "kind": "sft", "base_model": "b", "path": "/x",
             "lora": {"r": 4}, "qlora": False, "seed": 0, "dataset": {"table": "sft_examples"}, "config": {},
             "metrics": {}}
_H = "ab" * 32
# One valid record per topic (a new topic needs one here: test_every_topic_has_an_example).
EXAMPLES: dict[str, dict[str, Any]] = {
    "agent.traces": _TRACE,
    "agent.traces.dlq": {"stage": "validate", "reason": "invalid_json", "error": "x", "topic": "agent.traces",
                         "partition": 0, "offset": 1, "size_bytes": 3, "failed_at": T0},
    "traces.judged": _JUDGED,
    "judge.escalations": {"judged": _JUDGED, "priority": 0.9, "reasons": ["risk_tags"]},
    "feedback.labels": {"label_id": "l1", "trace_id": "t1", "passed": True},
    "feedback.preferences": {"pref_id": "p1", "prompt": "q", "candidates": ["a", "b"], "chosen_idx": 0,
                             "rejected_idx": 1},
    "judge.human_queue": {"trace_id": "t1", "reason": "routed_to_human"},
    "drift.events": {"policy_id": "base", "signal": "refusal", "detector": "page_hinkley", "since": T0,
                     "detected_at": T0, "ref_mean": 0.1, "current_mean": 0.3, "z": 4.0},
    "drift.state": None,  # built from fresh monitors below: the snapshot's layout is the monitor's
    "train.requests": {"kind": "dpo", "reason": "drift"},
    "models.registry": {"adapter_id": "a@1", "name": "a", "version": "1", "kind": "sft", "event": "trained",
                        "status": "trained", "base_model": "b", "path": "/x", "seed": 0, "date": "2026-11-01",
                        "created_at": T0, "manifest": _MANIFEST},
    "rollout.flags": {"agent_id": "agent-1", "version": 3, "rollout_id": "r1", "stage": "canary",
                      "baseline": {"policy_id": "base"},
                      "candidate": {"policy_id": "sft@1", "adapter_id": "sft@1", "adapter_hash": _H},
                      "weights": {"baseline": 90, "candidate": 10}},
    "audit.log": {"seq": 0, "actor": "rollout-controller", "action": "rollout.start", "subject": "agent-1",
                  "prev_hash": "0" * 64, "hash": _H},
}

EXAMPLES["feedback.dlq"] = {**EXAMPLES["agent.traces.dlq"], "topic": "feedback.labels"}
EXAMPLES["rollout.decisions"] = {
    "decision_id": "r1:4:step", "rollout_id": "r1", "agent_id": "agent-1", "action": "step", "actor": "controller",
    "reason": "no harm detected; ramp 10 -> 25", "flag_version": 4, "stage": "canary", "weight_before": 10,
    "weight_after": 25, "adapter_id": "sft@1", "adapter_hash": _H, "baseline_policy_id": "base",
    "candidate_policy_id": "sft@1", "counts": {"baseline": {"conversations": 900, "judged": 880,
                                                           "critical_breaches": 0},
                                              "candidate": {"conversations": 100, "judged": 97,
                                                            "critical_breaches": 0}},
    "offsets": {"traces.judged": {"0": 1200}}, "decided_at": T0}


def _fresh_drift_snapshot() -> dict[str, Any]:
    """A monitor's snapshot before it has seen anything: the layout is the monitor's (schemas/drift_state.py)."""
    from schemas.drift_state import SCHEMA_VERSION, DriftSnapshot
    from streams.drift.bank import MonitorBank
    from streams.drift.config import DriftConfig
    from streams.drift.tracker import CalibrationTracker
    from streams.drift.trigger import RetrainTrigger

    cfg = DriftConfig()
    return DriftSnapshot(schema_version=SCHEMA_VERSION, bank=MonitorBank(cfg).state(),
                         tracker=CalibrationTracker(cfg.calibration).state(), trigger=RetrainTrigger(cfg.trigger).state(),
                         label_offsets=[]).model_dump(mode="json")


EXAMPLES["drift.state"] = _fresh_drift_snapshot()
EXAMPLES["drift.erase"] = {"schema_version": 1, "erasure_id": "0123abcd4567",
                           "trace_keys": ["0f1e2d3c4b5a69788796a5b4c3d2e1f0"]}
EXAMPLES["webhooks.dlq"] = {
    "webhook": "ops", "url": "https://ops.example/hook", "webhook_id": "msg_0123", "event_type": "erasure.completed",
    "payload": {"type": "erasure.completed", "timestamp": "2026-12-01T00:00:00Z", "data": {"subject": "c-9"}},
    "attempts": 5, "last_error": "HTTP 503", "last_status": 503, "src_topic": "audit.log", "src_partition": 0,
    "src_offset": 7, "failed_at": "2026-12-01T00:00:05Z"}

EXAMPLES["ingest.otlp_spans"] = {"kind": "spans", "trace_id": "ab" * 16, "spans": [
    {"trace_id": "ab" * 16, "span_id": "cd" * 8, "parent_span_id": "", "name": "chat m", "attributes": {}}]}


def test_every_topic_has_an_example():
    assert set(EXAMPLES) == set(TOPICS)


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_every_topic_has_a_model_in_schemas_with_a_bounded_version(topic):
    model = TOPICS[topic].model
    assert model is not None and model.__module__.startswith("schemas."), f"{topic}: model must live in schemas/"
    current = current_schema_version(model)
    assert current >= 1
    prop = model.model_json_schema()["properties"]["schema_version"]
    assert prop.get("maximum", prop.get("const")) == current  # what agents in other languages see
    rec = model.model_validate_json(json.dumps(EXAMPLES[topic]))
    assert rec.schema_version == current
    assert model.model_validate_json(rec.model_dump_json()) == rec  # what a producer writes, a consumer reads


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_a_newer_schema_version_is_rejected_and_recognised(topic):
    model = TOPICS[topic].model
    future = {**EXAMPLES[topic], "schema_version": current_schema_version(model) + 1}
    with pytest.raises(ValidationError) as exc:
        model.model_validate_json(json.dumps(future))
    assert newer_schema_version(exc.value) == future["schema_version"]
    with pytest.raises(ValidationError) as other:
        model.model_validate_json(b'{"schema_version": "one"}')
    assert newer_schema_version(other.value) is None


def test_newer_versions_are_recognised_under_literal_versions_too():
    from typing import Literal

    from pydantic import BaseModel

    class Snapshot(BaseModel):
        schema_version: Literal[2, 3]

    assert current_schema_version(Snapshot) == 3
    for version, newer in ((4, 4), (1, None), ("3x", None)):
        with pytest.raises(ValidationError) as exc:
            Snapshot.model_validate({"schema_version": version})
        assert newer_schema_version(exc.value) == newer


def test_no_topic_model_is_defined_twice_outside_schemas():
    """One model per concept: the old homes import the contract, they do not define a twin."""
    names = {s.model.__name__ for s in TOPICS.values()} | {"DriftAlarm", "AdapterManifest"}
    twins = []
    for pkg in ("alignloop", "connectors", "streams", "trainers"):
        for path in (REPO / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and node.name in names:
                    twins.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert twins == []
    from streams.drift.events import DriftEvent as DE, TrainRequest as TR
    from streams.drift.monitor import DriftAlarm
    from streams.hifi.step import EscalationEvent as EE, HumanQueueItem as HQ
    from trainers.manifest import AdapterManifest as AM
    from trainers.runner import TrainRequest as RTR

    assert DriftAlarm is DE is TOPICS["drift.events"].model and TR is RTR is TOPICS["train.requests"].model
    assert EE is TOPICS["judge.escalations"].model and HQ is TOPICS["judge.human_queue"].model
    assert AM is TOPICS["models.registry"].model.model_fields["manifest"].annotation


def test_drift_event_ids_are_deterministic_per_worker():
    from schemas.drift import DriftEvent

    alarm = DriftEvent.model_validate(EXAMPLES["drift.events"])
    assert alarm.magnitude == pytest.approx(0.2) and alarm.worker == ""
    # the formula the events were always keyed by: a replayed alarm keeps its id
    assert alarm.event_id == hashlib.sha256(f"base|refusal|{T0}|".encode()).hexdigest()[:24]
    a, b = alarm.for_worker("w1"), alarm.for_worker("w2")
    assert a.worker == "w1" and a.event_id != b.event_id != alarm.event_id
    assert a == alarm.for_worker("w1").model_copy(update={"created_at": a.created_at})
    assert DriftEvent.model_validate_json(a.model_dump_json()).event_id == a.event_id
    assert set(a.to_row()) >= {"event_id", "magnitude", "date", "worker"}


def test_train_requests_from_the_drift_trigger_and_from_people_share_one_contract():
    from trainers.runner import parse_request

    drift = TrainRequest(request_id="r1", policy_id="p", reason="drift", drift_signals=["refusal"])
    assert TrainRequest.model_validate_json(drift.to_json()) == drift
    with pytest.raises(ValueError, match="kind: Field required"):  # the runner runs requests that name a trainer
        parse_request(drift.to_json())
    req = parse_request(json.dumps({"kind": "sft", "note": "context fields are ignored"}).encode())
    assert req.kind == "sft" and req.config_path() == "configs/train/sft.yaml"
    with pytest.raises(ValueError, match="schema_version 2 is newer than this runner understands"):
        parse_request(json.dumps({"kind": "sft", "schema_version": 2}).encode())


def test_registry_event_carries_the_row_and_the_manifest():
    from schemas.registry import AdapterManifest, RegistryEvent
    from trainers.registry import registry_event, registry_row

    m = AdapterManifest(**_MANIFEST, gate={"passed": True})
    ev = registry_event(registry_row(m, "gated"))
    assert (ev.adapter_id, ev.event, ev.status, ev.dataset_table) == ("a@1", "gated", "gate_passed", "sft_examples")
    assert ev.manifest == m and ev.gate == {"passed": True}
    assert RegistryEvent.model_validate_json(ev.model_dump_json()) == ev


@pytest.mark.parametrize("change, why", [
    ({"weights": {"baseline": 90, "candidate": 20}}, "sum to 100"),
    ({"weights": {"baseline": 110, "candidate": -10}}, "non-negative"),
    ({"candidate": None}, "candidate weight needs a candidate"),
    ({"rollout_id": None}, "candidate variant needs a rollout_id"),
    ({"candidate": {"policy_id": "x", "adapter_id": "x@1"}}, "adapter_id and adapter_hash go together"),
    ({"weights": {"baseline": 50, "shadow": 50}}, "literal_error|Input should be"),
    ({"version": -1}, "greater than or equal"),
])
def test_bad_rollout_flags_are_rejected(change, why):
    from schemas.rollout import RolloutFlag

    with pytest.raises(ValidationError, match=why):
        RolloutFlag.model_validate({**EXAMPLES["rollout.flags"], **change})


def test_rollout_flag_versions_only_go_up():
    from schemas.rollout import RolloutFlag

    v3 = RolloutFlag.model_validate(EXAMPLES["rollout.flags"])
    v4 = v3.model_copy(update={"version": 4, "weights": {"baseline": 75, "candidate": 25}})
    assert v3.follows(None) and v4.follows(v3)
    assert not v3.follows(v4) and not v3.follows(v3)
    assert not v4.model_copy(update={"agent_id": "agent-2"}).follows(v3)


def test_audit_chain_detects_edits_removals_and_reordering():
    from schemas.audit import GENESIS_HASH, AuditEntry, verify_chain

    chain: list[AuditEntry] = []
    for i, action in enumerate(["rollout.start", "rollout.step", "rollout.promote"]):
        chain.append(AuditEntry.after(chain[-1] if chain else None, actor="controller", action=action,
                                      subject="agent-1", details={"weight": 25 * (i + 1)}))
    assert chain[0].prev_hash == GENESIS_HASH and [e.seq for e in chain] == [0, 1, 2]
    assert all(e.prev_hash == p.hash for p, e in zip(chain, chain[1:]))
    read_back = [AuditEntry.model_validate_json(e.model_dump_json()) for e in chain]
    assert verify_chain(read_back) is None
    edited = chain[1].model_copy(update={"details": {"weight": 100}})
    assert verify_chain([chain[0], edited, chain[2]]) == 1
    assert verify_chain([chain[0], chain[2]]) == 2  # a removed entry
    assert verify_chain([chain[1], chain[0], chain[2]]) == 1  # reordered
    forged = AuditEntry.after(chain[0], actor="mallory", action="rollout.promote", subject="agent-1")
    assert verify_chain([chain[0], forged, chain[2]]) == 2  # a substitute breaks the link after it


def test_flat_layout_in_json_validates_like_the_dict_and_its_errors_are_the_mapped_ones():
    """The canonical layout validates in one JSON pass; a flat record falls back to the mapping, so JSON and dict
    give the same trace, and a flat record with a real error reports that error, not the flat keys."""
    flat = {**FLAT, "timestamp": "2026-12-01T10:00:00Z"}
    assert Trace.model_validate_json(json.dumps(flat)) == Trace.model_validate(flat)
    with pytest.raises(ValidationError) as err:
        Trace.model_validate_json(json.dumps({**FLAT, "latency": -1}))
    assert [e["loc"] for e in err.value.errors()] == [("latency_ms",)]
    with pytest.raises(ValidationError) as err:
        Trace.model_validate_json(json.dumps({**FLAT, "selected_tools": "calc"}))
    assert "selected_tools must be a list" in str(err.value)
    with pytest.raises(ValidationError) as err:
        Trace.model_validate_json(json.dumps({**FLAT, "unknown_field": 1}))
    assert [e["loc"] for e in err.value.errors()] == [("unknown_field",)]
