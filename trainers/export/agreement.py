"""The agreement gate: human labels are exported only when annotators agreed well enough.

The labeling UI records its inter-annotator agreement in the Delta table ``agreement`` (one row per computation:
``alpha`` = Krippendorff's alpha, ``computed_at``, and optionally ``scope`` — a question or dataset — and
``n_items``). ``recorded_alpha`` reads the latest row of each scope and returns the lowest alpha among them: every
scope must clear the gate. No table, or no rows, means no agreement was recorded: the export goes ahead and the
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
    for r in rows:
        if r.get("alpha") is None:
            continue
        scope = str(r.get("scope") or "all")
        if scope not in latest or str(r.get("computed_at") or "") >= str(latest[scope].get("computed_at") or ""):
            latest[scope] = r
    if not latest:
        return None
    worst = min(latest.values(), key=lambda r: r["alpha"])
    return {"alpha": float(worst["alpha"]), "scope": str(worst.get("scope") or "all"),
            "computed_at": str(worst.get("computed_at")), "scopes": len(latest)}


def has_human_labels(rows: list[dict[str, Any]]) -> bool:
    return any(r.get("source") == "human" for r in rows)
