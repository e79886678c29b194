"""Erase rows from a Delta table so that no copy is left: delete by pseudonymous key, remove every old file, drop the
old log, and make time travel before the erasure fail with a clear error.

delta-rs's defaults leave deleted rows behind, so each step here closes one hole:
1. A MERGE of the erased keys (an in-memory source) with ``WHEN MATCHED DELETE`` rewrites the files holding those
   rows. Unlike ``DELETE WHERE conv_key = '...'``, whose predicate is written into the log with its literal, the
   merge logs only ``t.conv_key = s.conv_key``: not even the pseudonymous key (``connectors.erasure_key``) is
   kept. A table without the key column (written before it existed) is matched on ``conversation_id`` the same
   way, so the id is never written either.
2. The files the delete removed, the change-data-feed copies it wrote (``_change_data/``) and every other file no
   version references (``vacuum(full=True)``'s list, not its lite mode, which misses files outside the log) are
   deleted for real. A concurrent writer's file that is not committed yet is unreferenced too, so unreferenced
   files younger than ``grace_s`` are kept unless the delete itself removed them (those rows are being erased;
   a young orphan cannot hold them). This is ``vacuum(retention_hours=0, enforce_retention_duration=False,
   dry_run=False, full=True)`` made safe next to live writers.
3. The table property ``alignloop.erasure.version`` records the erasure, a checkpoint is written after it, and every
   older commit JSON and checkpoint is deleted: they carry column statistics (min/max values) of the deleted rows.
   The app transactions (the idempotent sinks' offsets) live on in the new checkpoint.
4. Time travel to a version before the erasure finds no log for it: ``version_gone`` turns that into one line.

Every step is idempotent, so a crashed erasure is finished by running it again.
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import TableNotFoundError

ERASURE_PROPERTY = "alignloop.erasure.version"
KEY_COLUMN = "conv_key"
_LOG_FILE = re.compile(  # commits, checksums, classic / multi-part / V2 checkpoints
    r"^(\d{20})\.(json|crc|checkpoint(\.\d+\.\d+)?\.parquet|checkpoint\.[0-9a-f-]+\.(json|parquet))$")


@dataclass
class TableErasure:
    uri: str
    rows_deleted: int = 0
    files_rewritten: int = 0
    bytes_rewritten: int = 0       # bytes of the data files the delete rewrote (read and written again)
    bytes_written: int = 0         # bytes of the files written in their place
    files_deleted: int = 0         # data and change-data files deleted for real
    bytes_deleted: int = 0
    log_files_deleted: int = 0
    erasure_version: int | None = None
    seconds: float = 0.0
    kept_young: list[str] = field(default_factory=list)  # unreferenced files under grace_s old: a writer's in flight

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_table(uri: str, storage_options: dict[str, str] | None = None) -> DeltaTable | None:
    try:
        return DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        return None


def has_key_column(dt: DeltaTable) -> bool:
    return KEY_COLUMN in {f.name for f in dt.schema().fields}


def match_column(dt: DeltaTable) -> str | None:
    """The column an erasure matches on: conv_key, else conversation_id (older tables), else None."""
    names = {f.name for f in dt.schema().fields}
    return KEY_COLUMN if KEY_COLUMN in names else "conversation_id" if "conversation_id" in names else None


def matching(dt: DeltaTable, column: str, values: list[str], columns: list[str] | None = None) -> pa.Table:
    """Rows of the table's latest version whose ``column`` is one of ``values`` (only ``columns``; partition
    columns are not returned).

    File by file, not through ``to_pyarrow_dataset``: files rewritten by a merge hold ``string_view`` columns, and
    the dataset's per-file statistics guarantees then fail to compare (string vs string_view), and ``is_in`` has no
    string_view kernel. Each file's key column is read (the keys are random: statistics could not prune anyway),
    and the other columns only of files with a match."""
    import pyarrow.parquet as pq

    names = {f.name for f in dt.schema().fields} - set(dt.metadata().partition_columns)
    wanted = list(dict.fromkeys(c for c in (columns or [column]) if c in names))
    parts: list[pa.Table] = []
    keys = pa.array(sorted(set(values)), pa.string())
    for uri in dt.file_uris():
        fs, path = pafs.FileSystem.from_uri(uri)
        key = pq.read_table(path, columns=[column], filesystem=fs).column(column)
        mask = pc.is_in(key.cast(pa.string()), value_set=keys)
        if not pc.any(mask).as_py():
            continue  # most files: only the key column was read
        t = pq.read_table(path, columns=wanted, filesystem=fs)
        t = t.cast(pa.schema([pa.field(f.name, _plain_type(f.type)) for f in t.schema])).filter(mask)
        parts.append(t)
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in wanted})
    return pa.concat_tables(parts, promote_options="permissive")


def _plain_type(t: pa.DataType) -> pa.DataType:
    return pa.string() if t == pa.string_view() else t


def _files(dt: DeltaTable) -> dict[str, int]:
    adds = pa.table(dt.get_add_actions(flatten=False)) if dt.version() >= 0 else None
    if adds is None or adds.num_rows == 0:
        return {}
    return dict(zip(adds.column("path").to_pylist(), adds.column("size_bytes").to_pylist()))


def _fs(uri: str) -> tuple[pafs.FileSystem, str]:
    return pafs.FileSystem.from_uri(uri)


def _delete_files(fs: pafs.FileSystem, root: str, rels: list[str], out: TableErasure) -> None:
    for rel in rels:
        path = f"{root}/{rel}"
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            continue
        out.bytes_deleted += info.size or 0
        fs.delete_file(path)
        out.files_deleted += 1


def _vacuum(dt: DeltaTable, removed: set[str], started: float, grace_s: float, out: TableErasure) -> None:
    """Delete the unreferenced files (full listing): those the delete removed and CDF copies always, any other one
    once it is older than ``grace_s`` (younger: possibly a concurrent writer's file about to be committed)."""
    fs, root = _fs(dt.table_uri)
    candidates = dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=True, full=True)
    doomed: list[str] = []
    for rel in candidates:
        rel = rel.split(root, 1)[-1].lstrip("/") if rel.startswith(("/", "file:")) else rel
        if rel in removed or rel.startswith("_change_data/"):
            doomed.append(rel)
            continue
        info = fs.get_file_info(f"{root}/{rel}")
        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        if mtime < started - grace_s:
            doomed.append(rel)
        else:
            out.kept_young.append(rel)
    _delete_files(fs, root, doomed, out)


def _drop_old_log(dt: DeltaTable, out: TableErasure) -> None:
    """Checkpoint the current version, then delete every commit and checkpoint file before it."""
    dt.create_checkpoint()
    keep_from = dt.version()
    fs, root = _fs(dt.table_uri)
    log_dir = f"{root}/_delta_log"
    for info in fs.get_file_info(pafs.FileSelector(log_dir)):
        m = _LOG_FILE.match(info.base_name)
        if m and int(m.group(1)) < keep_from and info.type == pafs.FileType.File:
            fs.delete_file(info.path)
            out.log_files_deleted += 1


def erase_table(uri: str, column: str, values: list[str], *, storage_options: dict[str, str] | None = None,
                grace_s: float = 300.0) -> TableErasure:
    """Erase every row whose ``column`` (conv_key, or conversation_id) is in ``values`` from the table at ``uri``,
    leaving no copy (module doc)."""
    if column not in (KEY_COLUMN, "conversation_id") or not values:
        raise ValueError(f"erase_table matches on conv_key or conversation_id values (got {column!r})")
    out = TableErasure(uri=uri)
    started = time.time()
    t0 = time.perf_counter()
    dt = DeltaTable(uri, storage_options=storage_options)
    before = _files(dt)
    source = pa.table({column: pa.array(sorted(set(values)), pa.string())})
    metrics = (dt.merge(source, predicate=f"t.{column} = s.{column}", source_alias="s", target_alias="t",
                        commit_properties=CommitProperties(max_commit_retries=50))
               .when_matched_delete().execute())
    out.rows_deleted = int(metrics.get("num_target_rows_deleted") or 0)
    dt.update_incremental()
    after = _files(dt)
    removed = set(before) - set(after)
    out.files_rewritten = len(removed)
    out.bytes_rewritten = sum(before[p] for p in removed)
    out.bytes_written = sum(s for p, s in after.items() if p not in before)
    dt.alter.set_table_properties({ERASURE_PROPERTY: str(dt.version() + 1)}, raise_if_not_exists=False,
                                  commit_properties=CommitProperties(max_commit_retries=50))
    dt.update_incremental()
    out.erasure_version = dt.version()
    _vacuum(dt, removed, started, grace_s, out)
    _drop_old_log(dt, out)
    out.seconds = time.perf_counter() - t0
    return out


def erased_before(dt: DeltaTable) -> int | None:
    """The version of the table's latest erasure (every earlier version is gone), or None."""
    v = dt.metadata().configuration.get(ERASURE_PROPERTY)
    return int(v) if v is not None and str(v).isdigit() else None


def version_gone(uri: str, version: int, storage_options: dict[str, str] | None = None) -> str | None:
    """A one-line explanation when ``version`` of ``uri`` was removed by an erasure (None otherwise)."""
    dt = open_table(uri, storage_options)
    if dt is None:
        return None
    at = erased_before(dt)
    if at is None or version >= at:
        return None
    return (f"version {version} of {uri} was removed by an erasure (every version before {at} is gone, so no "
            f"erased row can be read back); pin version {at} or later")
