"""Idempotent Delta sink: one commit per flush, one Delta app transaction per source (topic, partition).

Guarantee: each commit records ``Transaction(app_id=f"{name}:{topic}:{partition}", version=<last offset>)`` in the
same atomic commit as the rows. After a crash or a replay, records at or below the committed version for their
partition are skipped, so the table never loses or duplicates a row even though Kafka delivers at least once.

Use it as quix-streams' ``BatchingSink``: ``add(row, source)`` for every consumed record (``row=None`` for one that
makes no row, so its offset still advances), then ``flush()`` once per consumed batch. The sink keeps one batch per
source (topic, partition) with its last offset, so callers never track offsets; unlike quix, every source's batch
goes in the same Delta commit (one commit per consumed batch keeps the table's log short). ``write(rows, offsets)``
is the primitive underneath, used directly only for rows that summarise a whole batch rather than one record (drift
events, calibration snapshots), with the batch's last offset per partition.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from schemas.tables import TABLES

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger(__name__)


class Source(Protocol):
    """Where a row came from: a ``schemas.record.Record`` or a ``schemas.verdict.SourceRef``."""

    topic: str
    partition: int
    offset: int


@dataclass
class _Batch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    offset: int = -1


@dataclass
class SinkStats:
    commits: int = 0
    rows: int = 0
    skipped: int = 0
    last_commit_s: float = 0.0
    last_batch_rows: int = 0


@dataclass
class DeltaSink:
    uri: str
    schema: pa.Schema
    partition_by: list[str]
    name: str
    storage_options: dict[str, str] | None = None
    checkpoint_every: int = 50
    max_commit_retries: int = 50
    # conversation_id -> erasure key (connectors.erasure_key): stamped on rows of tables with a conv_key column
    conv_key: Callable[[str | None], str | None] | None = field(default=None, repr=False)
    stats: SinkStats = field(default_factory=SinkStats)
    _table: DeltaTable | None = field(default=None, repr=False)
    _committed: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)
    _batches: dict[tuple[str, int], _Batch] = field(default_factory=dict, repr=False)

    def app_id(self, topic: str, partition: int) -> str:
        return f"{self.name}:{topic}:{partition}"

    def _load(self) -> DeltaTable | None:
        if self._table is None:
            try:
                self._table = DeltaTable(self.uri, storage_options=self.storage_options)
            except TableNotFoundError:
                return None
        else:
            self._table.update_incremental()
        return self._table

    def create(self) -> None:
        """Create the table, empty, unless it exists: writers started together then append to it rather than race
        to create it in their first commits."""
        if self._load() is None:
            self._table = DeltaTable.create(self.uri, schema=self.schema, partition_by=self.partition_by or None,
                                            mode="ignore", storage_options=self.storage_options)

    def refresh(self) -> None:
        """Forget cached transaction versions (call on partition reassignment)."""
        self._committed.clear()
        if self._table is not None:
            self._table.update_incremental()

    def committed_offset(self, topic: str, partition: int) -> int:
        """Last Kafka offset of (topic, partition) already in the table, or -1."""
        key = (topic, partition)
        if key not in self._committed:
            table = self._load()
            version = table.transaction_version(self.app_id(topic, partition)) if table is not None else None
            self._committed[key] = -1 if version is None else int(version)
        return self._committed[key]

    def is_new(self, source: Source) -> bool:
        """Whether ``source``'s offset is above what the table holds for its partition (not a replay)."""
        return source.offset > self.committed_offset(source.topic, source.partition)

    def add(self, row: dict[str, Any] | None, source: Source) -> bool:
        """Queue ``row`` (None: no row, only the offset) from ``source`` for the next ``flush``; a replayed source
        (already in the table) is dropped. Returns whether it was queued."""
        if not self.is_new(source):
            self.stats.skipped += row is not None
            return False
        key = (source.topic, source.partition)
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch()
        if row is not None:
            batch.rows.append(row)
        if source.offset > batch.offset:
            batch.offset = source.offset
        return True

    @property
    def pending(self) -> int:
        """Rows queued for the next ``flush``."""
        return sum(len(b.rows) for b in self._batches.values())

    def flush(self) -> int:
        """Commit every queued batch in one Delta commit, each source's offset as its transaction. Returns rows
        written. If the commit raises, the batches stay queued (and uncommitted)."""
        if not self._batches:
            return 0
        rows = [r for b in self._batches.values() for r in b.rows]
        written = self.write(rows, {k: b.offset for k, b in self._batches.items()})
        self._batches.clear()
        return written

    def write(self, rows: list[dict[str, Any]], offsets: dict[tuple[str, int], int]) -> int:
        """Append ``rows`` and advance the per-partition transaction versions to ``offsets`` atomically.

        ``offsets`` must cover every source partition the rows came from (it may also advance partitions whose
        records produced no rows, e.g. all dead-lettered). Returns rows written.
        """
        advance = {k: v for k, v in offsets.items() if v > self.committed_offset(*k)}
        if not advance:
            self.stats.skipped += len(rows)
            return 0
        started = time.perf_counter()
        if self.conv_key is not None:
            for r in rows:
                if r.get("conv_key") is None:
                    r["conv_key"] = self.conv_key(r.get("conversation_id"))
        data = pa.Table.from_pylist(rows, schema=self.schema)
        txns = [Transaction(self.app_id(t, p), int(off)) for (t, p), off in sorted(advance.items())]
        props = CommitProperties(app_transactions=txns, max_commit_retries=self.max_commit_retries)
        table = self._load()
        # schema_mode="merge": a table created by an older release (before adapter_hash or conv_key) takes the new
        # columns on its next append instead of refusing every write
        write_deltalake(table if table is not None else self.uri, data, mode="append", schema_mode="merge",
                        partition_by=self.partition_by or None, storage_options=self.storage_options,
                        commit_properties=props)
        self._committed.update(advance)
        self.stats.commits += 1
        self.stats.rows += len(rows)
        self.stats.last_batch_rows = len(rows)
        self.stats.last_commit_s = time.perf_counter() - started
        if self.stats.commits % self.checkpoint_every == 0:
            self._checkpoint()
        return len(rows)

    def _checkpoint(self) -> None:
        table = self._load()
        if table is None:
            return
        try:
            table.create_checkpoint()
            table.cleanup_metadata()
        except Exception as exc:  # a failed checkpoint only costs read speed; never the data
            log.warning("delta checkpoint of %s failed: %s", self.uri, exc)


def table_sink(settings: "Settings", table: str, name: str) -> DeltaSink:
    """The sink of one registered table (``schemas.tables.TABLES``) for one writer ``name``: the one way sinks are
    built, so a table's writers differ only by their name (their transactions' prefix)."""
    schema, partition_by = TABLES[table]
    return DeltaSink(settings.table_uri(table), schema, partition_by, name=f"{settings.app_id}-{name}",
                     storage_options=settings.lake_storage_options or None,
                     checkpoint_every=settings.checkpoint_every, conv_key=conv_keys_for(settings, schema))


def conv_keys_for(settings: "Settings", schema: pa.Schema) -> Callable[[str | None], str | None] | None:
    """The erasure-key function for a table with a ``conv_key`` column (None for other tables)."""
    if "conv_key" not in schema.names:
        return None
    from connectors.erasure_key import erasure_keys

    return erasure_keys(settings).conv


def read_table(uri: str, *, version: int | None = None, columns: list[str] | None = None,
               storage_options: dict[str, str] | None = None) -> pa.Table:
    """The table's rows at ``version`` (latest by default); an empty table if it does not exist yet."""
    try:
        dt = DeltaTable(uri, version=version, storage_options=storage_options)
    except TableNotFoundError:
        if version is not None:  # a version an erasure removed is an error, not an empty table
            from connectors.delta_erase import version_gone

            gone = version_gone(uri, version, storage_options)
            if gone:
                raise ValueError(gone) from None
        return pa.table({})
    return dt.to_pyarrow_table(columns=columns)


class RowCounter:
    """Rows in a table from the Delta log's file statistics, read incrementally: a cheap poll (milliseconds,
    no Parquet read) for benchmarks and waits while a writer appends."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None):
        self.uri, self.storage_options = uri, storage_options
        self._dt: DeltaTable | None = None

    def __call__(self) -> int:
        if self._dt is None:
            try:
                self._dt = DeltaTable(self.uri, storage_options=self.storage_options)
            except TableNotFoundError:
                return 0
        else:
            self._dt.update_incremental()
        return sum(pa.table(self._dt.get_add_actions(flatten=True)).column("num_records").to_pylist())


def landing_times(uri: str, *, key: str = "trace_id", storage_options: dict[str, str] | None = None
                  ) -> dict[str, float]:
    """{key value: unix time its data file was written} — when each row landed, from the Delta log."""
    import pyarrow.dataset as ds

    dt = DeltaTable(uri, storage_options=storage_options)
    out: dict[str, float] = {}
    for a in pa.table(dt.get_add_actions(flatten=True)).to_pylist():
        t = a["modification_time"]
        ts = t.timestamp() if hasattr(t, "timestamp") else t / 1000.0
        for v in ds.dataset(f"{uri}/{a['path']}", format="parquet").to_table(columns=[key]).column(key).to_pylist():
            out.setdefault(v, ts)
    return out


def compact(uri: str, storage_options: dict[str, str] | None = None) -> dict[str, Any]:
    """Compact small files and checkpoint; safe while a worker appends (Delta retries the conflict)."""
    dt = DeltaTable(uri, storage_options=storage_options)
    metrics = dt.optimize.compact(commit_properties=CommitProperties(max_commit_retries=50))
    dt.create_checkpoint()
    return metrics
