"""A replay reuses the live spine's scrubbed text where the live row was made from the same bytes under the same
scrub version, and lands the very rows a replay that scrubs everything again lands; a different scrub config, key
or code, or different bytes at the same offset, are scrubbed again. Real Delta tables, no broker."""
from __future__ import annotations

import pytest
from pydantic import SecretStr

from alignloop.configs import load_configs
from alignloop.simulate import Simulator
from connectors.delta_sink import read_table, table_sink
from connectors.replay_store import replay_table_uri
from schemas.record import Record
from schemas.settings import Settings
from schemas.tables import TRACES_TABLE
from schemas.verdict import JudgedTrace
from streams.encoding import to_row
from streams.pipeline import Pipeline
from streams.replay.rows import value_hash
from streams.replay.worker import ReplayWriter, Task
from streams.scrub import ScrubConfig, scrub_version
from streams.scrub import version as version_module

TOPIC = "agent.traces"
# what a replay's judging sets afresh (its clock) or the live row cannot know
_VOLATILE = ("processed_at", "failed_at")


def _records(n: int, seed: int = 3) -> list[Record]:
    values = [v for _, v, _, _ in Simulator(seed=seed).records(n)]
    values[5] = b"{not json"  # one dead letter: no live row, and an invalid record in both replays
    return [Record(TOPIC, i % 2, i // 2, None, v, 1_700_000_000_000 + i) for i, v in enumerate(values)]


def _settings(tmp_path, **kw) -> Settings:
    return Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"), metrics_port=0, **kw)


def _land_live(s: Settings, records: list[Record]) -> None:
    """What the live spine lands for ``records``: its step's outcomes, as ``traces`` rows."""
    pipeline = Pipeline.from_settings(s, load_configs(s))
    sink = table_sink(s, TRACES_TABLE, "spine")
    for r, out in zip(records, pipeline.process_batch(records)):
        sink.add(to_row(out) if isinstance(out, JudgedTrace) else None, r)
    sink.flush()


def _replay(s: Settings, name: str, records: list[Record], *, reuse: bool) -> ReplayWriter:
    w = ReplayWriter(s, load_configs(s), Task(name, TOPIC, {0: (0, 10**6), 1: (0, 10**6)}, reuse=reuse))
    w.write(records)
    w.close()
    return w


def _rows(s: Settings, name: str, table: str) -> list[dict]:
    rows = read_table(replay_table_uri(s.lake, name, table)).to_pylist()
    return sorted(({k: v for k, v in r.items() if k not in _VOLATILE} for r in rows),
                  key=lambda r: (r.get("src_partition", r.get("partition")), r.get("src_offset", r.get("offset"))))


def test_live_rows_carry_the_scrub_version_and_the_hash_of_their_bytes(tmp_path):
    s = _settings(tmp_path)
    records = _records(10)
    _land_live(s, records)
    rows = read_table(s.table_uri(TRACES_TABLE)).to_pylist()
    assert len(rows) == 9
    want = Pipeline.from_settings(s, load_configs(s)).scrub_version
    assert want and len(want) == 16
    by_offset = {(r.partition, r.offset): r for r in records}
    for row in rows:
        assert row["scrub_version"] == want
        assert row["src_sha256"] == value_hash(by_offset[(row["src_partition"], row["src_offset"])].value)


def test_a_replay_reusing_live_rows_lands_the_rows_of_a_replay_that_scrubs_again(tmp_path):
    s = _settings(tmp_path)
    records = _records(40)
    _land_live(s, records)
    reused = _replay(s, "reuse", records[:16], reuse=True)
    reused.write(records[16:])  # a second batch: the live snapshot is read per batch
    assert reused.counts.landed == 39 and reused.counts.reused == 39 and reused.counts.invalid == 1
    again = _replay(s, "again", records, reuse=False)
    assert again.counts.landed == 39 and again.counts.reused == 0
    for table in ("traces", "dlq"):
        assert _rows(s, "reuse", table) == _rows(s, "again", table)
    ledger = {(r["partition"], r["offset"]): r["reused"] for r in _rows(s, "reuse", "records")}
    assert sum(v is True for v in ledger.values()) == 39 and ledger[(1, 2)] is None  # the dead letter
    assert not any(r["reused"] for r in _rows(s, "again", "records"))
    # and both equal what the live spine landed, verdicts and scrubbed text included
    live = sorted(({k: v for k, v in r.items() if k not in _VOLATILE}
                   for r in read_table(s.table_uri(TRACES_TABLE)).to_pylist()),
                  key=lambda r: (r["src_partition"], r["src_offset"]))
    assert _rows(s, "reuse", "traces") == live


def test_other_bytes_at_the_same_offsets_are_scrubbed_again(tmp_path):
    s = _settings(tmp_path)
    _land_live(s, _records(12, seed=3))
    other = _records(12, seed=4)  # a topic deleted and created again: the same offsets, other records
    w = _replay(s, "other", other, reuse=True)
    assert w.counts.landed == 11 and w.counts.reused == 0
    outcomes = Pipeline.from_settings(s, load_configs(s)).process_batch(other)
    assert {r["trace_id"] for r in _rows(s, "other", "traces")} == {
        o.trace.trace_id for o in outcomes if isinstance(o, JudgedTrace)}


@pytest.mark.parametrize("change", ["config", "key"])
def test_another_scrub_config_or_key_is_another_version_and_scrubs_again(tmp_path, change):
    s = _settings(tmp_path)
    records = _records(8)
    _land_live(s, records)
    if change == "config":
        cfg = tmp_path / "scrub.yaml"
        cfg.write_text("surrogates: true\n")
        s2 = s.model_copy(update={"scrub_config": cfg})
    else:
        s2 = s.model_copy(update={"pii_hmac_key": SecretStr("another-tenant-key")})
    w = _replay(s2, "changed", records, reuse=True)
    assert w.counts.landed == 7 and w.counts.reused == 0
    live = Pipeline.from_settings(s, load_configs(s)).scrub_version
    assert {r["scrub_version"] for r in _rows(s2, "changed", "traces")} == {
        Pipeline.from_settings(s2, load_configs(s2)).scrub_version} != {live}


def test_the_scrub_version_follows_code_config_and_key(monkeypatch):
    base = scrub_version(ScrubConfig(), "k1")
    assert base == scrub_version(ScrubConfig(), "k1") and len(base) == 16
    assert scrub_version(ScrubConfig(surrogates=True), "k1") != base
    assert scrub_version(ScrubConfig(), "k2") != base
    monkeypatch.setattr(version_module, "code_digest", lambda: "0" * 64)  # a change to the scrub code
    assert scrub_version(ScrubConfig(), "k1") != base


def test_version_1_judged_events_without_the_new_fields_still_read(tmp_path):
    import json

    s = _settings(tmp_path)
    new = Pipeline.from_settings(s, load_configs(s)).process_batch(_records(8))[0]
    assert new.schema_version == 2 and new.scrub_version and new.source.value_sha256
    old = json.loads(new.model_dump_json())
    old["schema_version"] = 1
    del old["scrub_version"], old["source"]["value_sha256"]
    got = JudgedTrace.model_validate(old)
    assert got.scrub_version is None and got.source.value_sha256 is None and got.trace == new.trace
    with pytest.raises(ValueError):
        JudgedTrace.model_validate({**old, "schema_version": 3})
