"""The agreement gate: human labels are exported only when annotators agreed well enough.

The labeling UI records its inter-annotator agreement in the Delta table ``agreement``
(``connectors.agreement_table.write_agreement``: one row per queue and computation, ``min_alpha`` = the lowest
Krippendorff alpha over the queue's dimensions, ``ts``, ``queue``). ``recorded_alpha`` reads the latest row of each
queue and returns the lowest alpha among them: every queue must clear the gate. No table, or no rows, means no agreement was recorded: the export goes ahead and the
sidecar says the gate was not applied.
"""
from __future__ import annotations

from typing import Any

AGREEMENT_TABLE = "agreement"


def recorded_alpha(uri: str, storage_options: dict[str, str] | None = None) -> dict[str, Any] | None:
    """{"alpha", "scope", "computed_at", "scopes"} of the weakest latest agreement, or None when none is recorded."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        rows = DeltaTable(uri, storage_options=storage_options).to_pyarrow_table().to_pylist()
    except TableNotFoundError:
        return None
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:  # newest row per queue, including one whose alpha is undefined (too few overlapping labels)
        scope = str(r["queue"])
        if scope not in latest or r["ts"] >= latest[scope]["ts"]:
            latest[scope] = r
    measured = [r for r in latest.values() if r["min_alpha"] is not None]
    if not measured:
        return None
    worst = min(measured, key=lambda r: r["min_alpha"])
    return {"alpha": float(worst["min_alpha"]), "scope": str(worst["queue"]), "computed_at": str(worst["ts"]),
            "scopes": len(measured)}


def has_human_labels(rows: list[dict[str, Any]]) -> bool:
    return any(r.get("source") == "human" for r in rows)
