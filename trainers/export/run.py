"""`alignloop export`: a pinned Delta snapshot, filtered, through one exporter, with a lineage sidecar.

The sidecar (``lineage.json`` in a directory export, ``<file>.lineage.json`` next to a JSONL file) records what
was read (table, URI, Delta version, rows read, the Kafka offset ranges of the rows exported), how (format,
filters), what came out (row count, every file with its size and SHA-256, one content hash over them) and the
agreement gate's decision, so an export can be rebuilt and audited.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers.export import EXPORTERS
from trainers.export.agreement import AGREEMENT_TABLE, has_human_labels, recorded_alpha

if TYPE_CHECKING:
    from schemas.settings import Settings


class ExportError(ValueError):
    """A one-line reason the export cannot run, naming the fix."""


@dataclass
class ExportResult:
    files: list[Path]
    sidecar: Path
    lineage: dict[str, Any]


# The columns any exporter, the agreement gate or the lineage reads: the rest of a row (timestamps, PII findings,
# candidates, tags, ...) is never turned into Python objects. Converting those dominated reading (datetimes above
# all).
EXPORT_COLUMNS = ("trace_id", "example_id", "pref_id", "conversation_id", "agent_id", "policy_id", "outcome",
                  "user_message", "final_response", "context_json", "tool_calls_json", "metadata_json",
                  "verdicts_json", "scores_json", "score", "prompt", "response", "chosen", "rejected", "strength",
                  "source", "src_topic", "src_partition", "src_offset")


def read_rows(uri: str, version: int | None, where: list[str], storage_options: dict[str, str] | None,
              columns: tuple[str, ...] | None = EXPORT_COLUMNS) -> tuple[list[dict[str, Any]], int, int]:
    """(rows matching every ``where`` SQL condition, as dicts of the table's ``columns`` (None: all), the Delta
    version read, rows in the snapshot)."""
    from deltalake import DeltaTable, QueryBuilder
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(uri, version=version, storage_options=storage_options)
    except TableNotFoundError:
        raise ExportError(f"no Delta table at {uri}; land data first (alignloop worker) or fix --table") from None
    except Exception as exc:  # deltalake raises a generic error for a version that does not exist
        if version is None:
            raise
        latest = DeltaTable(uri, storage_options=storage_options).version()
        raise ExportError(f"{uri} has no version {version} (versions 0..{latest}; vacuumed or not yet written): "
                          f"{str(exc).splitlines()[0][:200]}") from None
    names = [f.name for f in dt.schema().fields] if hasattr(dt.schema(), "fields") else None
    cols = None if columns is None or names is None else [c for c in names if c in columns]
    if not where:
        table = dt.to_pyarrow_table(columns=cols)
        return table.to_pylist(), int(dt.version()), table.num_rows
    import pyarrow as pa

    cond = " AND ".join(f"({w})" for w in where)
    select = "*" if cols is None else ", ".join(f'"{c}"' for c in cols)
    try:
        qb = QueryBuilder().register("t", dt)
        table = pa.table(qb.execute(f"SELECT {select} FROM t WHERE {cond}").read_all())
        total = pa.table(qb.execute("SELECT COUNT(*) AS n FROM t").read_all()).column("n")[0].as_py()
    except Exception as exc:
        raise ExportError(f"bad --where {cond!r}: {str(exc).splitlines()[0][:300]}; write SQL conditions on the "
                          f"table's columns, e.g. --where \"outcome = 'pass'\"") from None
    return table.to_pylist(), int(dt.version()), int(total)


def offset_ranges(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[int]]]:
    """{topic: {partition: [first offset, last offset]}} of the rows exported."""
    ranges: dict[str, dict[str, list[int]]] = {}
    for r in rows:
        if r.get("src_topic") is None or r.get("src_offset") is None:
            continue
        span = ranges.setdefault(r["src_topic"], {}).setdefault(str(r.get("src_partition") or 0), [r["src_offset"]] * 2)
        span[0], span[1] = min(span[0], r["src_offset"]), max(span[1], r["src_offset"])
    return ranges


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def gate(settings: "Settings", rows: list[dict[str, Any]], min_alpha: float) -> dict[str, Any]:
    """The agreement gate's decision; an ExportError when human labels fall below ``min_alpha``."""
    if not has_human_labels(rows):
        return {"applied": False, "why": "no human labels in the export", "min_alpha": min_alpha}
    rec = recorded_alpha(settings.table_uri(AGREEMENT_TABLE), settings.lake_storage_options or None)
    if rec is None:
        return {"applied": False, "why": f"no agreement recorded (table {AGREEMENT_TABLE!r})", "min_alpha": min_alpha}
    if rec["alpha"] < min_alpha:
        raise ExportError(f"human labels refused: recorded agreement alpha={rec['alpha']:.3f} (scope {rec['scope']}, "
                          f"{rec['computed_at']}) is below the gate {min_alpha}; collect more overlapping labels, "
                          f"export without human labels (--where \"source <> 'human'\") or lower --min-alpha")
    return {"applied": True, "passed": True, "min_alpha": min_alpha, **rec}


def _without_gc(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` with the cyclic collector off: an export builds a record per row from a list of row dicts,
    nothing in it is a cycle, and with a million rows alive each full collection re-scanned all of them (the
    per-row cost grew with the table). It runs again, as usual, afterwards."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        return fn(*args)
    finally:
        if was:
            gc.enable()


def run_export(settings: "Settings", fmt: str, table: str, *, out: Path, version: int | None = None,
               where: list[str] | None = None, min_alpha: float = 0.667, rescrub: bool = True) -> ExportResult:
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown format {fmt!r}; one of {', '.join(sorted(EXPORTERS))}")
    exporter = EXPORTERS[fmt](rescrub)
    if table not in exporter.tables:
        raise ExportError(f"{fmt} exports the {' or '.join(exporter.tables)} table, not {table!r}")
    where = list(where or [])
    uri = settings.table_uri(table)
    rows, read_version, total = _without_gc(read_rows, uri, version, where, settings.lake_storage_options or None)
    decision = gate(settings, rows, min_alpha)
    if exporter.directory and out.exists():
        shutil.rmtree(out)  # a re-export replaces the dataset directory, never mixes two
    files = _without_gc(exporter.export, rows, out)
    digests = [{"path": str(p.relative_to(out)) if p.is_relative_to(out) else p.name, "bytes": p.stat().st_size,
                "sha256": _sha256(p)} for p in files]
    content = hashlib.sha256("".join(f"{d['path']}:{d['sha256']}\n" for d in digests).encode()).hexdigest()
    lineage = {
        "format": fmt, "table": table, "uri": uri, "delta_version": read_version, "version_requested": version,
        "filters": where, "rows_read": total, "row_count": len(rows), "offset_ranges": offset_ranges(rows),
        "files": digests, "content_hash": content, "agreement_gate": decision, "rescrubbed": rescrub,
        "exported_at": datetime.now(timezone.utc).isoformat(),
    }
    sidecar = out / "lineage.json" if (exporter.directory or out.suffix != ".jsonl") else \
        out.with_name(out.name + ".lineage.json")
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    sidecar.write_text(json.dumps(lineage, indent=2, sort_keys=True, default=str) + "\n")
    return ExportResult(files=files, sidecar=sidecar, lineage=lineage)
