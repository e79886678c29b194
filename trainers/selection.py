"""Curriculum order and information-gain sample selection (seeds 001 and 002). Pure numpy."""
from __future__ import annotations

from typing import Sequence

import numpy as np

_EPS = 1e-12


def binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def information_gain(member_probs: np.ndarray) -> np.ndarray:
    """BALD score per row from an ensemble's P(chosen beats rejected), shape [members, rows].

    Mutual information between the label and the model: entropy of the mean prediction minus the mean entropy of
    the members. With one member it reduces to predictive entropy (uncertainty sampling).
    """
    probs = np.atleast_2d(np.asarray(member_probs, dtype=float))
    if probs.shape[0] == 1:
        return binary_entropy(probs[0])
    return binary_entropy(probs.mean(axis=0)) - binary_entropy(probs).mean(axis=0)


def select_by_information_gain(scores: Sequence[float], budget: int) -> list[int]:
    """Indices of the ``budget`` most informative rows, returned in their original order (ties: earlier first)."""
    scores = np.asarray(scores, dtype=float)
    if budget >= len(scores):
        return list(range(len(scores)))
    order = np.argsort(-scores, kind="stable")[:budget]
    return sorted(int(i) for i in order)


def select_random(n: int, budget: int, seed: int) -> list[int]:
    if budget >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n, size=budget, replace=False))


def curriculum_order(difficulty_ease: Sequence[float | None]) -> list[int]:
    """Indices ordered easy -> hard: highest judge confidence (or preference strength) first; unknowns last."""
    keyed = [(-(e if e is not None else -1.0), i) for i, e in enumerate(difficulty_ease)]
    return [i for _, i in sorted(keyed)]
