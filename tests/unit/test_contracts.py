"""Trace contract: canonical and flat (seed 004) layouts, versioning, JSON Schema export."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas import TOPICS, Trace
from schemas.export import export_json_schemas

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


def test_json_schema_export_covers_every_modelled_topic(tmp_path):
    paths = export_json_schemas(tmp_path)
    assert {p.name for p in paths} == {f"{s.name}.schema.json" for s in TOPICS.values() if s.model}
    trace_schema = json.loads((tmp_path / "agent.traces.schema.json").read_text())
    assert {"trace_id", "user_message", "final_response", "tool_calls"} <= set(trace_schema["properties"])
    assert trace_schema["properties"]["schema_version"]["maximum"] == 1


def test_committed_json_schemas_are_current(tmp_path):
    """schemas/json/ is what non-Python agents read: it must match the models (run `alignloop schema export`)."""
    from pathlib import Path

    committed = Path(__file__).resolve().parents[2] / "schemas" / "json"
    for p in export_json_schemas(tmp_path):
        assert (committed / p.name).read_text() == p.read_text(), f"{p.name} is stale: run alignloop schema export"
