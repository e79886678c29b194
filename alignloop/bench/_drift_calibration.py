"""ECE of the learning judge before and after temperature scaling, on held-out labels from the simulator.

The learner is the stream's own ``LearningJudge`` (streams/judges/learning.py, configured from
configs/judges.yaml) on the features it sees in the worker: each simulated trace goes through the real pipeline
step (scrubber + fast judges) first. Labels are the simulator's ground truth (``truth.bad``), standing in for the
high-fidelity judge. Split: first half trains, the next quarter fits the temperature, the last quarter measures.
"""
from __future__ import annotations

import json
from typing import Any

from alignloop.simulate import Simulator


def ece_before_after(n: int, seed: int = 7) -> dict[str, Any]:
    from schemas.settings import Settings
    from schemas.verdict import JudgedTrace
    from streams.drift.calibration import apply_temperature, brier, ece, fit_temperature
    from streams.judges.base import JudgeContext
    from alignloop.configs import load_configs
    from streams.judges.learning import LearningJudge
    from streams.pipeline import Pipeline

    settings = Settings()
    configs = load_configs(settings)
    pipe = Pipeline.from_settings(settings, configs)
    judge = LearningJudge(**configs.judges.learning.judge_kwargs())
    sim = Simulator(seed=seed)
    train_n, cal_n = n // 2, n // 4
    cal, test = [], []
    for i in range(n):
        rec, truth = sim.trace(i)
        jt = pipe.process(json.dumps(rec).encode(), "sim", 0, i)
        if not isinstance(jt, JudgedTrace):
            continue
        x, y = judge.features(jt.trace, JudgeContext(pii=jt.pii), jt.verdicts), not truth.bad  # y: passes
        if i < train_n:
            judge.learn(jt.trace.trace_id, y, x)
            continue
        p, _ = judge.predict_x(x)
        (cal if i < train_n + cal_n else test).append((p, int(y)))
    t = fit_temperature([p for p, _ in cal], [y for _, y in cal])
    p_test, y_test = [p for p, _ in test], [y for _, y in test]
    scaled = apply_temperature(p_test, t).tolist()
    return {"ece_before": round(ece(p_test, y_test), 4), "ece_after": round(ece(scaled, y_test), 4),
            "brier_before": round(brier(p_test, y_test), 4), "brier_after": round(brier(scaled, y_test), 4),
            "temperature": round(t, 3), "calibration_labels": {"train": train_n, "fit_t": len(cal),
                                                               "test": len(test)},
            "learning_judge": f"streams.judges.learning.LearningJudge {judge.version} on pipeline features "
                              "(scrubber + fast-judge verdicts); labels = simulator truth"}
