"""The report's human-agreement section: the newest ``agreement`` snapshot per queue (written by `alignloop ui`)."""
from __future__ import annotations

import html
import json
from typing import Callable

from connectors.delta_sink import read_table
from schemas.tables import AGREEMENT_TABLE


def section(table_uri: Callable[[str], str], storage_options: dict[str, str] | None = None) -> str:
    t = read_table(table_uri(AGREEMENT_TABLE), storage_options=storage_options)
    if not t.num_rows:
        return "<h2>Human label agreement</h2><p><em>no agreement snapshots yet</em></p>"
    latest: dict[str, dict] = {}
    for r in t.to_pylist():
        if r["queue"] not in latest or r["ts"] > latest[r["queue"]]["ts"]:
            latest[r["queue"]] = r
    rows = []
    for q, r in sorted(latest.items()):
        alpha = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a"
                          for k, v in sorted(json.loads(r["alpha_json"]).items()))
        s = json.loads(r["summary_json"])
        worst = sorted(s.get("self_consistency", {}).items(), key=lambda kv: kv[1]["consistency"])[:3]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
            q, r["ts"].isoformat(timespec="seconds"), r["labels"], r["items"],
            "n/a" if r["min_alpha"] is None else f"{r['min_alpha']:.3f}", alpha,
            ", ".join(f"{w} {v['consistency']:.2f}" for w, v in worst))) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("queue", "snapshot", "labels", "items", "min alpha",
                                             "Krippendorff alpha", "least self-consistent"))
    return f"<h2>Human label agreement</h2><table><tr>{head}</tr>{''.join(rows)}</table>"
