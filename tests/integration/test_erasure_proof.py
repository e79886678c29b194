"""Proof of erasure (issue 17): plant a conversation with known strings, run the spine worker (scrub, judges,
curation), build a dataset and train a tiny adapter, erase it through the CLI; then scan every file under the lake
root and the adapter's directory (every Parquet file decompressed and read, every log and checkpoint file) and every
topic on the broker: zero occurrences of the conversation id, its trace ids, its pseudonym and its text, while every
other conversation's rows are intact."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alignloop.publish import publish
from connectors.kafka_erase import read_retained
from schemas.topics import DRIFT_STATE, TOPICS, TRACES
from streams.scrub.pseudonym import Pseudonymizer
from tests.helpers import settings_env, table_rows, wait_for

pytestmark = pytest.mark.integration
pytest.importorskip("torch", reason="needs the train extra")

REPO = Path(__file__).resolve().parents[2]
PLANT = "conv-PLANTED-q7e2"
EMAIL = "zed.planted@erase-test.example"
WORD = "quokkazanzibar"
TABLES_CHECKED = ("traces", "sft_examples", "preferences", "dataset_conversations")


def _trace(conv: str, turn: int, word: str, email: str | None = None) -> dict:
    who = f"I am {email} and my" if email else "My"
    return {"trace_id": f"tr-{conv}-{turn}", "conversation_id": conv, "agent_id": "support",
            "user_message": f"Hello, {who} {word} order {turn} is late, can you check it?",
            "final_response": f"Thanks for waiting. Your {word} order {turn} ships tomorrow by courier; I have "
                              f"updated the tracking for you."}


def _cli(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alignloop.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=180, env=settings_env(settings))


def _file_hits(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for each needle in a file's raw bytes or, for Parquet (data files and checkpoints), in any
    value after decompression (every column read, nested ones as JSON) or in the footer's statistics."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        text = raw.decode("latin-1")
        if path.suffix == ".parquet":
            t = pq.read_table(path)
            text += json.dumps(t.to_pylist(), default=str)
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, t.schema) as w:  # the decompressed bytes, as Arrow holds them
                w.write_table(t)
            text += sink.getvalue().to_pybytes().decode("latin-1")
            text += str(pq.ParquetFile(path).metadata.to_dict())
        hits += [(str(path.relative_to(root)), n) for n in needles if n in text]
    return hits


def _topic_hits(settings, needles: list[str]) -> list[tuple[str, str]]:
    async def scan() -> list[tuple[str, str]]:
        out = []
        for name in TOPICS:
            for m in await read_retained(settings, settings.topic(name)):
                blob = (m.key or b"") + (m.value or b"") + b"".join(v or b"" for _, v in (m.headers or ()))
                out += [(f"{name}:{m.partition}@{m.offset}", n) for n in needles if n.encode() in blob]
        return out
    return asyncio.run(scan())


def _rows(settings, table: str) -> list[tuple]:
    t = table_rows(settings, table)
    cols = sorted(c for c in t.column_names if c not in ("processed_at", "created_at"))
    return sorted(json.dumps([r[c] for c in cols], default=str) for r in t.to_pylist())


def test_planted_conversation_is_erased_everywhere_and_the_rest_is_intact(make_settings, worker_factory, tmp_path):
    from trainers.config import TrainConfig
    from trainers.synthetic import corpus
    from trainers.tiny import build_tiny_model
    from trainers.train_step import run_training

    from connectors.kafka import create_topics

    # The drift monitor runs and checkpoints every second: its state (file and drift.state) holds the planted
    # trace ids and their text snippets until the erasure's command reaches it.
    (tmp_path / "drift.yaml").write_text("checkpoint_interval_s: 1\n")
    s = make_settings(drift_config=tmp_path / "drift.yaml")
    asyncio.run(create_topics(s))
    others = [_trace(f"conv-other-{c}", t, f"parcel{c}") for c in range(5) for t in range(2)]
    planted = [_trace(PLANT, t, WORD, EMAIL) for t in range(3)]
    records = [(r["conversation_id"].encode(), json.dumps(r).encode()) for r in others[:6] + planted + others[6:]]
    worker = worker_factory(s).start()
    asyncio.run(publish(s, s.topic(TRACES), records))
    n = len(records)
    wait_for(lambda: table_rows(s, "traces", ["trace_id"]).num_rows == n, 120, what="every trace landed",
             worker=worker)
    wait_for(lambda: table_rows(s, "sft_examples", ["example_id"]).num_rows == n, 60, what="curated", worker=worker)

    base = build_tiny_model(tmp_path / "base", corpus(), hidden=16, layers=1, heads=2)
    cfg = TrainConfig(kind="sft", base_model=str(base), adapter_name="erase-sft", output_root=tmp_path / "adapters",
                      data={"min_score": 0.0, "dedup": False}, epochs=1, seed=3, batch_size=8, max_length=48,
                      logging_steps=1, eval_steps=10, warmup_ratio=0.0, gradient_checkpointing=False,
                      lora={"r": 4, "alpha": 8, "dropout": 0.0})
    manifest = run_training(cfg, s)
    adapter_dir = Path(manifest.path)
    assert manifest.dataset["conversation_keys"]["count"] == 6  # 5 others + the planted one

    pseudonym = Pseudonymizer(s.pii_hmac_key).token("EMAIL", EMAIL)
    traces = table_rows(s, "traces").to_pylist()
    assert any(pseudonym in r["user_message"] for r in traces if r["conversation_id"] == PLANT)
    needles = [PLANT, EMAIL, pseudonym, WORD, *(f"tr-{PLANT}-{t}" for t in range(3))]
    assert _file_hits(Path(s.lake), needles) and _topic_hits(s, needles)  # the scans do see them before
    wait_for(lambda: any(f"tr-{PLANT}-2".encode() in p.read_bytes() and WORD.encode() in p.read_bytes()
                         for p in (Path(s.home) / "worker").glob("drift-state-*.json")), 60,
             what="the drift monitor's state to hold the planted trace", worker=worker)
    wait_for(lambda: any(loc.startswith(DRIFT_STATE + ":") for loc, _ in _topic_hits(s, needles)), 30,
             what="a drift.state snapshot holding it", worker=worker)
    from connectors.erasure_key import erasure_keys

    key = erasure_keys(s).conv(PLANT)
    before = {t: [r for r in _rows(s, t) if PLANT not in r and key not in r] for t in TABLES_CHECKED}

    from trainers.lineage import lineage_adapter

    up = lineage_adapter(s, manifest.adapter_id)
    assert up["dataset"]["table"] == "sft_examples" and up["conversation_keys"] == 6
    assert up["offset_ranges"] and up["versions"]["judge_versions"] and up["versions"]["scrubber_key_ids"]
    assert up["versions"]["policies"] == ["base"] and [e["event"] for e in up["registry_events"]] == ["trained"]
    lineage = _cli(s, "lineage", "conversation", PLANT, "--timing")
    assert lineage.returncode == 0, lineage.stderr
    found = json.loads(lineage.stdout)
    assert len(found["tables"]["traces"]["rows"]) == 3 and len(found["tables"]["sft_examples"]["rows"]) == 3
    assert [a["adapter_id"] for a in found["adapters"]] == [manifest.adapter_id]

    # The running monitor applies the drift.erase command between its batches; on a loaded machine that can take
    # longer than the default 10 s wait (the erase then cleans the snapshot itself, and the check below fails)
    done = _cli(s, "erase", "--conversation", PLANT, "--json", "--retrain", "--kafka-wait-s", "60")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tables"]["traces"]["rows_deleted"] == 3 and report["tables"]["sft_examples"]["rows_deleted"] == 3
    assert report["tables"]["dataset_conversations"]["rows_deleted"] == 1
    assert [m["adapter_id"] for m in report["adapters_marked"]] == [manifest.adapter_id]
    assert sum(report["dataset_file_rows_dropped"].values()) == 3
    assert {h["topic"] for h in report["kafka"] if h["action"] == "deleted"} >= {TRACES, "traces.judged"}
    assert report["kafka_last_copy_expires_by"] is None and report["kafka_kept_forever"] == []
    assert len(report["retrain_requests"]) == 1
    assert report["drift_state"]["applied_by_monitors"] == [s.app_id] and report["drift_state"]["remaining"] == 0
    assert PLANT not in done.stdout and EMAIL not in done.stdout

    assert _file_hits(Path(s.lake), needles) == []
    assert _file_hits(adapter_dir, needles) == []
    assert _file_hits(Path(s.home), needles) == []  # the erasure report and worker state too
    assert _topic_hits(s, needles) == []
    assert {t: _rows(s, t) for t in TABLES_CHECKED} == before  # every other row, unchanged

    from trainers.dataset import read_snapshot
    from trainers.registry import show_adapter

    assert show_adapter(s, manifest.adapter_id)["status"] == "trained_on_erased_data"
    with pytest.raises(ValueError, match="removed by an erasure"):
        read_snapshot(s.table_uri("sft_examples"), manifest.dataset["delta_version"])
    audit = _cli(s, "audit", "show", "--last", "1")
    entry = json.loads(audit.stdout.strip().splitlines()[-1])
    assert entry["action"] == "erase.conversation" and entry["subject"] == report["subject"]
    again = _cli(s, "erase", "--conversation", PLANT)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "no rows of that conversation" in again.stderr
    assert worker.alive()
