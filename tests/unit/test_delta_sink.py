"""The idempotent Delta sink: transaction versions per source partition, replays skipped."""
from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable

from connectors.delta_sink import DeltaSink, compact, read_table
from schemas.verdict import SourceRef

SCHEMA = pa.schema([("id", pa.string()), ("date", pa.string())])


def rows(*ids):
    return [{"id": i, "date": "2026-11-01"} for i in ids]


def test_replayed_batches_are_skipped_across_sink_instances(tmp_path):
    uri = str(tmp_path / "t")
    s1 = DeltaSink(uri, SCHEMA, ["date"], "sink")
    assert s1.committed_offset("topic", 0) == -1
    assert s1.write(rows("a", "b"), {("topic", 0): 1}) == 2
    assert s1.write(rows("c"), {("topic", 1): 0}) == 1
    s2 = DeltaSink(uri, SCHEMA, ["date"], "sink")  # a restarted worker
    assert (s2.committed_offset("topic", 0), s2.committed_offset("topic", 1)) == (1, 0)
    batch = [SourceRef(topic="topic", partition=p, offset=o) for p, o in ((0, 0), (0, 1), (0, 2), (1, 0))]
    assert [s2.is_new(src) for src in batch] == [False, False, True, False]
    assert s2.write(rows("d"), {("topic", 0): 2}) == 1
    assert s2.write(rows("d"), {("topic", 0): 2}) == 0  # the same batch again: nothing
    assert sorted(read_table(uri).column("id").to_pylist()) == ["a", "b", "c", "d"]
    dt = DeltaTable(uri)
    assert dt.transaction_version("sink:topic:0") == 2


def test_sinks_with_different_names_are_independent(tmp_path):
    uri = str(tmp_path / "t")
    DeltaSink(uri, SCHEMA, ["date"], "one").write(rows("a"), {("t", 0): 5})
    assert DeltaSink(uri, SCHEMA, ["date"], "two").committed_offset("t", 0) == -1


def test_checkpoint_and_compaction_keep_rows(tmp_path):
    uri = str(tmp_path / "t")
    sink = DeltaSink(uri, SCHEMA, ["date"], "s", checkpoint_every=3)
    for i in range(7):
        sink.write(rows(f"r{i}"), {("t", 0): i})
    compact(uri)
    assert sorted(read_table(uri).column("id").to_pylist()) == [f"r{i}" for i in range(7)]
    assert DeltaSink(uri, SCHEMA, ["date"], "s").committed_offset("t", 0) == 6
    assert read_table(str(tmp_path / "missing")).num_rows == 0


def test_add_and_flush_keep_one_batch_per_source_with_its_offsets(tmp_path):
    from schemas.record import Record

    uri = str(tmp_path / "t")
    sink = DeltaSink(uri, SCHEMA, ["date"], "sink")
    recs = [Record("topic", i % 2, 10 + i, None, b"") for i in range(6)]
    for r in recs:
        # a record that makes no row (dead-lettered) still moves its partition's offset
        assert sink.add(rows(f"r{r.offset}")[0] if r.offset != 15 else None, r)
    assert sink.pending == 5
    assert sink.flush() == 5 and sink.pending == 0 and sink.flush() == 0
    dt = DeltaTable(uri)
    assert (dt.transaction_version("sink:topic:0"), dt.transaction_version("sink:topic:1")) == (14, 15)
    again = DeltaSink(uri, SCHEMA, ["date"], "sink")  # a restarted worker replays the batch and one more record
    assert [again.add(rows(f"r{r.offset}")[0], r) for r in recs] == [False] * 6
    assert again.add(rows("r16")[0], Record("topic", 0, 16, None, b""))
    assert again.flush() == 1
    assert sorted(read_table(uri).column("id").to_pylist()) == ["r10", "r11", "r12", "r13", "r14", "r16"]
    assert DeltaTable(uri).transaction_version("sink:topic:1") == 15


def test_table_sink_is_the_one_way_a_tables_sink_is_built(tmp_path):
    from connectors.delta_sink import table_sink
    from schemas.settings import Settings
    from schemas.tables import TABLES, TRACES_TABLE

    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"), app_id="app", checkpoint_every=7)
    sink = table_sink(s, TRACES_TABLE, "traces")
    assert (sink.uri, sink.name, sink.checkpoint_every) == (s.table_uri(TRACES_TABLE), "app-traces", 7)
    assert (sink.schema, sink.partition_by) == TABLES[TRACES_TABLE]


def test_a_table_from_an_older_release_takes_new_columns_on_append(tmp_path):
    """A lake written before a column was added (adapter_hash, conv_key) keeps accepting appends: the old rows read
    back with nulls in the new column, the new rows with their values."""
    import pyarrow as pa

    from connectors.delta_sink import DeltaSink, read_table

    old = pa.schema([pa.field("trace_id", pa.string(), nullable=False), pa.field("date", pa.string())])
    new = old.append(pa.field("adapter_hash", pa.string()))

    class Src:
        def __init__(self, offset):
            self.topic, self.partition, self.offset = "t", 0, offset

    uri = str(tmp_path / "t")
    first = DeltaSink(uri, old, [], name="w")
    first.add({"trace_id": "a", "date": "2026-12-01"}, Src(0))
    first.flush()
    second = DeltaSink(uri, new, [], name="w")
    second.add({"trace_id": "b", "date": "2026-12-02", "adapter_hash": "sha256:1"}, Src(1))
    assert second.flush() == 1
    rows = sorted(read_table(uri).to_pylist(), key=lambda r: r["trace_id"])
    assert rows == [{"trace_id": "a", "date": "2026-12-01", "adapter_hash": None},
                    {"trace_id": "b", "date": "2026-12-02", "adapter_hash": "sha256:1"}]
