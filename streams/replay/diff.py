"""How far a replay's verdicts moved from the live ones, per judge, dimension and slice. Pure: rows in, figures out.

Rows are ``traces`` rows (live and replay), joined on ``trace_id``. Per judge: pass/fail flips both ways with
example trace ids, and Cohen's kappa between old and new pass/fail (the aggregate ``outcome`` too, over its three
values); per judge and dimension: the mean score before and after and its shift. Each figure is given for all
traces and for every slice: ``agent=…``, ``policy=…``, ``domain=…``. Only verdicts with status ``ok`` on both
sides are compared (an error or a skipped judge says nothing about the trace).
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Hashable, Iterable

OUTCOME = "outcome"  # the aggregate verdict, compared like a judge


def cohen_kappa(pairs: list[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of (old, new) label pairs; None without pairs; 1.0 when both raters agree on one label
    throughout (no disagreement to weigh)."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    old, new = defaultdict(int), defaultdict(int)
    for a, b in pairs:
        old[a] += 1
        new[b] += 1
    expected = sum(old[k] * new.get(k, 0) for k in old) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1 - expected)


def slices(row: dict[str, Any]) -> list[str]:
    md = row.get("metadata_json")
    domain = (json.loads(md).get("domain") if md else None) or row.get("agent_id")
    return ["all", f"agent={row.get('agent_id')}", f"policy={row.get('policy_id')}", f"domain={domain}"]


def _verdicts(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["judge"]: v for v in json.loads(row.get("verdicts_json") or "[]") if v.get("status") == "ok"}


def latest_by_trace(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One row per trace id: the last processed (a live table may hold a trace twice after a DLQ replay)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        prev = out.get(r["trace_id"])
        if prev is None or (r.get("processed_at") or 0) >= (prev.get("processed_at") or 0):
            out[r["trace_id"]] = r
    return out


def diff_verdicts(live_rows: Iterable[dict[str, Any]], replay_rows: Iterable[dict[str, Any]], *,
                  examples: int = 5) -> dict[str, Any]:
    """{matched, only_in_replay, judges: {judge: {slice: {n, pass_to_fail, fail_to_pass, kappa, examples}}},
    dimensions: [{judge, dimension, slice, n, mean_live, mean_replay, mean_shift}]}."""
    live, new = latest_by_trace(live_rows), latest_by_trace(replay_rows)
    labels: dict[tuple[str, str], list[tuple[Any, Any]]] = defaultdict(list)
    flips: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: {"pass_to_fail": [], "fail_to_pass": []})
    scores: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    matched = 0
    for tid, nr in sorted(new.items()):
        lr = live.get(tid)
        if lr is None:
            continue
        matched += 1
        cuts = slices(nr)
        pairs = [(OUTCOME, lr.get("outcome"), nr.get("outcome"))]
        lv, nv = _verdicts(lr), _verdicts(nr)
        for judge in sorted(lv.keys() & nv.keys()):
            a, b = lv[judge], nv[judge]
            pairs.append((judge, bool(a.get("passed")), bool(b.get("passed"))))
            for dim in sorted(a.get("scores", {}).keys() & b.get("scores", {}).keys()):
                for cut in cuts:
                    scores[(judge, dim, cut)].append((a["scores"][dim], b["scores"][dim]))
        for judge, old, now in pairs:
            for cut in cuts:
                labels[(judge, cut)].append((old, now))
                if old != now and (old in (True, "pass") or now in (True, "pass")):
                    flips[(judge, cut)]["pass_to_fail" if old in (True, "pass") else "fail_to_pass"].append(tid)
    judges: dict[str, dict[str, Any]] = defaultdict(dict)
    for (judge, cut), got in sorted(labels.items()):
        f = flips[(judge, cut)]
        k = cohen_kappa(got)
        judges[judge][cut] = {"n": len(got), "pass_to_fail": len(f["pass_to_fail"]),
                              "fail_to_pass": len(f["fail_to_pass"]), "kappa": None if k is None else round(k, 4),
                              "examples": {d: ids[:examples] for d, ids in f.items() if ids}}
    dims = []
    for (judge, dim, cut), got in sorted(scores.items()):
        old, now = sum(a for a, _ in got) / len(got), sum(b for _, b in got) / len(got)
        dims.append({"judge": judge, "dimension": dim, "slice": cut, "n": len(got), "mean_live": round(old, 4),
                     "mean_replay": round(now, 4), "mean_shift": round(now - old, 4)})
    return {"matched": matched, "only_in_replay": len(new) - matched, "judges": dict(judges), "dimensions": dims}


def flip_count(diff: dict[str, Any], judge: str, direction: str = "pass_to_fail") -> int:
    """How many traces ``judge`` flipped in ``direction`` over all traces."""
    return int(diff["judges"].get(judge, {}).get("all", {}).get(direction, 0))


def curated_changes(live_ids: set[str], replay_ids: set[str], *, examples: int = 10) -> dict[str, Any]:
    """Which curated row ids the replay would add and drop against the live table's (for the same traces)."""
    added, dropped = sorted(replay_ids - live_ids), sorted(live_ids - replay_ids)
    return {"live": len(live_ids), "replay": len(replay_ids), "added": len(added), "dropped": len(dropped),
            "added_examples": added[:examples], "dropped_examples": dropped[:examples]}
