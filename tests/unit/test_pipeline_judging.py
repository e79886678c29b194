"""The pipeline runs its judges through ``run_judges``: a raising judge yields an error verdict (the
trace still lands), and each judge sees the verdicts before it in ``ctx.cache["verdicts"]``."""
from __future__ import annotations

import json

from alignloop.configs import load_configs
from alignloop.simulate import Simulator
from schemas.verdict import JudgedTrace
from streams.judges.base import Judge, make_verdict
from streams.pipeline import Pipeline
from streams.scrub import Pseudonymizer, TieredScrubber


class Boom(Judge):
    name, version = "boom", "7"

    def judge(self, trace, ctx):
        raise RuntimeError("bad judge")


class Seen(Judge):
    name = "seen"

    def judge(self, trace, ctx):
        before = [v.judge for v in ctx.cache.get("verdicts", [])]
        return make_verdict(self.name, self.version, {"safety": 1.0}, reasons=[",".join(before)])


def _raw() -> bytes:
    rec, _ = Simulator(seed=1).trace(0)
    return json.dumps(rec).encode()


def test_a_raising_judge_costs_one_error_verdict_and_later_judges_see_the_earlier_ones() -> None:
    scrubber = TieredScrubber(Pseudonymizer("k"))
    for judges in ([Boom(), Seen(), Seen()],):
        out = Pipeline(scrubber, judges).process(_raw(), "t", 0, 5)
        assert isinstance(out, JudgedTrace)
        boom, first, second = out.verdicts
        assert (boom.judge, boom.judge_version, boom.status, boom.tags) == ("boom", "7", "error", ["judge_error"])
        assert boom.error == "RuntimeError: bad judge"
        assert first.reasons == ["boom"] and second.reasons == ["boom,seen"]
        assert out.outcome == "flag"


def test_replacing_the_judges_takes_effect() -> None:
    p = Pipeline(TieredScrubber(Pseudonymizer("k")), [Seen()])
    assert [v.judge for v in p.process(_raw(), "t", 0, 1).verdicts] == ["seen"]
    p.judges = []
    out = p.process(_raw(), "t", 0, 2)
    assert out.verdicts == [] and out.outcome == "pass" and p.judges == []


def test_a_batch_gives_what_each_record_gives_alone(tmp_path) -> None:
    """process_batch runs the stages over the whole batch; its outcomes (dead letters included, in order) are the
    ones process gives record by record."""
    from schemas.settings import Settings
    from schemas.dlq import DeadLetter

    class Picky(Judge):  # raises on some traces only
        name = "picky"

        def judge(self, trace, ctx):
            if trace.user_message.startswith("Fix"):
                raise ValueError("no fixing")
            return make_verdict(self.name, self.version, {"safety": 1.0})

    settings = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"))
    base = Pipeline.from_settings(settings, load_configs(settings))
    p = Pipeline(base.scrubber, [*base.judges, Picky()])
    sim = Simulator(seed=2)
    records = [("agent.traces", i % 3, 40 + i, f"k{i}".encode(), json.dumps(sim.trace(i)[0]).encode())
               for i in range(120)]
    records[5] = (*records[5][:4], b"{not json")
    records[9] = (*records[9][:4], json.dumps({**sim.trace(9)[0], "latency_ms": "slow"}).encode())
    batch = p.process_batch(records)
    alone = [p.process(v, t, part, off, k) for t, part, off, k, v in records]
    assert len(batch) == len(alone) == 120

    def same(o):
        return o.model_dump(exclude={"processed_at", "failed_at"})

    assert [same(b) for b in batch] == [same(a) for a in alone]
    letters = [o for o in batch if isinstance(o, DeadLetter)]
    assert [(o.offset, o.stage, o.reason) for o in letters] == [(45, "validate", "invalid_json"),
                                                                (49, "validate", "validation_error")]
    picky = [o.verdicts[-1] for o in batch if isinstance(o, JudgedTrace) and o.trace.user_message.startswith("Fix")]
    assert picky and all(v.status == "error" and v.error == "ValueError: no fixing" for v in picky)

    def broken_scrub(trace, scrubber):
        raise RuntimeError("scrubber bug")

    p._scrub_trace = broken_scrub  # a bug in a stage costs its records (kept in the DLQ), never the batch
    out = p.process_batch(records[:4])
    assert [(o.offset, o.stage, o.reason, o.value) for o in out] == \
        [(40 + i, "scrub", "processing_error", records[i][4]) for i in range(4)]
