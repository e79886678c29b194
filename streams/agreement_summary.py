"""Agreement figures for one queue from its answers (the store's ``done_answers`` rows), pure: what the UI page,
the Prometheus gauges, ``alignloop report`` and the export gate all show."""
from __future__ import annotations

from typing import Any, Iterable

from schemas.labeling import QueueConfig
from streams.agreement import (AnnotatorModel, gold_accuracy, judge_agreement, krippendorff_alpha, pairwise_kappa,
                               position_bias, self_consistency)
from streams.labeling import classes, decision


def summarise(q: QueueConfig, rows: Iterable[tuple[str, str, str, bool, dict[str, Any], Any]]) -> dict[str, Any]:
    """rows: (item id, annotator, kind, swapped, answer, item). Returns alpha per dimension, kappa per pair,
    self-consistency, position bias, gold accuracy and judge–human agreement, with the counts behind them."""
    labels: list[tuple[str, str, dict[str, Any]]] = []
    firsts: dict[tuple[str, str], Any] = {}
    repeats: list[tuple[str, Any]] = []
    gold: list[tuple[str, Any, Any]] = []
    shown: list[tuple[str, str]] = []
    items: dict[str, Any] = {}
    for item_id, who, kind, _swapped, ans, item in rows:
        if not ans:
            continue
        if q.kind == "pairwise":
            shown.append((who, ans["choice"]))
        if kind == "label":
            labels.append((item_id, who, ans))
            firsts[(item_id, who)] = decision(q, ans)
            items[item_id] = item
        elif kind == "repeat":
            repeats.append((f"{item_id}\x1f{who}", (who, item_id, decision(q, ans))))
        elif kind == "gold" and item.gold:
            gold.append((who, decision(q, ans), item.gold.get("decision")))
    alpha: dict[str, float | None] = {}
    kappa: dict[str, dict[str, Any]] = {}
    if q.kind == "score_card":
        for d in q.dimensions:
            obs = [(i, w, a["scores"][d.name]) for i, w, a in labels if d.name in a.get("scores", {})]
            alpha[d.name] = krippendorff_alpha(obs, "ordinal" if d.scale == "likert7" else "nominal")
            for (a, b), v in pairwise_kappa(obs, weights="quadratic" if d.scale == "likert7" else None).items():
                kappa.setdefault(f"{a}|{b}", {})[d.name] = v
    dec = [(i, w, decision(q, a)) for i, w, a in labels]
    alpha["decision"] = krippendorff_alpha(dec, "nominal")
    for (a, b), v in pairwise_kappa(dec, weights=None).items():
        kappa.setdefault(f"{a}|{b}", {})["decision"] = v
    consistency = self_consistency((who, firsts[(i, who)], again) for _, (who, i, again) in repeats
                                   if (i, who) in firsts)
    judges = []
    if q.kind == "score_card":
        for item in items.values():
            c = item.consensus
            if not c or item.status not in ("resolved", "adjudicated"):
                continue
            for v in item.payload.get("verdicts", []):
                judges.append((v["judge"], bool(v["passed"]), c["decision"] == "pass"))
    return {"queue": q.name, "kind": q.kind, "labels": len(labels), "items": len(items), "alpha": alpha,
            "kappa": kappa, "self_consistency": consistency,
            "position_bias": position_bias(shown) if shown else {}, "gold_accuracy": gold_accuracy(gold),
            "judge_agreement": judge_agreement(judges)}


def fit_model(q: QueueConfig, rows: Iterable[tuple[str, str, str, bool, dict[str, Any], Any]]) -> AnnotatorModel:
    """The Dawid–Skene annotator model over every first answer in the queue (the adaptive stop's input)."""
    obs = [(item_id, who, decision(q, ans)) for item_id, who, kind, _s, ans, _i in rows if kind == "label" and ans]
    return AnnotatorModel.fit(obs, classes=classes(q))
