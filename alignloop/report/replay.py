"""The report's "Replays vs live" section: one replay diff (``alignloop.replay_views.diff_replay``) as HTML."""
from __future__ import annotations

import html
from typing import Any


def _rows(header: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p><em>nothing to show</em></p>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>" + body + "</table>"


def replay_section(diff: dict[str, Any]) -> str:
    """Flips and kappa per judge (all traces, and every slice with a flip), mean shifts that moved, curated rows
    added and dropped."""
    flips = [[judge, cut, f["n"], f["pass_to_fail"], f["fail_to_pass"], "-" if f["kappa"] is None else f["kappa"],
              ", ".join(i for ids in f["examples"].values() for i in ids[:3])]
             for judge, cuts in diff["judges"].items() for cut, f in cuts.items()
             if cut == "all" or f["pass_to_fail"] or f["fail_to_pass"]]
    shifts = [[r["judge"], r["dimension"], r["slice"], r["n"], r["mean_live"], r["mean_replay"], r["mean_shift"]]
              for r in diff["dimensions"] if abs(r["mean_shift"]) > 1e-9]
    curated = [[table, ch.get("live", "-"), ch.get("replay", "-"), ch.get("added", "-"), ch.get("dropped", "-"),
                ch.get("note", ", ".join(ch.get("added_examples", [])[:3] + ch.get("dropped_examples", [])[:3]))]
               for table, ch in diff["curated"].items()]
    return (f"<h2>Replay {html.escape(diff['name'])} vs live</h2><p>{diff['matched']} traces matched on trace_id "
            f"({diff['only_in_replay']} only in the replay); content hash {diff.get('replay_content_hash')}</p>"
            + _rows(["judge", "slice", "n", "pass→fail", "fail→pass", "kappa", "examples"], flips)
            + "<h3>Mean score shifts</h3>"
            + _rows(["judge", "dimension", "slice", "n", "live", "replay", "shift"], shifts)
            + "<h3>Curated rows</h3>"
            + _rows(["table", "live", "replay", "added", "dropped", "examples"], curated))
