"""The ``agreement`` Delta table: the latest human-label agreement per queue, for the export gate and the report.

``write_agreement(settings, summaries)`` appends one row per queue (the snapshot's time in ms is the writer's
transaction version, so a retried write of the same snapshot lands once); ``latest_agreement(settings, queue)`` is
what an exporter calls before exporting human labels: refuse when ``min_alpha`` is below the configured alpha.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from connectors.delta_sink import read_table, table_sink
from schemas.tables import AGREEMENT_TABLE

if TYPE_CHECKING:
    from schemas.settings import Settings


def min_alpha(alpha: dict[str, float | None]) -> float | None:
    vals = [v for v in alpha.values() if v is not None]
    return min(vals) if vals else None


def write_agreement(settings: "Settings", summaries: Iterable[dict[str, Any]], *, now: datetime | None = None) -> int:
    now = now or datetime.now(timezone.utc)
    rows = [{"ts": now, "date": now.date().isoformat(), "queue": s["queue"], "kind": s["kind"],
             "labels": s["labels"], "items": s["items"], "min_alpha": min_alpha(s["alpha"]),
             "alpha_json": json.dumps(s["alpha"], sort_keys=True),
             "summary_json": json.dumps({k: v for k, v in s.items() if k != "alpha"}, sort_keys=True, default=str)}
            for s in summaries]
    if not rows:
        return 0
    sink = table_sink(settings, AGREEMENT_TABLE, "ui-agreement")
    return sink.write(rows, {("agreement", 0): int(now.timestamp() * 1000)})


def latest_agreement(settings: "Settings", queue: str) -> dict[str, Any]:
    """The newest snapshot for ``queue``: {queue, ts, labels, items, min_alpha, alpha: {dim: a}, summary}; an
    empty dict when none was written yet (an exporter must treat that as 'not measured', i.e. refuse)."""
    t = read_table(settings.table_uri(AGREEMENT_TABLE), storage_options=settings.lake_storage_options or None)
    if not t.num_rows:
        return {}
    rows = [r for r in t.to_pylist() if r["queue"] == queue]
    if not rows:
        return {}
    r = max(rows, key=lambda x: x["ts"])
    return {"queue": queue, "ts": r["ts"], "labels": r["labels"], "items": r["items"], "min_alpha": r["min_alpha"],
            "alpha": json.loads(r["alpha_json"]), "summary": json.loads(r["summary_json"])}


def gate(settings: "Settings", queue: str, min_required: float) -> tuple[bool, str]:
    """(allowed, reason) for exporting ``queue``'s human labels at ``min_required`` alpha."""
    a = latest_agreement(settings, queue)
    if not a:
        return False, f"no agreement measured for queue {queue!r} yet; run `alignloop ui` until it writes one"
    if a["min_alpha"] is None:
        return False, f"agreement for queue {queue!r} is undefined (too few overlapping labels)"
    if a["min_alpha"] < min_required:
        return False, f"queue {queue!r}: Krippendorff alpha {a['min_alpha']:.3f} < required {min_required:.3f}"
    return True, f"queue {queue!r}: alpha {a['min_alpha']:.3f} >= {min_required:.3f}"
