"""Assemble the report: load, plot, write index.html next to the PNGs."""
from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from alignloop.report import data, plots


def _table(df: pd.DataFrame, cols: list[str], limit: int = 50) -> str:
    if df.empty:
        return "<p><em>none in this range</em></p>"
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in cols) + "</tr>"
                   for _, r in df.head(limit).iterrows())
    return "<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>" + rows + "</table>"


def _clusters(calib: pd.DataFrame) -> str:
    if calib.empty:
        return "<p><em>no calibration snapshots in this range</em></p>"
    parts = []
    for _, r in calib.sort_values("ts").groupby(["judge", "policy_id"]).tail(1).iterrows():
        for c in json.loads(r["clusters_json"] or "[]"):
            parts.append({"judge": r["judge"], "policy": r["policy_id"], "size": c["size"],
                          "top terms": ", ".join(c["top_terms"]), "examples": ", ".join(c["example_trace_ids"])})
    return _table(pd.DataFrame(parts), ["judge", "policy", "size", "top terms", "examples"])


def build_report(table_uri: Callable[[str], str], since: datetime, until: datetime, out_dir: Path,
                 storage_options: dict[str, str] | None = None,
                 replay_diffs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write out_dir/index.html and its PNGs (and a section per replay diff given); returns what was written and
    the row counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    d = data.load(table_uri, since, until, storage_options)
    t, drift, calib, labels = d["traces"], d["drift"], d["calibration"], d["labels"]
    figs = {
        "Pipeline volume": plots.pipeline_volume(t, out_dir),
        "Judge scores per policy": plots.judge_scores(t, out_dir),
        "Drift timeline": plots.drift_timeline(t, drift, out_dir),
        "Calibration curves": plots.calibration_curves(calib, out_dir),
        "Escalation and label flow": plots.label_flow(t, labels, out_dir),
    }
    sections = []
    for title, path in figs.items():
        body = f'<img src="{path.name}" alt="{title}">' if path else "<p><em>no data in this range</em></p>"
        sections.append(f"<h2>{title}</h2>{body}")
    drift_cols = ["detected_at", "since", "policy_id", "signal", "magnitude", "z", "example_trace_ids"]
    sections.append("<h2>Drift events</h2>" + _table(drift, drift_cols if not drift.empty else []))
    sections.append("<h2>Error clusters (traces the judges got wrong)</h2>" + _clusters(calib))
    from alignloop.report import rollouts
    from schemas.tables import ROLLOUTS_TABLE

    ro = rollouts.load(table_uri(ROLLOUTS_TABLE), storage_options)
    ro = ro[(ro["decided_at"] >= pd.Timestamp(since)) & (ro["decided_at"] < pd.Timestamp(until))] if not ro.empty else ro
    plot = rollouts.timeline(ro, out_dir)
    sections.append("<h2>Rollouts</h2>" + (f'<img src="{plot.name}" alt="Rollouts">' if plot else "")
                    + rollouts.decisions_html(ro) + "<h3>Per-arm metrics at the last analysed decision</h3>"
                    + rollouts.arm_metrics_html(ro))
    figs["Rollouts"] = plot
    if replay_diffs:
        from alignloop.report.replay import replay_section

        sections.extend(replay_section(d) for d in replay_diffs)
    from alignloop.report.agreement import section as agreement_section  # issue 16

    sections.append(agreement_section(table_uri, storage_options))
    counts = {"traces": len(t), "drift_events": len(drift), "calibration_rows": len(calib), "labels": len(labels),
              "rollout_decisions": len(ro)}
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>alignloop report</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:auto}} img{{max-width:100%}}
table{{border-collapse:collapse;font-size:12px}} td,th{{border:1px solid #ccc;padding:3px 6px}}</style></head>
<body><h1>alignloop report</h1><p>{since.isoformat()} to {until.isoformat()} ·
{", ".join(f"{v} {k}" for k, v in counts.items())}</p>{"".join(sections)}</body></html>"""
    index = out_dir / "index.html"
    index.write_text(page)
    return {"index": index, "figures": {k: v for k, v in figs.items() if v}, "counts": counts}
