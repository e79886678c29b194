"""matplotlib figures of the report; each returns a PNG path or None when there is nothing to plot."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _bucket(df: pd.DataFrame, col: str) -> str:
    span = (df[col].max() - df[col].min()).total_seconds() if len(df) > 1 else 60
    for seconds, rule in ((120, "1s"), (1200, "10s"), (2 * 3600, "1min"), (12 * 3600, "10min"), (4 * 86400, "1h")):
        if span <= seconds:
            return rule
    return "1D"


def _save(fig: plt.Figure, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pipeline_volume(traces: pd.DataFrame, out: Path) -> Path | None:
    if traces.empty:
        return None
    rule = _bucket(traces, "ts")
    counts = traces.set_index("ts").groupby("outcome").resample(rule).size().unstack(0).fillna(0)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    colors = {"pass": "#4caf50", "flag": "#ff9800", "fail": "#e53935"}
    ax.stackplot(counts.index, *[counts[c] for c in counts.columns], labels=list(counts.columns),
                 colors=[colors.get(c, "#888") for c in counts.columns], alpha=0.85)
    ax.set_title(f"Traces per {rule} by outcome")
    ax.set_ylabel("traces")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, out, "pipeline_volume")


def judge_scores(traces: pd.DataFrame, out: Path) -> Path | None:
    cols = [c for c in traces.columns if c.startswith("score:")]
    if traces.empty or not cols:
        return None
    rule = _bucket(traces, "ts")
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for policy, grp in traces.groupby("policy_id"):
        means = grp.set_index("ts")[cols].resample(rule).mean()
        for c in cols:
            ax.plot(means.index, means[c], label=f"{policy} {c[6:]}")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Mean judge score per {rule}, per policy")
    ax.legend(loc="lower left", fontsize=7, ncol=3)
    ax.grid(alpha=0.3)
    return _save(fig, out, "judge_scores")


def drift_timeline(traces: pd.DataFrame, drift: pd.DataFrame, out: Path) -> Path | None:
    if traces.empty and drift.empty:
        return None
    fig, ax = plt.subplots(figsize=(10, 3.8))
    if not traces.empty:
        rule = _bucket(traces, "ts")
        t = traces.set_index("ts")
        rates = pd.DataFrame({"tool error rate": (t["n_tool_errors"] > 0).resample(rule).mean(),
                              "non-pass rate": (t["outcome"] != "pass").resample(rule).mean(),
                              "PII rate": (t["pii_count"] > 0).resample(rule).mean()})
        for c in rates:
            ax.plot(rates.index, rates[c], label=c, marker="." if len(rates) < 30 else None)
    for i, (_, e) in enumerate([] if drift.empty else drift.sort_values("detected_at").iterrows()):
        ax.axvline(e["detected_at"], color="#e53935", ls="--", lw=1)
        ax.axvspan(e["since"], e["detected_at"], color="#e53935", alpha=0.06)
        ax.annotate(f"{e['signal']} (z={e['z']:.0f})", (e["detected_at"], 0.97 - 0.09 * (i % 8)),
                    xycoords=("data", "axes fraction"), va="top", ha="right", fontsize=7, color="#b71c1c",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_title("Drift timeline: rates with drift events (shaded: estimated onset to detection)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, out, "drift_timeline")


def calibration_curves(calib: pd.DataFrame, out: Path) -> Path | None:
    if calib.empty:
        return None
    latest = calib.sort_values("ts").groupby(["judge", "policy_id"]).tail(1)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax.plot([0, 1], [0, 1], color="#999", ls=":", label="perfect")
    for _, r in latest.iterrows():
        bins = [b for b in json.loads(r["bins_json"]) if b[2] and b[4] is not None]
        ax.plot([b[3] for b in bins], [b[4] for b in bins], marker="o", label=f"{r['judge']} ({r['policy_id']}) "
                                                                             f"ECE {r['ece']:.3f}")
    ax.set_xlabel("predicted pass probability")
    ax.set_ylabel("observed pass rate")
    ax.set_title("Reliability (latest window)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    for (judge, policy), grp in calib.groupby(["judge", "policy_id"]):
        ax2.plot(grp["ts"], grp["ece"], marker=".", label=f"{judge} ({policy})")
    ax2.set_title("ECE over time")
    ax2.tick_params(axis="x", labelrotation=30)
    ax2.grid(alpha=0.3)
    return _save(fig, out, "calibration")


def label_flow(traces: pd.DataFrame, labels: pd.DataFrame, out: Path) -> Path | None:
    if labels.empty and traces.empty:
        return None
    fig, ax = plt.subplots(figsize=(10, 3.4))
    if not labels.empty:
        rule = _bucket(labels, "created_at")
        per = labels.set_index("created_at").groupby("source").resample(rule).size().unstack(0).fillna(0)
        for c in per:
            ax.plot(per.index, per[c], label=f"labels: {c}")
    if not traces.empty:
        rule = _bucket(traces, "ts")
        esc = (traces.set_index("ts")["outcome"] != "pass").resample(rule).sum()
        ax.plot(esc.index, esc, ls="--", label="flagged/failed traces (escalation candidates)")
    ax.set_title("Escalation and label flow")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, out, "label_flow")
