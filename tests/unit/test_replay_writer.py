"""The replay writer on real Delta tables, no broker: batches committed on the committer thread land every record
once, and a writer restarted after a crash that left the sinks at different offsets resumes at the lowest and lands
each sink's missing rows only; a replay process's imports stay light (no river, scikit-learn or SciPy)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alignloop.configs import load_configs
from alignloop.simulate import Simulator
from connectors.delta_sink import read_table
from connectors.replay_store import replay_table_uri
from schemas.record import Record
from schemas.settings import Settings
from streams.replay.rows import content_hash
from streams.replay.worker import ReplayWriter, Task

REPO = Path(__file__).resolve().parents[2]


def _records(n: int) -> list[Record]:
    values = [v for _, v, _, _ in Simulator(seed=3).records(n)]
    values[5] = b"{not json"  # one dead letter
    return [Record("src", i % 2, i // 2, None, v, 1_700_000_000_000 + i) for i, v in enumerate(values)]


def _tables(s: Settings) -> dict[str, list[dict]]:
    return {t: read_table(replay_table_uri(s.lake, "w", t)).to_pylist() for t in ("traces", "dlq", "records")}


def test_writer_lands_every_record_once_and_resumes_each_sink_where_it_stopped(tmp_path):
    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"), metrics_port=0)
    configs = load_configs(s)
    records = _records(40)
    task = Task("w", "src", {0: (0, 19), 1: (0, 19)})
    first = ReplayWriter(s, configs, task)
    assert [first.resume_at(p) for p in (0, 1)] == [0, 0]
    first.submit(records[:16])
    first.submit(records[16:24])  # handed off while the first batch may still be committing
    first.close()
    # a crash after the traces commit of the next batch, before its dlq and ledger commits
    batch = first.prepare(records[24:32])
    first.traces.write(batch.rows[0], batch.offsets[0])
    assert len(_tables(s)["traces"]) == 31 and len(_tables(s)["records"]) == 24

    again = ReplayWriter(s, configs, task)
    assert [again.resume_at(p) for p in (0, 1)] == [12, 12]  # the ledger's last offsets + 1, not the traces'
    again.submit(records[24:])
    again.close()
    got = _tables(s)
    assert again.counts.read == 16 and again.counts.landed == 16
    ids = [r["trace_id"] for r in got["traces"]]
    assert len(ids) == len(set(ids)) == 39
    assert sorted((r["partition"], r["offset"]) for r in got["records"]) == sorted(
        (r.partition, r.offset) for r in records)
    assert len(got["dlq"]) == 1 and got["dlq"][0]["offset"] == 2
    statuses = {r["status"] for r in got["records"]}
    assert statuses == {"landed", "invalid"}
    # the same records into a fresh replay give the same content hash
    fresh = Settings(home=tmp_path / "home2", lake_root=str(tmp_path / "lake2"), metrics_port=0)
    w = ReplayWriter(fresh, configs, task)
    w.write(records)
    assert content_hash(got["records"]) == content_hash(_tables(fresh)["records"])


def test_a_replay_process_imports_no_heavy_modules():
    code = ("import sys, alignloop.replay, alignloop.configs, streams.configs, streams.replay.worker, "
            "streams.pipeline; print(sorted(m for m in ('river', 'sklearn', 'scipy', 'torch', 'transformers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
