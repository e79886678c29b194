import asyncio
import random

import pytest
from prometheus_client import CollectorRegistry

from schemas.preference import Label
from streams.drift.calibration import apply_temperature, brier, ece, fit_temperature, reliability_bins
from streams.drift.clusters import error_clusters
from streams.drift.config import CalibrationConfig
from streams.drift.hook import DriftHook
from streams.drift.metrics import DriftMetrics
from streams.drift.tracker import CalibrationTracker
from tests.unit._drift_helpers import judged_stream, small_config


def sample(n, sharpen=1.0, seed=0):
    """y ~ Bernoulli(q); the judge reports q pushed away from 0.5 by `sharpen` (1 = calibrated)."""
    rng = random.Random(seed)
    p, y = [], []
    for _ in range(n):
        q = rng.uniform(0.05, 0.95)
        y.append(int(rng.random() < q))
        p.append(float(apply_temperature([q], 1 / sharpen)[0]))
    return p, y


def test_ece_and_brier_values():
    assert ece([0.9, 0.9, 0.1, 0.1], [1, 1, 0, 0]) == pytest.approx(0.1)
    assert brier([1.0, 0.0, 0.5], [1, 0, 1]) == pytest.approx(0.25 / 3)
    p, y = sample(20_000)
    assert ece(p, y) < 0.02
    p_over, y_over = sample(20_000, sharpen=3.0)
    assert ece(p_over, y_over) > 0.08
    bins = reliability_bins(p_over, y_over, 10)
    assert sum(b.count for b in bins) == 20_000
    assert bins[9].mean_p > bins[9].observed  # over-confident at the top


def test_temperature_scaling_recovers_the_distortion():
    p, y = sample(20_000, sharpen=3.0, seed=1)
    t = fit_temperature(p[:10_000], y[:10_000])
    assert t == pytest.approx(3.0, rel=0.1)
    scaled = apply_temperature(p[10_000:], t)
    assert ece(scaled, y[10_000:]) < ece(p[10_000:], y[10_000:]) / 3


def test_tracker_joins_labels_with_earlier_confidences():
    tr = CalibrationTracker(CalibrationConfig(window=50, snapshot_every=3, store_size=100))
    traces = list(judged_stream(2, 150))
    for j in traces:
        tr.store.remember(j)
    assert len(tr.store) == 100 and tr.store.evicted == 50
    old, recent = traces[0], traces[-1]
    assert not tr.on_label(Label(label_id="a", trace_id=old.trace.trace_id, passed=True)).matched
    res = tr.on_label(Label(label_id="b", trace_id=recent.trace.trace_id, passed=False))
    assert res.matched
    p, y = res.per_judge["truth"]
    verdict = recent.verdicts[0]
    assert p == pytest.approx(0.9 if verdict.passed else 0.1) and y == 0
    assert tr.matched == 1 and tr.unmatched == 1
    rows = tr.snapshot()
    assert rows[0]["judge"] == "truth" and rows[0]["window_n"] == 1 and rows[0]["misjudged_total"] == int(p >= .5)


def test_error_clusters_separate_distinct_failure_kinds():
    items = [(f"a{i}", f"refund invoice billing dispute order {i}") for i in range(20)]
    items += [(f"b{i}", f"kubernetes deploy scale replicas outage {i}") for i in range(12)]
    clusters = error_clusters(items, k=2)
    assert [c["size"] for c in clusters] == [20, 12]
    assert "invoice" in clusters[0]["top_terms"] and "kubernetes" in clusters[1]["top_terms"]
    assert all(t.startswith("a") for t in clusters[0]["example_trace_ids"])


def test_label_handler_updates_metrics_and_skips_bad_and_replayed_records(tmp_path):
    cfg = small_config()
    cfg.calibration.snapshot_every = 10
    sent = []

    async def send(topic, key, value):
        sent.append(topic)
        f = asyncio.get_running_loop().create_future()
        f.set_result(None)
        return f

    reg = CollectorRegistry()
    hook = DriftHook(cfg, send=send, metrics=DriftMetrics(reg), drift_topic="d", train_topic="t")
    traces = list(judged_stream(6, 400))

    async def go():
        await hook(traces)
        records = [(0, i, Label(label_id=str(i), trace_id=j.trace.trace_id, passed=j.outcome == "pass",
                                 policy_id="base").model_dump_json().encode()) for i, j in enumerate(traces[:30])]
        records.append((0, 30, b"{broken"))
        await hook.on_labels(records)
        await hook.on_labels(records)  # replay: nothing counted twice

    asyncio.run(go())
    assert reg.get_sample_value("alignloop_calibration_labels_total", {"matched": "true"}) == 30
    assert reg.get_sample_value("alignloop_calibration_labels_total", {"matched": "invalid"}) == 1
    # the 'truth' judge is right on every trace with confidence 0.9: ECE = 0.1 exactly
    assert reg.get_sample_value("alignloop_calibration_ece_ratio", {"judge": "truth", "policy_id": "base"}) == \
        pytest.approx(0.1)
