"""Every stage bounded per record: pathological sizes finish in bounded time, in the DLQ with a reason or judged;
a record over a stage's time budget is dead-lettered naming the stage; nesting past the parser is invalid_json."""
from __future__ import annotations

import json
import time

import pytest

from alignloop.configs import load_configs
from alignloop.simulate import Simulator
from schemas.dlq import DeadLetter
from schemas.record import Record
from schemas.settings import Settings
from schemas.verdict import JudgedTrace
from streams.judges.base import Judge, make_verdict
from streams.pipeline import Pipeline, RecordLimits

BOUND_S = 5.0  # CPU seconds: a quadratic stage takes minutes; waiting for a busy CPU does not count


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    tmp = tmp_path_factory.mktemp("limits")
    return Pipeline.from_settings(s := Settings(home=tmp / "home", lake_root=str(tmp / "lake")), load_configs(s))


def _trace(**changes) -> dict:
    rec, _ = Simulator(seed=4).trace(0)
    return {**rec, **changes}


def _timed(p: Pipeline, raw: bytes) -> tuple[JudgedTrace | DeadLetter, float]:
    started = time.process_time()  # CPU, not wall: the bound is on the work, not on the machine's load
    out = p.process(raw, "agent.traces", 0, 0)
    return out, time.process_time() - started


def _nested(depth: int) -> bytes:
    head = json.dumps(_trace()).encode()[:-1]
    return head + b',"metadata":{"x":' + b"[" * depth + b"]" * depth + b"}}"


@pytest.mark.parametrize("name, raw, reason", [
    ("100,000 tool calls", json.dumps(_trace(tool_calls=[{"name": "t", "args": {}}] * 100_000)).encode(),
     "over_limit"),
    ("333,000 empty context items", json.dumps(_trace(context=[""] * 333_000)).encode(), "over_limit"),
    ("nesting 100,000 deep", _nested(100_000), "invalid_json"),
    ("nesting 2,000 deep", _nested(2_000), "invalid_json"),
    ("nesting 300 deep", _nested(300), "invalid_json"),
])
def test_pathological_records_are_dead_lettered_in_bounded_time(pipeline, name, raw, reason) -> None:
    p = Pipeline(pipeline.scrubber, pipeline.judges, limits=RecordLimits(max_record_bytes=4_000_000))
    out, took = _timed(p, raw)
    assert took < BOUND_S, (name, took)
    assert isinstance(out, DeadLetter) and (out.stage, out.reason) == ("validate", reason), (name, out)
    assert out.value == raw and out.error


@pytest.mark.parametrize("name, changes", [
    ("1,000 tool calls (the limit)", {"tool_calls": [{"name": f"t{i}", "args": {"i": i}} for i in range(1000)]}),
    ("1,000 context items (the limit)", {"context": ["a note"] * 1000}),
    ("a 900 KB answer", {"final_response": "lorem ipsum dolor " * 50_000}),
    ("nesting 60 deep", {"metadata": {"x": json.loads("[" * 60 + "]" * 60)}}),
])
def test_large_records_within_the_limits_are_judged_in_bounded_time(pipeline, name, changes) -> None:
    out, took = _timed(pipeline, json.dumps(_trace(**changes)).encode())
    assert took < BOUND_S, (name, took)
    assert isinstance(out, JudgedTrace), (name, getattr(out, "error", None))


def test_the_limits_are_settings(tmp_path) -> None:
    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"), max_tool_calls=2, max_context_items=1)
    p = Pipeline.from_settings(s, load_configs(s))
    two = json.dumps(_trace(tool_calls=[{"name": "a"}, {"name": "b"}], context=["x"])).encode()
    assert isinstance(p.process(two, "t", 0, 0), JudgedTrace)
    three = p.process(json.dumps(_trace(tool_calls=[{"name": "a"}] * 3)).encode(), "t", 0, 1)
    assert (three.reason, three.error) == ("over_limit", "3 tool calls; the limit is 2 (max_tool_calls)")
    ctx = p.process(json.dumps(_trace(context=["x", "y"])).encode(), "t", 0, 2)
    assert ctx.reason == "over_limit" and "(max_context_items)" in ctx.error


class Slow(Judge):
    """A judge that takes too long on some traces (as a quadratic path would on a large one)."""
    name = "slow"

    def judge(self, trace, ctx):
        if trace.user_message.startswith("SLOW"):
            time.sleep(0.3)
        return make_verdict(self.name, self.version, {"safety": 1.0})


def test_a_record_over_its_stage_budget_is_dead_lettered_and_the_batch_goes_on(pipeline) -> None:
    p = Pipeline(pipeline.scrubber, [*pipeline.judges, Slow()], limits=RecordLimits(stage_budget_s=0.2))
    sim = Simulator(seed=8)
    records = [Record("agent.traces", 0, i, None, json.dumps(sim.trace(i)[0]).encode()) for i in range(20)]
    records[7] = Record("agent.traces", 0, 7, b"k", json.dumps(_trace(user_message="SLOW please")).encode())
    out = p.process_batch(records)
    late = out[7]
    assert isinstance(late, DeadLetter) and (late.stage, late.reason, late.offset, late.key) == \
        ("judge", "over_budget", 7, b"k")
    assert "(stage_budget_s)" in late.error and late.value == records[7].value
    assert all(isinstance(o, JudgedTrace) for i, o in enumerate(out) if i != 7)
