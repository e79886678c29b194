"""`alignloop bench flags`, tiny, on the real broker: every client serves every version, and the counts hold."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from alignloop.cli import app

pytestmark = pytest.mark.integration


def test_bench_flags_small(kafka_settings, monkeypatch, tmp_path) -> None:
    s = kafka_settings
    monkeypatch.setenv("ALIGNLOOP_KAFKA_BOOTSTRAP", s.kafka_bootstrap)
    monkeypatch.setenv("ALIGNLOOP_HOME", str(s.home))
    monkeypatch.setenv("ALIGNLOOP_BENCH_DIR", str(tmp_path / "results"))
    res = CliRunner().invoke(app, ["bench", "flags", "--clients", "3", "--versions", "3", "--gap", "0.2",
                                   "--pollers", "1", "--poll-interval", "0.5", "--conversations", "300",
                                   "--turns", "3"])
    assert res.exit_code == 0, res.output
    (path,) = (tmp_path / "results").glob("flags-*.json")
    d = json.loads(path.read_text())
    prop, sw = d["propagation"], d["switches"]
    assert prop["served_after_ack_s"]["n"] == 9 and prop["missed"] == 0  # 3 clients x 3 versions
    assert prop["poll_baseline"]["missed"] == 0 and prop["poll_baseline"]["reads"] >= 2
    assert d["flag_propagation_p99_s"] == prop["served_after_ack_s"]["p99"] is not None
    assert sw["variant_calls"] >= 900 and d["mid_conversation_switches"] == 0
    # the rollback moves exactly the open conversations the client had on the candidate
    assert d["rollback_moves"] == sw["client_moves"].get("rollback", 0) > 0
    assert sw["flagd_per_request_baseline"]["mid_conversation_switches"] > 0
