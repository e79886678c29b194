"""Issue 13 item 8: numbers that are not numbers. NaN, ±Infinity and overflowing literals (1e999) anywhere in a
trace fail validation and go to the DLQ as validation_error naming the field; ordinary traces are unaffected."""
from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from alignloop.simulate import Simulator
from schemas.trace import Trace
from streams.pipeline import Pipeline
from streams.scrub import Pseudonymizer, TieredScrubber

BASE = '"trace_id": "t1", "conversation_id": "c1", "user_message": "book a room", "final_response": "done"'
TOKENS = ["Infinity", "-Infinity", "NaN", "1e999", "-1e999"]
# (JSON fragment with X where the number goes, the field path the DLQ error must name)
PLACES = [
    ('"latency_ms": X', "latency_ms"),
    ('"latency": X', "latency_ms"),  # the flat 004 layout, in seconds
    ('"tool_calls": [{"name": "db.query", "latency_ms": X}]', "tool_calls.0.latency_ms"),
    ('"metadata": {"score": X}', "metadata.score"),
    ('"metadata": {"run": {"stats": [1, 2.5, X]}}', "metadata.run.stats.2"),
    ('"tool_calls": [{"name": "a"}, {"name": "calc", "args": {"x": {"y": [X]}}}]', "tool_calls.1.args.x.y.0"),
    ('"tool_calls": [{"name": "calc", "result": X}]', "tool_calls.0.result"),
    ('"tool_calls": [{"name": "calc", "result": [{"rows": [[0, X]]}]}]', "tool_calls.0.result.0.rows.0.1"),
    ('"selected_tools": ["calc"], "tool_args": [{"n": X}]', "tool_calls.0.args.n"),
    ('"selected_tools": ["calc"], "tool_results": {"calc": {"v": X}}', "tool_calls.0.result.v"),
    ('"context": {"memory": {"budget": X}}', "context.memory.budget"),
]


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(TieredScrubber(Pseudonymizer("k")), [])


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("place, field", PLACES)
def test_non_finite_numbers_go_to_the_dlq_naming_the_field(pipeline: Pipeline, place: str, field: str,
                                                            token: str) -> None:
    raw = ("{" + BASE + ", " + place.replace("X", token) + "}").encode()
    got = pipeline.validate(raw)
    assert isinstance(got, tuple), f"{place} with {token} was accepted"
    reason, error = got
    assert reason == "validation_error"
    assert field in error and "finite number" in error


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_python_callers_get_the_same_rule(value: float) -> None:
    ok: dict[str, Any] = dict(trace_id="t", conversation_id="c", user_message="u", final_response="f")
    for bad in ({"latency_ms": value}, {"metadata": {"a": [{"b": value}]}},
                {"tool_calls": [{"name": "x", "args": {"k": value}}]},
                {"tool_calls": [{"name": "x", "result": (1, value)}]}):
        with pytest.raises(ValidationError, match="finite number"):
            Trace(**ok, **bad)


def test_ordinary_traces_and_words_that_look_like_tokens_are_unaffected(pipeline: Pipeline) -> None:
    sim = Simulator(seed=3)
    for i in range(2000):
        raw = json.dumps(sim.trace(i)[0]).encode()
        assert isinstance(pipeline.validate(raw), Trace), raw[:200]
    wordy = json.loads("{" + BASE + "}") | {
        "metadata": {"film": "Infinity War", "note": "NaN means not a number", "big": 1e308, "neg": -2.5e-300},
        "tool_calls": [{"name": "search", "args": {"q": "-Infinity"}, "result": {"title": "NaN", "n": 0.0}}]}
    t = pipeline.validate(json.dumps(wordy).encode())
    assert isinstance(t, Trace) and t.metadata["film"] == "Infinity War" and t.metadata["big"] == 1e308
    assert json.loads(t.model_dump_json())["metadata"] == wordy["metadata"]  # what lands is valid JSON, as sent


def test_nesting_deeper_than_the_serialiser_and_cycles_from_python_callers() -> None:
    ok: dict[str, Any] = dict(trace_id="t", conversation_id="c", user_message="u", final_response="f")
    deep: Any = "fine"
    bad: Any = math.nan
    for _ in range(5000):
        deep, bad = [deep], [bad]
    assert Trace(**ok, tool_calls=[{"name": "x", "args": {"blob": deep}}]).tool_calls[0].args["blob"] == deep
    with pytest.raises(ValidationError, match=r"metadata\.a(\.0){5000} is not a finite number"):
        Trace(**ok, metadata={"a": bad})
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValidationError, match="must be JSON values"):
        Trace(**ok, metadata={"a": cycle})


def test_json_this_system_wrote_skips_the_non_finite_check_and_nothing_else_does():
    """``OWN_JSON`` (a replay reading back a ``traces`` row, written by ``to_json``, which writes no non-finite
    number) skips the check; any other context, an equal dict included, does not."""
    import json

    from schemas.trace import OWN_JSON, Trace

    doc = json.dumps({"trace_id": "t", "conversation_id": "c", "agent_id": "a", "policy_id": "p",
                      "user_message": "", "final_response": "", "metadata": {"x": 1e400}})
    for context in (None, {"own_json": True}, {}):
        with pytest.raises(ValueError, match="metadata.x is not a finite number"):
            Trace.model_validate_json(doc, context=context)
    assert Trace.model_validate_json(doc, context=OWN_JSON).metadata["x"] == float("inf")
