"""The idempotent Delta sink: transaction versions per source partition, replays skipped."""
from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable

from connectors.delta_sink import DeltaSink, compact, read_table

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
    batch = [("topic", 0, 0, "a"), ("topic", 0, 1, "b"), ("topic", 0, 2, "d"), ("topic", 1, 0, "c")]
    assert s2.filter_new(batch) == ["d"]
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
