"""Temperature scaling, ECE / reliability curve and information gain (pure numpy)."""
from __future__ import annotations

import numpy as np

from trainers.calibration import fit_temperature, reliability, sigmoid
from trainers.selection import curriculum_order, information_gain, select_by_information_gain


def _overconfident(n: int, true_t: float, seed: int = 0):
    """Margins from a model 3x too confident: the right temperature is ``true_t``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, n)                      # true log-odds
    labels = (rng.random(n) < sigmoid(logits)).astype(int)
    return logits * true_t, labels


def test_fit_temperature_recovers_overconfidence_and_lowers_ece():
    margins, labels = _overconfident(20000, 3.0)
    t = fit_temperature(margins, labels)
    assert abs(t - 3.0) < 0.2
    before = reliability(sigmoid(margins), labels)
    after = reliability(sigmoid(margins / t), labels)
    assert before.ece > 0.08 and after.ece < 0.02
    assert after.accuracy == before.accuracy         # scaling never changes which side wins
    assert sum(b["count"] for b in after.bins) == 20000


def test_reliability_of_perfectly_calibrated_probs_is_near_zero():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 50000)
    y = (rng.random(50000) < p).astype(int)
    r = reliability(p, y, n_bins=10)
    assert r.ece < 0.01
    assert len(r.bins) == 10 and all(0.5 <= b["lower"] < b["upper"] <= 1.0 for b in r.bins)


def test_information_gain_prefers_disagreement_over_shared_uncertainty():
    # rows: members agree and are sure / agree and are unsure / disagree confidently
    probs = np.array([[0.95, 0.5, 0.95], [0.95, 0.5, 0.05]])
    ig = information_gain(probs)
    assert ig[2] > 0.45 and ig[1] < 1e-9 and ig[0] < 1e-9
    single = information_gain(probs[:1])               # one member: predictive entropy
    assert single[1] > single[0]
    assert select_by_information_gain(ig, 1) == [2]
    assert curriculum_order([0.2, None, 0.9, 0.5]) == [2, 3, 0, 1]
