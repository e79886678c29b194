"""Agreement statistics for human labels, pure (no I/O): Krippendorff's alpha per dimension, weighted kappa per
annotator pair, each annotator's self-consistency (hidden repeats) and position bias (pairwise), judge–human
agreement per judge, and the Dawid–Skene posterior behind the adaptive stop.

The maths is the maintained libraries' (``krippendorff``, scikit-learn's ``cohen_kappa_score``, crowd-kit's
``DawidSkene``); this module only shapes the labels for them.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Hashable, Iterable, Sequence

# One observation: (item id, annotator, value). Values are ints (scale points, category codes).
Obs = tuple[Hashable, str, Any]


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 4)


def krippendorff_alpha(obs: Iterable[Obs], level: str) -> float | None:
    """Alpha over every item two or more annotators labelled ('ordinal' for scales, 'nominal' for choices);
    None when there is nothing to compare or no variation at all (alpha is undefined then)."""
    import numpy as np
    import krippendorff

    by_item: dict[Hashable, dict[str, Any]] = defaultdict(dict)
    for item, who, value in obs:
        by_item[item][who] = value
    items = [i for i, v in by_item.items() if len(v) >= 2]
    if not items:
        return None
    annotators = sorted({w for i in items for w in by_item[i]})
    col = {w: j for j, w in enumerate(annotators)}
    codes: dict[Any, int] = {}  # nominal categories may be any hashable ('pass'/'fail'): code them
    data = np.full((len(annotators), len(items)), np.nan)
    for k, i in enumerate(items):
        for w, v in by_item[i].items():
            data[col[w], k] = float(v) if level != "nominal" else codes.setdefault(v, len(codes))
    values = data[~np.isnan(data)]
    if len(set(values.tolist())) < 2:
        return None
    return _finite(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def pairwise_kappa(obs: Iterable[Obs], *, weights: str | None = "quadratic", min_common: int = 5
                   ) -> dict[tuple[str, str], dict[str, Any]]:
    """Cohen's kappa (quadratic-weighted for scales, ``weights=None`` for choices) for every annotator pair with
    at least ``min_common`` items in common."""
    from sklearn.metrics import cohen_kappa_score

    per: dict[str, dict[Hashable, Any]] = defaultdict(dict)
    for item, who, value in obs:
        per[who][item] = value
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for a, b in combinations(sorted(per), 2):
        common = sorted(set(per[a]) & set(per[b]), key=str)
        if len(common) < min_common:
            continue
        xa, xb = [per[a][i] for i in common], [per[b][i] for i in common]
        kappa = 1.0 if xa == xb else cohen_kappa_score(xa, xb, weights=weights)
        out[(a, b)] = {"kappa": _finite(kappa), "n": len(common)}
    return out


def self_consistency(repeats: Iterable[tuple[str, Any, Any]]) -> dict[str, dict[str, Any]]:
    """Per annotator: the share of hidden repeats answered as the first time (answers already mapped back to the
    same sides). ``repeats``: (annotator, first answer, repeat answer)."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for who, first, again in repeats:
        tally[who][0] += int(first == again)
        tally[who][1] += 1
    return {w: {"consistency": round(same / n, 4), "n": n} for w, (same, n) in tally.items()}


def position_bias(choices: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Per annotator: the share of pairwise answers that picked the side shown on the left (0.5 = none, sides
    are randomised) and the two-sided binomial p-value of that share."""
    from scipy.stats import binomtest

    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for who, shown_side in choices:
        tally[who][0] += int(shown_side == "left")
        tally[who][1] += 1
    return {w: {"left_rate": round(k / n, 4), "n": n, "p_value": _finite(binomtest(k, n, 0.5).pvalue)}
            for w, (k, n) in tally.items()}


def gold_accuracy(gold: Iterable[tuple[str, Any, Any]]) -> dict[str, dict[str, Any]]:
    """Per annotator: share of gold items answered with the known answer. ``gold``: (annotator, answer, truth)."""
    return {w: {"accuracy": v["consistency"], "n": v["n"]} for w, v in self_consistency(gold).items()}


def judge_agreement(pairs: Iterable[tuple[str, bool, bool]]) -> dict[str, dict[str, Any]]:
    """Per judge: agreement rate and Cohen's kappa of its pass/fail against the human consensus.
    ``pairs``: (judge, judge passed, humans passed)."""
    from sklearn.metrics import cohen_kappa_score

    per: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for judge, jp, hp in pairs:
        per[judge][0].append(int(jp))
        per[judge][1].append(int(hp))
    out = {}
    for judge, (j, h) in per.items():
        agree = sum(a == b for a, b in zip(j, h)) / len(j)
        kappa = 1.0 if j == h else (cohen_kappa_score(j, h) if len(set(j) | set(h)) > 1 else None)
        out[judge] = {"agreement": round(agree, 4), "kappa": _finite(kappa), "n": len(j)}
    return out


@dataclass
class AnnotatorModel:
    """Annotator confusion matrices fitted by crowd-kit's Dawid–Skene on every answered item, used to score one
    item's answers so far (the adaptive stop) without refitting. Annotators it has not seen get a symmetric
    matrix with ``default_accuracy``."""

    classes: list[Any] = field(default_factory=list)
    priors: dict[Any, float] = field(default_factory=dict)
    errors: dict[tuple[str, Any], dict[Any, float]] = field(default_factory=dict)  # (worker, observed) -> {true: p}
    default_accuracy: float = 0.7

    @classmethod
    def fit(cls, obs: Sequence[Obs], *, classes: Sequence[Any], n_iter: int = 50,
            default_accuracy: float = 0.7) -> "AnnotatorModel":
        model = cls(classes=list(classes), priors={c: 1 / len(classes) for c in classes},
                    default_accuracy=default_accuracy)
        if len({o[1] for o in obs}) < 2:
            return model
        import pandas as pd
        from crowdkit.aggregation import DawidSkene

        df = pd.DataFrame(obs, columns=["task", "worker", "label"])
        ds = DawidSkene(n_iter=n_iter).fit(df)
        model.priors = {c: float(ds.priors_.get(c, 1e-6)) for c in classes}
        for (worker, observed), row in ds.errors_.iterrows():
            model.errors[(str(worker), observed)] = {c: float(row.get(c, 0.0)) for c in classes}
        return model

    def _p(self, worker: str, observed: Any, true: Any) -> float:
        row = self.errors.get((worker, observed))
        if row is None:
            if any(w == worker for w, _ in self.errors):  # seen, never gave this answer
                return 1e-3
            k = len(self.classes)
            return self.default_accuracy if observed == true else (1 - self.default_accuracy) / max(1, k - 1)
        return max(row.get(true, 0.0), 1e-3)  # a fitted zero would make one answer decide everything

    def posterior(self, answers: Iterable[tuple[str, Any]]) -> dict[Any, float]:
        """P(true class | this item's answers), by Bayes over the fitted confusion matrices."""
        logp = {c: math.log(max(self.priors.get(c, 1e-6), 1e-6)) for c in self.classes}
        for worker, observed in answers:
            for c in self.classes:
                logp[c] += math.log(self._p(worker, observed, c))
        top = max(logp.values())
        z = sum(math.exp(v - top) for v in logp.values())
        return {c: math.exp(v - top) / z for c, v in logp.items()}


@dataclass(frozen=True)
class StopRule:
    """When an item has enough labels: never before ``min_labels``, always at ``max_labels``; in between when
    the Dawid–Skene posterior of the leading answer reaches ``confidence`` (adaptive), or never (fixed overlap:
    min = max)."""

    min_labels: int = 2
    max_labels: int = 5
    confidence: float = 0.9

    def decide(self, model: AnnotatorModel, answers: Sequence[tuple[str, Any]]) -> tuple[str, Any, float]:
        """('continue' | 'resolved' | 'disputed', leading answer, its posterior)."""
        post = model.posterior(answers)
        lead = max(post, key=lambda c: post[c])
        n = len(answers)
        if n < self.min_labels:
            return "continue", lead, post[lead]
        if post[lead] >= self.confidence:
            return "resolved", lead, post[lead]
        if n >= self.max_labels:
            return "disputed", lead, post[lead]
        return "continue", lead, post[lead]


def majority(values: Sequence[Any]) -> Any:
    """The most common value (ties: the smallest, so the result is deterministic)."""
    counts: dict[Any, int] = defaultdict(int)
    for v in values:
        counts[v] += 1
    best = max(counts.values())
    return min(v for v, c in counts.items() if c == best)


def median_low(values: Sequence[float]) -> float:
    s = sorted(values)
    return s[(len(s) - 1) // 2]
