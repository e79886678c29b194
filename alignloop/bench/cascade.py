"""``alignloop bench cascade``: the judge cascade on a simulated stream whose true labels are known.

Every trace goes through the real pipeline step (validate, scrub, fast judges), the learning judge and the
escalator; escalated traces are labelled by a simulated high-fidelity judge (the simulator's truth, flipped with
``--label-noise``) after ``--label-delay`` traces, and the labels feed the learning judge. Reports escalation
rate, recall of the truly bad traces the fast judges missed, escalation precision, cascade precision/recall,
the learning judge's Cohen's kappa as it learns, and the fast judges' share of the pipeline's per-trace cost
(with vs without fast judges, same run).
"""
from __future__ import annotations

import json
import random
import time
from collections import deque
from typing import Any

import typer


def _overhead(raws: list[bytes], scrubber: Any, judges: list[Any], reps: int) -> dict[str, float]:
    """Per-trace cost of the pipeline step (process + JSON encode) with and without the fast judges."""
    from streams.pipeline import Pipeline

    with_j, without = Pipeline(scrubber, judges), Pipeline(scrubber, [])

    batch = [("agent.traces", 0, i, None, r) for i, r in enumerate(raws)]

    def run(p: Any) -> float:  # one batch, judged stage by stage as the worker does
        t0 = time.perf_counter()
        for out in p.process_batch(batch):
            out.model_dump_json()
        return (time.perf_counter() - t0) / len(raws) * 1e6

    a, b = [], []
    for _ in range(reps):  # interleaved, best-of: the machine is shared
        b.append(run(without))
        a.append(run(with_j))
    from schemas.trace import Trace
    from streams.judges.base import JudgeContext
    from streams.scrub import scrub_trace

    clean = [scrub_trace(Trace.model_validate_json(r), scrubber) for r in raws]
    js = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for t, pii in clean:
            ctx = JudgeContext(pii=pii)
            for j in judges:
                j.judge(t, ctx)
        js.append((time.perf_counter() - t0) / len(clean) * 1e6)
    base, full = min(b), min(a)
    return {"spine_us_per_trace": round(base, 1), "spine_with_fast_judges_us_per_trace": round(full, 1),
            "fast_judges_overhead_pct": round((full - base) / base * 100, 1),
            "fast_judges_alone_us_per_trace": round(min(js), 1),
            # judging alone over the judge-free spine: steadier than a difference of two noisy timings
            "fast_judges_share_pct": round(min(js) / base * 100, 1)}


def run_cascade(n: int = 20_000, seed: int = 11, rate: float = 200.0, label_delay: int = 200,
                label_noise: float = 0.03, size_bytes: int = 2000, drain_every: int = 50,
                overhead_traces: int = 1500, reps: int = 5) -> dict[str, Any]:
    from alignloop.configs import load_configs
    from schemas.settings import load_settings
    from alignloop.simulate import Knobs, Simulator
    from streams.escalation.escalator import Escalator
    from streams.judges import build_fast_judges
    from streams.judges.base import JudgeContext
    from streams.judges.learning import LearningJudge
    from streams.pipeline import Pipeline
    from streams.scrub import build_scrubber

    settings = load_settings()
    configs = load_configs(settings)
    cfg = configs.judges
    scrubber = build_scrubber(settings, configs.scrub)
    judges = build_fast_judges(configs.policy, configs.judges)
    pipe = Pipeline(scrubber, judges)
    learner = LearningJudge(**cfg.learning.judge_kwargs())
    esc = Escalator(cfg.escalation)
    sim = Simulator(seed=seed, knobs=Knobs(size_bytes=size_bytes), rate_hint=rate)
    noise = random.Random(seed + 1)
    # Time the fast judges first, on a fresh heap: after the cascade run the learner's feature cache makes every
    # allocation pay for garbage-collector scans, which would be charged to whichever code allocates most.
    timing_sim = Simulator(seed=seed + 2, knobs=Knobs(size_bytes=size_bytes))  # one simulator: varied traces
    raws = [json.dumps(timing_sim.trace(i)[0]).encode() for i in range(overhead_traces)]
    overhead = _overhead(raws, scrubber, judges, reps)
    del raws

    truth_bad: dict[str, bool] = {}
    fast_missed: set[str] = set()
    fast_flagged: set[str] = set()
    escalated: set[str] = set()
    label_queue: deque[tuple[int, str]] = deque()
    kappa_curve: list[dict[str, Any]] = []
    missed_info: dict[str, tuple[float, list[str], int]] = {}
    t_start = time.perf_counter()
    for i in range(n):
        rec, truth = sim.trace(i)
        raw = json.dumps(rec).encode()
        jt = pipe.process(raw, "agent.traces", 0, i)
        tid = jt.trace.trace_id  # type: ignore[union-attr]
        truth_bad[tid] = truth.bad
        if jt.outcome == "pass":  # type: ignore[union-attr]
            if truth.bad:
                fast_missed.add(tid)
        else:
            fast_flagged.add(tid)
        x = learner.features(jt.trace, JudgeContext(pii=jt.pii), jt.verdicts)  # type: ignore[union-attr]
        learner.remember(tid, x)
        learned = learner.predict_x(x) if learner.n_labels >= learner.min_labels else None
        a = esc.assess(tid, jt.verdicts, jt.outcome, learned)  # type: ignore[union-attr]
        if tid in fast_missed:
            missed_info[tid] = (round(a.priority, 3), [r.split(":")[0] for r in a.reasons], i)
        now = i / rate
        esc.offer(tid, a, now)
        if i % drain_every == 0:
            for e in esc.drain(now):
                escalated.add(e.payload)
                label_queue.append((i + label_delay, e.payload))
        while label_queue and label_queue[0][0] <= i:
            _, t = label_queue.popleft()
            y_bad = truth_bad[t] if noise.random() >= label_noise else not truth_bad[t]
            learner.learn(t, passed=not y_bad)
        if (i + 1) % max(1, n // 10) == 0:
            s = learner.stats()
            kappa_curve.append({"traces": i + 1, "labels": s["labels"], "kappa": round(s["kappa"], 4),
                                "rolling_kappa": round(s["rolling_kappa"], 4)})
    for e in esc.drain(n / rate, flush=True):
        escalated.add(e.payload)
    elapsed = time.perf_counter() - t_start

    bad = {t for t, b in truth_bad.items() if b}
    caught_missed = fast_missed & escalated
    cascade_flag = fast_flagged | {t for t in escalated if truth_bad[t]}  # the HF judge confirms what is bad
    figures: dict[str, Any] = {
        "traces": n, "seed": seed, "rate_per_s": rate, "label_delay_traces": label_delay, "label_noise": label_noise,
        "truly_bad": len(bad), "fast_flagged": len(fast_flagged), "fast_missed_bad": len(fast_missed),
        "fast_precision": round(len(fast_flagged & bad) / max(1, len(fast_flagged)), 4),
        "fast_recall": round(len(fast_flagged & bad) / max(1, len(bad)), 4),
        "escalated": len(escalated), "escalation_rate": round(len(escalated) / n, 4),
        "bad_caught_recall": round(len(caught_missed) / max(1, len(fast_missed)), 4),
        "escalation_precision": round(len(escalated & bad) / max(1, len(escalated)), 4),
        "cascade_precision": round(len(cascade_flag & bad) / max(1, len(cascade_flag)), 4),
        "cascade_recall": round(len(cascade_flag & bad) / max(1, len(bad)), 4),
        "learning_judge_kappa": round(learner.stats()["kappa"], 4),
        "learning_judge_rolling_kappa": round(learner.stats()["rolling_kappa"], 4),
        "learning_judge_labels": learner.n_labels, "kappa_curve": kappa_curve,
        "escalator": esc.stats(), "cascade_traces_per_s": round(n / elapsed, 1),
        "missed_bad_not_escalated": [{"priority": p, "reasons": r, "index": i}
                                     for t, (p, r, i) in missed_info.items() if t not in escalated],
    }
    figures.update(overhead)
    return figures


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("cascade")
    def cascade(
        n: int = typer.Option(20_000, help="Simulated traces."),
        seed: int = typer.Option(11, help="Simulator seed."),
        rate: float = typer.Option(200.0, help="Simulated traces per second (drives the per-minute budgets)."),
        label_delay: int = typer.Option(200, help="Traces between an escalation and its label."),
        label_noise: float = typer.Option(0.03, help="Probability the simulated high-fidelity label is wrong."),
        size_bytes: int = typer.Option(2000, help="Pad traces to about this size."),
        overhead_traces: int = typer.Option(1500, help="Traces used to time the fast judges' share of the spine."),
    ) -> None:
        """Cascade routing quality on a simulated stream with known truth; writes bench/results/cascade-*.json."""
        from alignloop.bench._results import print_table, write_result
        from alignloop.cli import UserError

        if n < 100 or rate <= 0 or not 0 <= label_noise < 0.5 or label_delay < 0:
            raise UserError("need --n >= 100, --rate > 0, 0 <= --label-noise < 0.5, --label-delay >= 0")
        figs = run_cascade(n=n, seed=seed, rate=rate, label_delay=label_delay, label_noise=label_noise,
                           size_bytes=size_bytes, overhead_traces=min(overhead_traces, n))
        keys = ["traces", "truly_bad", "fast_missed_bad", "escalation_rate", "bad_caught_recall",
                "escalation_precision", "cascade_precision", "cascade_recall", "learning_judge_kappa",
                "learning_judge_rolling_kappa", "learning_judge_labels", "spine_us_per_trace",
                "spine_with_fast_judges_us_per_trace", "fast_judges_overhead_pct", "fast_judges_alone_us_per_trace",
                "fast_judges_share_pct",
                "cascade_traces_per_s"]
        print_table("judge cascade", [(k, figs[k]) for k in keys])
        path = write_result("cascade", figs)
        typer.echo(f"wrote {path}")
