"""ECE of a learning judge before and after temperature scaling, on held-out labels from the simulator.

The judge helper's learning judge is not in the tree yet, so the learner here is river's online
LogisticRegression on hashed text features plus a few trace features, trained on the simulator's ground truth
(``truth.bad``). Split: first half trains, the next quarter fits the temperature, the last quarter measures.
"""
from __future__ import annotations

import math
from typing import Any

from alignloop.simulate import Simulator


def _features(rec: dict[str, Any], embedder: Any) -> dict[str, float]:
    v = embedder.embed(rec["user_message"] + " || " + rec["final_response"])
    x = {f"h{i}": float(val) for i, val in enumerate(v) if val}
    calls = rec.get("tool_calls", [])
    x["tool_failed"] = float(any(c.get("status", "ok") != "ok" for c in calls))
    x["n_tools"] = float(len(calls))
    x["resp_len"] = math.log1p(len(rec["final_response"])) / 6.0
    return x


def ece_before_after(n: int, seed: int = 7) -> dict[str, Any]:
    from river import linear_model, optim

    from streams.drift.calibration import apply_temperature, brier, ece, fit_temperature
    from streams.drift.embedding import HashedEmbedder

    sim, emb = Simulator(seed=seed), HashedEmbedder(256)
    # a fast-moving SGD learner: accurate but over-confident, the usual case temperature scaling fixes
    model = linear_model.LogisticRegression(optimizer=optim.SGD(0.5), l2=0.0)
    train_n, cal_n = n // 2, n // 4
    cal, test = [], []
    for i in range(n):
        rec, truth = sim.trace(i)
        x, y = _features(rec, emb), not truth.bad  # y: the trace passes
        if i < train_n:
            model.learn_one(x, y)
            continue
        p = model.predict_proba_one(x).get(True, 0.5)
        (cal if i < train_n + cal_n else test).append((p, int(y)))
    t = fit_temperature([p for p, _ in cal], [y for _, y in cal])
    p_test, y_test = [p for p, _ in test], [y for _, y in test]
    scaled = apply_temperature(p_test, t).tolist()
    return {"ece_before": round(ece(p_test, y_test), 4), "ece_after": round(ece(scaled, y_test), 4),
            "brier_before": round(brier(p_test, y_test), 4), "brier_after": round(brier(scaled, y_test), 4),
            "temperature": round(t, 3), "calibration_labels": {"train": train_n, "fit_t": len(cal),
                                                               "test": len(test)},
            "learning_judge": "river LogisticRegression(SGD 0.5) on hashed features; labels = simulator truth "
                              "(the judge helper's learning judge was not available)"}
