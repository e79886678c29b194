"""Calibration of pairwise preference confidences: temperature scaling, ECE and the reliability curve.

Inputs are reward margins ``m = r(chosen) - r(rejected)`` and labels ``y`` (1 when the first response really was
preferred). P(first preferred) = sigmoid(m / T). Confidence of a prediction is max(p, 1 - p); it is correct when
(p > 0.5) == y.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def nll(margins: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = np.clip(sigmoid(np.asarray(margins) / temperature), 1e-12, 1 - 1e-12)
    y = np.asarray(labels, dtype=float)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def fit_temperature(margins: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """Temperature minimising validation NLL (1-D, convex in log T): grid then golden-section refinement."""
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 60))
    losses = [nll(margins, labels, t) for t in grid]
    k = int(np.argmin(losses))
    a, b = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, len(grid) - 1)])
    g = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - g * (b - a), a + g * (b - a)
        if nll(margins, labels, np.exp(c)) < nll(margins, labels, np.exp(d)):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


@dataclass
class Reliability:
    ece: float
    accuracy: float
    bins: list[dict[str, float]]  # lower, upper, count, confidence, accuracy


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> Reliability:
    """ECE (count-weighted |accuracy - confidence| over equal-width confidence bins on [0.5, 1]) and the curve."""
    p = np.asarray(probs, dtype=float)
    y = np.asarray(labels, dtype=int)
    conf = np.maximum(p, 1 - p)
    correct = ((p > 0.5).astype(int) == y).astype(float)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        mask = idx == b
        n = int(mask.sum())
        if n == 0:
            bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": 0,
                         "confidence": float("nan"), "accuracy": float("nan")})
            continue
        c, a = float(conf[mask].mean()), float(correct[mask].mean())
        ece += n / len(p) * abs(a - c)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n, "confidence": c,
                     "accuracy": a})
    return Reliability(ece=float(ece), accuracy=float(correct.mean()) if len(p) else float("nan"), bins=bins)
