"""Calibration metrics of probabilistic judgements: ECE, Brier score, reliability bins, temperature scaling.

A judge's verdict says ``passed`` with some ``confidence``; as a probability that the trace passes that is
``p = confidence if passed else 1 - confidence``. A label's ``passed`` is the outcome ``y``. The reliability
curve plots, per bin of ``p``, the mean ``p`` against the observed pass rate; ECE is their count-weighted gap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class ReliabilityBin:
    lo: float
    hi: float
    count: int
    mean_p: float
    observed: float


def p_pass(passed: bool, confidence: float) -> float:
    return confidence if passed else 1.0 - confidence


def reliability_bins(p: Sequence[float], y: Sequence[int | bool], bins: int = 10) -> list[ReliabilityBin]:
    pa, ya = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    if pa.shape != ya.shape:
        raise ValueError("p and y must have the same length")
    idx = np.minimum((pa * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        out.append(ReliabilityBin(b / bins, (b + 1) / bins, n, float(pa[m].mean()) if n else (b + 0.5) / bins,
                                  float(ya[m].mean()) if n else float("nan")))
    return out


def ece(p: Sequence[float], y: Sequence[int | bool], bins: int = 10) -> float:
    """Expected calibration error (equal-width bins); 0 for an empty sample."""
    n = len(p)
    if n == 0:
        return 0.0
    return sum(b.count / n * abs(b.mean_p - b.observed) for b in reliability_bins(p, y, bins) if b.count)


def brier(p: Sequence[float], y: Sequence[int | bool]) -> float:
    if len(p) == 0:
        return 0.0
    pa, ya = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    return float(np.mean((pa - ya) ** 2))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def apply_temperature(p: Sequence[float], t: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-_logit(np.asarray(p, dtype=float)) / t))


def fit_temperature(p: Sequence[float], y: Sequence[int | bool], lo: float = 0.05, hi: float = 20.0) -> float:
    """The temperature T minimising log-loss of sigmoid(logit(p)/T) on (p, y); golden-section search on log T."""
    z, ya = _logit(np.asarray(p, dtype=float)), np.asarray(y, dtype=float)
    if len(z) == 0:
        raise ValueError("temperature scaling needs at least one labelled example")

    def nll(log_t: float) -> float:
        q = np.clip(1.0 / (1.0 + np.exp(-z / math.exp(log_t))), 1e-12, 1 - 1e-12)
        return float(-np.mean(ya * np.log(q) + (1 - ya) * np.log(1 - q)))

    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(60):
        if nll(c) < nll(d):
            b = d
        else:
            a = c
        c, d = b - g * (b - a), a + g * (b - a)
    return math.exp((a + b) / 2)
