"""`alignloop bench erasure`: erase one conversation from a lake holding N trace rows (default 1,000,000), and look
one up (lineage), against baselines in the same run.

Synthetic rows are written straight to Delta (``traces`` with N rows, ``sft_examples`` N/10, ``preferences``
N/20; one file per ~50,000 rows, partitioned by date like the sinks, compacted like a table after `optimize`),
with one planted conversation of 6 turns spread over three dates. Figures: the erasure's wall time over every table
(merge + vacuum + log cleanup; goal <= 60 s on 2 cores) and bytes rewritten, as a ratio to a plain delta-rs
``DELETE`` of the same rows (the minimum, which leaves every copy behind) run on an identical copy; the lineage
lookup of the conversation (goal < 1 s) as a ratio to a full read of the key column. The coordinator folds
``run_erasure_bench`` into `bench replay`.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import typer

PLANT = "conv-bench-planted"
FILE_ROWS = 50_000
TURNS = 10  # turns per synthetic conversation


def _traces(n: int, start: int, keys: Any, plant_at: set[int]) -> Any:
    import pyarrow as pa

    from schemas.tables import TRACES_SCHEMA

    idx = range(start, start + n)
    convs = [PLANT if i in plant_at else f"conv-{i // TURNS}" for i in idx]
    day0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ts = [day0 + timedelta(seconds=i * 3) for i in idx]
    cols: dict[str, Any] = {
        "trace_id": [f"tr-{i}" for i in idx], "conversation_id": convs, "agent_id": ["support"] * n,
        "policy_id": ["base"] * n, "ts": ts, "date": [t.date().isoformat() for t in ts],
        "user_message": [f"my order {i} is late, can you check it? it was due on monday" for i in idx],
        "final_response": [f"your order {i} ships tomorrow by courier; tracking is updated" for i in idx],
        "outcome": ["pass"] * n, "scores_json": ['{"safety":1.0}'] * n, "latency_ms": [120.0] * n,
        "src_topic": ["agent.traces"] * n, "src_partition": [i % 4 for i in idx], "src_offset": list(idx),
        "processed_at": ts, "conv_key": [keys.conv(c) for c in convs],
    }
    return pa.table({f.name: pa.array(cols.get(f.name, [None] * n), f.type) for f in TRACES_SCHEMA},
                    schema=TRACES_SCHEMA)


def _derived(table: str, traces: Any, every: int) -> Any:
    """sft_examples / preferences rows for every ``every``-th trace (and every planted one)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from schemas.tables import TABLES

    schema = TABLES[table][0]
    mask = pc.or_(pc.equal(pc.bit_wise_and(traces.column("src_offset"), every - 1), 0),
                  pc.equal(traces.column("conversation_id"), PLANT))
    t = traces.filter(mask)
    n = t.num_rows
    cols: dict[str, Any] = {
        "trace_id": t.column("trace_id"), "conversation_id": t.column("conversation_id"),
        "policy_id": t.column("policy_id"), "date": t.column("date"), "src_topic": t.column("src_topic"),
        "src_partition": t.column("src_partition"), "src_offset": t.column("src_offset"),
        "created_at": t.column("ts"), "conv_key": t.column("conv_key"),
        "prompt": t.column("user_message"), "response": t.column("final_response"),
        "example_id": t.column("trace_id"), "pref_id": t.column("trace_id"), "score": pa.array([0.9] * n),
        "candidates": pa.array([["a", "b"]] * n), "chosen_idx": pa.array([0] * n, pa.int32()),
        "rejected_idx": pa.array([1] * n, pa.int32()), "chosen": t.column("final_response"),
        "rejected": pa.array(["no."] * n),
    }
    return pa.table({f.name: (cols[f.name].cast(f.type) if f.name in cols else pa.nulls(n, f.type))
                     for f in schema}, schema=schema)


def build_lake(root: Path, rows: int, keys: Any, progress: Any = None) -> dict[str, int]:
    """Write the synthetic tables under ``root``; returns rows per table."""
    from deltalake import write_deltalake

    from schemas.tables import TABLES

    plant_at = {rows // 7, rows // 7 + 1, rows // 2, rows // 2 + 1, rows - 3, rows - 2}
    counts = {"traces": 0, "sft_examples": 0, "preferences": 0}
    for start in range(0, rows, FILE_ROWS):
        t = _traces(min(FILE_ROWS, rows - start), start, keys, plant_at)
        batches = {"traces": t, "sft_examples": _derived("sft_examples", t, 8),
                   "preferences": _derived("preferences", t, 16)}
        for name, data in batches.items():
            write_deltalake(str(root / name), data, mode="append", partition_by=TABLES[name][1] or None)
            counts[name] += data.num_rows
        if progress:
            progress(f"wrote {start + t.num_rows:,}/{rows:,} trace rows")
    return counts


def _lake_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def run_erasure_bench(rows: int = 1_000_000, progress: Any = None) -> dict[str, Any]:
    """Erase one conversation from a lake of ``rows`` trace rows; lineage lookup time; baselines (module doc)."""
    from deltalake import DeltaTable

    from connectors.delta_erase import erase_table
    from connectors.erasure_key import ErasureKeys
    from schemas.settings import Settings
    from trainers.lineage import conversation_rows

    keys = ErasureKeys(b"bench-erasure-key")
    key = keys.conv(PLANT)
    tmp = Path(tempfile.mkdtemp(prefix="alignloop-bench-erasure-"))
    try:
        t0 = time.perf_counter()
        counts = build_lake(tmp / "lake", rows, keys, progress)
        build_s = time.perf_counter() - t0
        lake_bytes = _lake_bytes(tmp / "lake")
        shutil.copytree(tmp / "lake", tmp / "baseline")
        s = Settings(home=tmp / "home", lake_root=str(tmp / "lake"), metrics_port=0)

        t0 = time.perf_counter()
        found = conversation_rows(s, key, PLANT)
        lineage_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = DeltaTable(str(tmp / "lake" / "traces")).to_pyarrow_table(columns=["conv_key", "trace_id"])
        full_read_s = time.perf_counter() - t0
        del full

        t0 = time.perf_counter()
        per_table = {name: erase_table(str(tmp / "lake" / name), "conv_key", [key]).as_dict() for name in counts}
        erase_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        base = {name: DeltaTable(str(tmp / "baseline" / name)).delete(f"conv_key = '{key}'") for name in counts}
        delete_s = time.perf_counter() - t0
        left = conversation_rows(s, key, PLANT)
        remaining = {n: DeltaTable(str(tmp / "lake" / n)).count() for n in counts}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rewritten = sum(t["bytes_rewritten"] for t in per_table.values())
    return {
        "rows": rows, "table_rows": counts, "lake_bytes": lake_bytes, "build_s": round(build_s, 2),
        "planted_rows": {n: len(v["rows"]) for n, v in found.items()},
        "erase_s": round(erase_s, 3), "erase_goal_s": 60.0, "erase_within_goal": erase_s <= 60.0,
        "bytes_rewritten": rewritten, "bytes_rewritten_fraction": round(rewritten / lake_bytes, 5),
        "files_rewritten": sum(t["files_rewritten"] for t in per_table.values()),
        "files_deleted": sum(t["files_deleted"] for t in per_table.values()),
        "log_files_deleted": sum(t["log_files_deleted"] for t in per_table.values()),
        "per_table": per_table,
        "baseline_plain_delete_s": round(delete_s, 3),
        "baseline_plain_delete_rows": {n: b.get("num_deleted_rows") for n, b in base.items()},
        "erase_vs_plain_delete": round(erase_s / delete_s, 2) if delete_s else None,
        "lineage_conversation_s": round(lineage_s, 4), "lineage_goal_s": 1.0, "lineage_within_goal": lineage_s < 1.0,
        "baseline_full_key_read_s": round(full_read_s, 4),
        "lineage_vs_full_read": round(lineage_s / full_read_s, 3) if full_read_s else None,
        "rows_left_after_erasure": {n: len(v["rows"]) for n, v in left.items()},
        "rows_remaining": remaining,
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("erasure")
    def erasure(rows: int = typer.Option(1_000_000, "--rows", min=1000, help="Trace rows in the lake.")) -> None:
        """Erase one conversation from N trace rows (wall time, bytes rewritten) and time a lineage lookup."""
        from rich.console import Console

        from alignloop.bench._results import print_table, write_result

        console = Console()
        figures = run_erasure_bench(rows, progress=console.log)
        path = write_result("erasure", figures)
        print_table(f"erasure of one conversation, {rows:,} trace rows", [
            ("erase wall s (all tables)", figures["erase_s"]), ("plain DELETE s (baseline)",
                                                                figures["baseline_plain_delete_s"]),
            ("erase / plain delete", figures["erase_vs_plain_delete"]),
            ("bytes rewritten", figures["bytes_rewritten"]),
            ("fraction of lake rewritten", figures["bytes_rewritten_fraction"]),
            ("lineage lookup s", figures["lineage_conversation_s"]),
            ("full key read s (baseline)", figures["baseline_full_key_read_s"]),
            ("rows left after erasure", sum(figures["rows_left_after_erasure"].values()))], console)
        console.print(f"result: {path}")
