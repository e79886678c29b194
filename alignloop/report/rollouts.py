"""The report's rollout section: each rollout's timeline (candidate weight over time, the decisions and why) from
the Delta table ``rollouts``."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from alignloop.report.plots import _save, plt


def load(uri: str, storage_options: dict[str, str] | None = None) -> pd.DataFrame:
    from connectors.delta_sink import read_table

    t = read_table(uri, storage_options=storage_options)
    if not t.num_columns:
        return pd.DataFrame()
    df = t.to_pandas().drop_duplicates("decision_id")
    return df.sort_values(["decided_at", "flag_version"])


def timeline(df: pd.DataFrame, out: Path) -> Path | None:
    """Candidate weight per rollout as a step line, a marker per decision (promote green, rollback red)."""
    if df.empty:
        return None
    fig, ax = plt.subplots(figsize=(10, 3.6))
    colors = {"promote": "#2e7d32", "rollback": "#c62828", "hold": "#f9a825", "pause": "#757575"}
    for rid, g in df.groupby("rollout_id", sort=False):
        t0 = g["decided_at"].min()
        x = [(t - t0).total_seconds() for t in g["decided_at"]]
        label = f"{g['adapter_id'].iloc[0]} ({rid[:8]})"
        ax.step(x, g["weight_after"], where="post", label=label)
        for xi, (_, r) in zip(x, g.iterrows()):
            ax.scatter([xi], [r["weight_after"]], color=colors.get(r["action"], "#1565c0"), zorder=3)
    ax.set_xlabel("seconds since the rollout started")
    ax.set_ylabel("candidate weight %")
    ax.set_ylim(-5, 105)
    ax.set_title("Rollouts: candidate weight over time (green promote, red rollback)")
    ax.legend(fontsize=8)
    return _save(fig, out, "rollouts")


def decisions_html(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p><em>no rollouts</em></p>"
    cols = ["decided_at", "rollout_id", "adapter_id", "action", "actor", "weight", "baseline conv.",
            "candidate conv.", "why"]
    rows = []
    for _, r in df.iterrows():
        rows.append([str(r["decided_at"])[:19], r["rollout_id"][:12], r["adapter_id"] or "", r["action"], r["actor"],
                     f"{r['weight_before']} → {r['weight_after']}", r["baseline_conversations"] or 0,
                     r["candidate_conversations"] or 0, (r["reason"] or "")[:240]])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>" + body + "</table>"


def arm_metrics_html(df: pd.DataFrame) -> str:
    """The last analysed decision of each rollout: per-metric estimate per arm and verdict."""
    if df.empty:
        return "<p><em>no rollouts</em></p>"
    parts = []
    for rid, g in df.groupby("rollout_id", sort=False):
        analysed = [r for _, r in g.iterrows() if json.loads(r["metrics_json"] or "[]")]
        if not analysed:
            continue
        last = analysed[-1]
        metrics: list[dict[str, Any]] = json.loads(last["metrics_json"])
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                m.get("name"), m.get("n_baseline"), m.get("n_candidate"), _fmt(m.get("mean_baseline")),
                _fmt(m.get("mean_candidate")), _fmt(m.get("delta")), m.get("margin"), m.get("verdict"))) + "</tr>"
            for m in metrics)
        parts.append(f"<h3>{html.escape(str(last['adapter_id']))} ({html.escape(rid[:12])}): {last['action']}</h3>"
                     "<table><tr><th>metric</th><th>n baseline</th><th>n candidate</th><th>baseline</th><th>candidate</th>"
                     "<th>delta (+ worse)</th><th>margin</th><th>verdict</th></tr>"
                     f"{rows}</table>")
    return "".join(parts) or "<p><em>no analysed decisions</em></p>"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "" if v is None else str(v)
