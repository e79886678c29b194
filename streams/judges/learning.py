"""LearningJudge: an online model (river logistic regression) that learns the high-fidelity judge's pass/fail
labels from ``feedback.labels`` and predicts them for every trace, with its own uncertainty.

Features are hashed (crc32, stable across processes) request/answer words plus trace features and the fast
judges' tags and failures, so it learns what the fast judges miss. Uncertainty is the binary entropy of its
prediction, raised while it has seen few labels. Agreement with the labels is tracked prequentially (predict,
then learn) as Cohen's kappa, overall and over a rolling window.
"""
from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from typing import Any

from river import linear_model, metrics, optim, utils

from schemas.trace import Trace
from schemas.verdict import Verdict
from streams.judges._text import is_refusal, text_view, tokenize
from streams.judges.base import Judge, JudgeContext, make_verdict

LOGIC_VERSION = "1"
Features = dict[int, float]


def _entropy(p: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


class LearningJudge(Judge):
    name = "learning"

    def __init__(self, *, n_features: int = 1 << 18, learning_rate: float = 0.1, l2: float = 1e-4,
                 min_labels: int = 20, max_words: int = 64, kappa_window: int = 500, feature_cache: int = 50_000,
                 seed: int = 0):
        if n_features < 16 or n_features & (n_features - 1):
            raise ValueError("n_features must be a power of two >= 16")
        if learning_rate <= 0 or min_labels < 0 or max_words < 1 or kappa_window < 10 or feature_cache < 1:
            raise ValueError("learning_rate > 0, min_labels >= 0, max_words >= 1, kappa_window >= 10 required")
        self.n_features, self.learning_rate, self.l2 = n_features, learning_rate, l2
        self.min_labels, self.max_words, self.seed = min_labels, max_words, seed
        self.model = linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=l2)
        self.kappa = metrics.CohenKappa()
        self.rolling_kappa = utils.Rolling(metrics.CohenKappa(), window_size=kappa_window)
        self.n_labels = 0
        self._recent: OrderedDict[str, Features] = OrderedDict()  # trace_id -> features, for labels that follow
        self._cache_size = feature_cache
        self._hashes: dict[str, int] = {}  # key -> feature index (see _h)
        self.version = f"{LOGIC_VERSION}.{n_features}.{seed}"

    # -- features ------------------------------------------------------------------------------------------
    def _h(self, key: str) -> int:
        """The feature index of ``key``, kept for the first ``feature_cache`` keys: words and feature names recur,
        and a dict lookup costs a fraction of encoding and hashing (~150 keys a trace)."""
        got = self._hashes.get(key)
        if got is None:
            got = zlib.crc32(key.encode(), self.seed) & (self.n_features - 1)
            if len(self._hashes) < self._cache_size:
                self._hashes[key] = got
        return got

    def features(self, trace: Trace, ctx: JudgeContext, verdicts: list[Verdict] | None = None) -> Features:
        view = text_view(trace, ctx)
        x: Features = {}
        h = self._h
        # the first max_words distinct words in text order: a set's order changes with each process's hash seed,
        # which would give the same trace different features after a restart
        req_words = tokenize(trace.user_message.lower()) if len(view.req_tokens) > self.max_words else view.req_tokens
        for prefix, words in (("q:", req_words), ("a:", view.resp_words)):
            for i, w in enumerate(dict.fromkeys(words)):
                if i >= self.max_words:
                    break
                x[h(prefix + w)] = 1.0
        calls = trace.tool_calls
        n_err = sum(c.status != "ok" for c in calls)
        named = {
            "n_tools": min(len(calls), 10) / 10.0, "n_tool_err": min(n_err, 5) / 5.0, "tool_err": float(n_err > 0),
            "resp_len": min(math.log1p(len(trace.final_response)) / 10.0, 1.0),
            "req_len": min(math.log1p(len(trace.user_message)) / 10.0, 1.0),
            "refusal": float(is_refusal(view)), "candidates": float(bool(trace.candidates)),
            "pii_out": float(any(f.field.startswith(("final_response", "candidates")) for f in ctx.pii)),
        }
        for v in verdicts if verdicts is not None else ctx.cache.get("verdicts", []):
            if v.status != "ok":
                continue
            if not v.passed:
                named[f"fail:{v.judge}"] = 1.0
            named[f"conf:{v.judge}"] = v.confidence
            for tag in v.tags:
                named[f"tag:{tag.split(':', 1)[0]}"] = 1.0
                named[f"tag:{tag}"] = 1.0
            for dim, s in v.scores.items():
                named[f"low:{dim}"] = max(named.get(f"low:{dim}", 0.0), 1.0 - s)
        for k, val in named.items():
            if val:
                x[h(k)] = val
        return x

    # -- predict / learn -----------------------------------------------------------------------------------
    def predict_x(self, x: Features) -> tuple[float, float]:
        """(probability the trace passes, uncertainty in [0, 1])."""
        p = self.model.predict_proba_one(x).get(True, 0.5) if self.n_labels else 0.5
        warm = min(1.0, self.n_labels / self.min_labels) if self.min_labels else 1.0
        return p, 1.0 - warm * (1.0 - _entropy(p))

    def remember(self, trace_id: str, x: Features) -> None:
        self._recent[trace_id] = x
        self._recent.move_to_end(trace_id)
        while len(self._recent) > self._cache_size:
            self._recent.popitem(last=False)

    def judge(self, trace: Trace, ctx: JudgeContext) -> Verdict:
        x = self.features(trace, ctx)
        self.remember(trace.trace_id, x)
        p, unc = self.predict_x(x)
        if self.n_labels < self.min_labels:
            return make_verdict(self.name, self.version, status="skipped", confidence=round(1.0 - unc, 4),
                                reasons=[f"cold start: {self.n_labels}/{self.min_labels} labels"])
        passed = p >= 0.5
        # task_success carries the learned overall pass probability (labels are overall pass/fail).
        return make_verdict(self.name, self.version, {"task_success": round(p, 4)}, confidence=round(1.0 - unc, 4),
                            passed=passed, tags=[] if passed else ["learned:likely_bad"],
                            reasons=[f"learned pass probability {p:.2f} from {self.n_labels} labels"])

    def learn(self, trace_id: str, passed: bool, x: Features | None = None) -> bool:
        """Learn one label; False when the trace's features are unknown (label for a trace not seen here)."""
        x = x if x is not None else self._recent.get(trace_id)
        if x is None:
            return False
        if self.n_labels:
            y_pred = self.model.predict_proba_one(x).get(True, 0.5) >= 0.5
            self.kappa.update(passed, y_pred)
            self.rolling_kappa.update(passed, y_pred)
        self.model.learn_one(x, passed)
        self.n_labels += 1
        return True

    def stats(self) -> dict[str, Any]:
        return {"labels": self.n_labels, "kappa": self.kappa.get(), "rolling_kappa": self.rolling_kappa.get()}
