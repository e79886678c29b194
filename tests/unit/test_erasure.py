"""Erasure and lineage on real Delta tables (no broker): keys, delete + vacuum + log cleanup, time travel refused,
lineage both ways, agent-user resolution, bad input."""
from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.delta_erase import erase_table, version_gone
from connectors.delta_sink import read_table, table_sink
from connectors.erasure_key import ErasureKeys, erasure_secret, key_path
from schemas.settings import Settings
from schemas.tables import CONV_KEY
from trainers.config import DataSettings
from trainers.dataset import build_dataset, read_snapshot
from trainers.synthetic import sft_rows

PLANT = "conv-PLANTED-7f3a"
TEXT = "zanzibar quokka PLANTED-TEXT-51"


class _Src:
    def __init__(self, topic: str, partition: int, offset: int):
        self.topic, self.partition, self.offset = topic, partition, offset


def _settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"), metrics_port=0)


def _land_sft(s: Settings, batches: int = 3) -> list[dict]:
    """sft_examples in several commits (and a checkpoint), the planted conversation in the middle one."""
    rows = sft_rows(30, seed=1)
    for i, r in enumerate(rows[10:14]):
        r.update(conversation_id=PLANT, prompt=f"{TEXT} prompt {i}", response=f"{TEXT} answer {i}")
    sink = table_sink(s, "sft_examples", "t")
    sink.checkpoint_every = 2
    for b in range(batches):
        part = rows[b * 10:(b + 1) * 10]
        sink.write([dict(r) for r in part], {("traces.judged", 0): b * 10 + 9})
    return rows


def _lake_bytes_contain(root: Path, needle: str) -> list[str]:
    """Files under ``root`` whose raw bytes, or (Parquet) decompressed string values, contain ``needle``."""
    hits = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if needle.encode() in path.read_bytes():
            hits.append(str(path))
        elif path.suffix == ".parquet":
            t = pq.read_table(path)
            if any(needle in str(v) for col in t.columns for v in col.to_pylist()):
                hits.append(str(path))
    return hits


def test_erasure_key_is_generated_once_private_and_shared_by_concurrent_first_users(tmp_path: Path):
    s = _settings(tmp_path)
    got: list[bytes] = []
    threads = [threading.Thread(target=lambda: got.append(erasure_secret(s))) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(got)) == 1 and len(got[0]) == 32
    assert stat.S_IMODE(os.stat(key_path(s)).st_mode) == 0o600
    assert erasure_secret(s) == got[0]
    assert [p.name for p in key_path(s).parent.iterdir()] == ["erasure.key"]  # no temp file left behind
    keys = ErasureKeys(got[0])
    assert keys.conv(PLANT) == keys.conv(PLANT) != keys.conv(PLANT + "x") and len(keys.conv(PLANT)) == 32
    assert ErasureKeys(b"other").conv(PLANT) != keys.conv(PLANT) and keys.conv(None) is None
    assert "secret" in repr(keys) and got[0].hex() not in repr(keys)


def test_table_sink_stamps_the_key_and_erase_leaves_no_copy(tmp_path: Path):
    s = _settings(tmp_path)
    rows = _land_sft(s)
    uri = s.table_uri("sft_examples")
    keys = ErasureKeys(erasure_secret(s))
    before = read_table(uri)
    assert before.num_rows == 30 and None not in before.column(CONV_KEY).to_pylist()
    k = keys.conv(PLANT)
    assert _lake_bytes_contain(tmp_path / "lake", "PLANTED-TEXT-51")  # the stats in the log hold it too
    res = erase_table(uri, CONV_KEY, [k])
    assert res.rows_deleted == 4 and res.files_rewritten == 1 and res.bytes_rewritten > 0
    assert res.files_deleted >= 1 and res.log_files_deleted >= 3
    after = read_table(uri)
    assert after.num_rows == 26
    expect = sorted((r["example_id"], r["prompt"], r["response"]) for r in rows if r["conversation_id"] != PLANT)
    assert sorted(zip(*(after.column(c).to_pylist() for c in ("example_id", "prompt", "response")))) == expect
    for needle in (PLANT, "PLANTED-TEXT-51", k):  # nor the key: the merge logs no literal
        assert _lake_bytes_contain(tmp_path / "lake", needle) == [], needle
    # the idempotent sink still knows its offsets (the app transactions live in the new checkpoint)
    assert table_sink(s, "sft_examples", "t").committed_offset("traces.judged", 0) == 29
    # time travel before the erasure: one clear line, not an empty table or "no table"
    with pytest.raises(ValueError, match=r"removed by an erasure .* pin version \d+ or later"):
        read_table(uri, version=1)
    with pytest.raises(ValueError, match="removed by an erasure"):
        read_snapshot(uri, 1)
    assert version_gone(uri, res.erasure_version) is None
    # the table still takes appends afterwards
    sink = table_sink(s, "sft_examples", "t")
    sink.write([dict(rows[0], example_id="late")], {("traces.judged", 0): 40})
    assert read_table(uri).num_rows == 27


def test_erase_matches_conversation_id_on_tables_without_the_key_and_never_logs_it(tmp_path: Path):
    from deltalake import write_deltalake

    uri = str(tmp_path / "lake" / "replay" / "r1" / "records")
    write_deltalake(uri, pa.table({"conversation_id": [PLANT, "c2", "c3"], "offset": [1, 2, 3]}))
    write_deltalake(uri, pa.table({"conversation_id": [PLANT, "c4"], "offset": [4, 5]}), mode="append")
    res = erase_table(uri, "conversation_id", [PLANT])
    assert res.rows_deleted == 2
    assert sorted(read_table(uri).column("offset").to_pylist()) == [2, 3, 5]
    assert _lake_bytes_contain(tmp_path / "lake", PLANT) == []


def test_lineage_finds_rows_datasets_and_adapters_and_plan_refuses_unknown(tmp_path: Path):
    from alignloop.erasure import plan, resolve_agent_user
    from trainers.lineage import lineage_conversation, record_dataset, replay_table_uris

    s = _settings(tmp_path)
    _land_sft(s)
    keys = ErasureKeys(erasure_secret(s))
    bundle = build_dataset("sft", DataSettings(table="sft_examples", min_score=0.0, dedup=False), s.lake, seed=1)
    assert bundle.manifest["conversation_keys"] == {"count": 14, "rows_without_key": 0}
    assert record_dataset(s, bundle, "sft@1") == 14  # rows 10-13 are one conversation
    out = lineage_conversation(s, keys.conv(PLANT), PLANT)
    assert {r["example_id"] for r in out["tables"]["sft_examples"]["rows"]} == {f"ex-1-{i}" for i in range(10, 14)}
    assert [d["dataset_hash"] for d in out["datasets"]] == [bundle.manifest["content_hash"]]
    assert out["datasets"][0]["adapters"] == ["sft@1"] and sum(out["datasets"][0]["splits"].values()) == 4
    assert lineage_conversation(s, keys.conv("conv-1-0"))["tables"]["sft_examples"]["rows"][0]["example_id"] == "ex-1-0"
    assert replay_table_uris(s) == []
    # an agent user: resolved through the text of its rows to the conversations, nothing written
    assert resolve_agent_user(s, "PLANTED-TEXT-51") == ({keys.conv(PLANT)}, {PLANT})
    listing = sorted(str(p) for p in (tmp_path / "lake").rglob("*"))
    with pytest.raises(ValueError, match="no rows of that conversation in any table"):
        plan(s, conversation="conv-nobody")
    with pytest.raises(ValueError, match="no rows of that agent user"):
        plan(s, agent_user="<EMAIL_00000000>")
    with pytest.raises(ValueError, match="exactly one of"):
        plan(s)
    assert sorted(str(p) for p in (tmp_path / "lake").rglob("*")) == listing
    p = plan(s, conversation=PLANT)
    assert p.tables["sft_examples"]["rows"] == 4 and p.tables["dataset_conversations"]["rows"] == 1
    assert p.subject == f"conv_key:{keys.conv(PLANT)}" and PLANT not in repr(p)
    for t in p.tables.values():  # erased: a second plan finds nothing (merge-rewritten files hold string_view)
        erase_table(t["uri"], t["column"], p.conv_keys)
    with pytest.raises(ValueError, match="no rows of that conversation"):
        plan(s, conversation=PLANT)
    assert lineage_conversation(s, keys.conv("conv-1-0"))["tables"]["sft_examples"]["rows"][0]["example_id"] == "ex-1-0"


def test_erasure_bench_erases_the_planted_conversation_from_every_table():
    from alignloop.bench.erasure import run_erasure_bench

    f = run_erasure_bench(3000)
    assert f["planted_rows"] == {"traces": 6, "sft_examples": 6, "preferences": 6}
    assert f["rows_left_after_erasure"] == {}
    assert f["rows_remaining"] == {n: c - 6 for n, c in f["table_rows"].items()}
    assert f["baseline_plain_delete_rows"] == {"traces": 6, "sft_examples": 6, "preferences": 6}
    assert f["bytes_rewritten"] > 0 and f["files_deleted"] >= 3 and f["erase_s"] > 0


def test_an_interrupted_erasure_keeps_its_plan_privately_until_it_is_finished(tmp_path: Path):
    from alignloop.erasure import ErasurePlan, _save_pending, pending

    s = _settings(tmp_path)
    p = ErasurePlan(subject="conv_key:ab", kind="conversation", conv_keys=["ab" * 16], conversation_ids=[PLANT],
                    trace_ids=["t1"], tables={"traces": {"uri": "u", "column": CONV_KEY, "rows": 2}},
                    datasets=[], adapters=[{"adapter_id": "a@1", "created_at": "2026-01-01"}])
    path = _save_pending(s, "e1", p)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert pending(s) == [("e1", p)]
    path.unlink()
    assert pending(s) == []


def test_lineage_adapter_reads_the_dataset_keys_after_an_erasure_rewrote_them(tmp_path: Path):
    from trainers.lineage import _dataset_keys, record_dataset

    s = _settings(tmp_path)
    _land_sft(s)
    keys = ErasureKeys(erasure_secret(s))
    bundle = build_dataset("sft", DataSettings(table="sft_examples", min_score=0.0, dedup=False), s.lake, seed=1)
    record_dataset(s, bundle, "sft@1")
    h = bundle.manifest["content_hash"]
    assert len(_dataset_keys(s, h)) == 14
    erase_table(s.table_uri("dataset_conversations"), CONV_KEY, [keys.conv(PLANT)])
    assert len(_dataset_keys(s, h)) == 13 and keys.conv(PLANT) not in _dataset_keys(s, h)


def test_labeling_items_answers_and_outbox_of_an_erased_trace_are_gone_from_the_database_file(tmp_path) -> None:
    """The labeling UI's SQLite database holds the human-queue record (trace id and scrubbed text), the answers
    (a correction's text) and outbox records: erasure deletes them and rewrites the file, so no byte of them is
    left in the database, its WAL or free pages; the other items are untouched."""
    from datetime import datetime, timezone

    from connectors.labeling_db import Finish, LabelStore
    from alignloop.erasure import erase_labeling

    url = f"sqlite:///{tmp_path / 'labeling.db'}"
    store = LabelStore(url)
    items = [{"id": f"scores:{t}", "queue": "scores", "trace_id": t, "kind": "score_card", "max_labels": 1,
              "priority": 0.0, "payload": {"user_message": f"{word} question", "final_response": "answer"}}
             for t, word in (("tr-plant", "wombatique"), ("tr-keep", "keepsake"))]
    store.add_items(items)
    who = store.add_user("ann", "annotator", "h").id
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    while (lease := store.next_item(who, "scores", lease_s=60, now=now)) is not None:
        finish = lambda _s, item, _a, _ans, _w: Finish(records=(("label", f"human:{item.id}:ann",  # noqa: E731
                                                                  {"trace_id": item.trace_id}),))
        store.submit(who, lease.assignment_id, {"correction": f"better than {lease.item_id}"}, finish,
                     now=now)
    store.close()
    assert erase_labeling(url, ["tr-plant"]) == {"items": 1, "assignments": 1, "outbox": 1}
    for f in tmp_path.glob("labeling.db*"):
        assert b"tr-plant" not in f.read_bytes() and b"wombatique" not in f.read_bytes(), f.name
    store = LabelStore(url)
    assert store.item("scores:tr-plant") is None and store.item("scores:tr-keep").payload["user_message"] == (
        "keepsake question")
    store.close()
    assert erase_labeling(url, ["tr-plant"]) == {"items": 0, "assignments": 0, "outbox": 0}  # idempotent
