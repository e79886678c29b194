"""The agreement table: snapshots per queue, the export gate's latest_agreement, and the report's section."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from connectors.agreement_table import gate, latest_agreement, write_agreement
from schemas.settings import Settings


def _summary(queue: str, alpha: dict) -> dict:
    return {"queue": queue, "kind": "score_card", "labels": 30, "items": 10, "alpha": alpha,
            "self_consistency": {"ann": {"consistency": 0.5, "n": 4}}, "kappa": {}}


def test_the_newest_snapshot_per_queue_gates_exports(tmp_path) -> None:
    s = Settings(home=tmp_path, lake_root=str(tmp_path / "lake"))
    assert latest_agreement(s, "scores") == {} and gate(s, "scores", 0.6)[0] is False
    t0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
    write_agreement(s, [_summary("scores", {"helpfulness": 0.81, "safety": 0.9})], now=t0)
    write_agreement(s, [_summary("scores", {"helpfulness": 0.42, "safety": None}),
                        _summary("pairs", {"decision": 0.7})], now=t0 + timedelta(hours=1))
    assert write_agreement(s, [_summary("scores", {"helpfulness": 0.1})], now=t0 + timedelta(hours=1)) == 0  # retry
    a = latest_agreement(s, "scores")
    assert a["min_alpha"] == 0.42 and a["alpha"] == {"helpfulness": 0.42, "safety": None} and a["labels"] == 30
    assert a["summary"]["self_consistency"]["ann"]["consistency"] == 0.5
    ok, why = gate(s, "scores", 0.6)
    assert not ok and "0.420 < required 0.600" in why
    assert gate(s, "pairs", 0.6)[0] is True


def test_the_report_shows_the_latest_agreement(tmp_path) -> None:
    from alignloop.report.agreement import section

    s = Settings(home=tmp_path, lake_root=str(tmp_path / "lake"))
    assert "no agreement snapshots" in section(s.table_uri)
    write_agreement(s, [_summary("scores", {"helpfulness": 0.75, "safety": 0.5})])
    html = section(s.table_uri)
    assert "<td>scores</td>" in html and "helpfulness 0.750, safety 0.500" in html and "ann 0.50" in html
