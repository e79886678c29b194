"""The pipeline runs its judges with GuardedJudge's semantics itself: a raising judge yields an error verdict (the
trace still lands), and each judge sees the verdicts before it in ``ctx.cache["verdicts"]``."""
from __future__ import annotations

import json

from alignloop.simulate import Simulator
from schemas.verdict import JudgedTrace
from streams.judges.base import GuardedJudge, Judge, make_verdict
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


def test_bare_and_guarded_judges_give_the_same_verdicts() -> None:
    scrubber = TieredScrubber(Pseudonymizer("k"))
    for judges in ([Boom(), Seen(), Seen()], [GuardedJudge(Boom()), GuardedJudge(Seen()), GuardedJudge(Seen())]):
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
