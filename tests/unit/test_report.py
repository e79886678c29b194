from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from alignloop.report import build_report
from alignloop.simulate import Drift
from schemas.preference import Label
from schemas.tables import CALIBRATION_TABLE, DRIFT_EVENTS_TABLE, LABELS_TABLE, TABLES, TRACES_TABLE
from streams.drift.bank import MonitorBank
from streams.drift.tracker import CalibrationTracker
from streams.encoding import to_row
from tests.unit._drift_helpers import judged_stream, small_config

PNG = b"\x89PNG\r\n\x1a\n"


def _write(root, name, rows):
    schema, parts = TABLES[name]
    write_deltalake(str(root / name), pa.Table.from_pylist(rows, schema=schema), partition_by=parts)


def test_report_renders_every_view_from_delta_and_respects_the_range(tmp_path):
    cfg = small_config()
    traces = list(judged_stream(8, 6000, drifts=[Drift(at=4000, changes={"tool_failure_rate": 0.6})]))
    alarms = MonitorBank(cfg).observe(traces)
    assert alarms
    tracker = CalibrationTracker(cfg.calibration)
    for j in traces:
        tracker.store.remember(j)
    labels = []
    for i, j in enumerate(traces[::20]):
        lab = Label(label_id=f"l{i}", trace_id=j.trace.trace_id, passed=(i % 3 != 0),
                    created_at=j.trace.timestamp + timedelta(seconds=5))
        tracker.on_label(lab)
        labels.append({"label_id": lab.label_id, "trace_id": lab.trace_id, "policy_id": "base", "source": "llm_judge",
                       "passed": lab.passed, "date": "2026-11-01", "created_at": lab.created_at})
    lake = tmp_path / "lake"
    _write(lake, TRACES_TABLE, [to_row(j) for j in traces])
    _write(lake, DRIFT_EVENTS_TABLE, [a.to_row() for a in alarms])
    _write(lake, CALIBRATION_TABLE, tracker.snapshot(now=traces[-1].trace.timestamp))
    _write(lake, LABELS_TABLE, labels)

    start = traces[0].trace.timestamp
    res = build_report(lambda n: str(lake / n), start, start + timedelta(hours=1), tmp_path / "out")
    html = res["index"].read_text()
    assert res["counts"] == {"traces": 6000, "drift_events": len(alarms), "calibration_rows": 1, "labels": 300,
                             "rollout_decisions": 0}
    assert len(res["figures"]) == 5
    for path in res["figures"].values():
        assert path.read_bytes()[:8] == PNG and f'src="{path.name}"' in html
    assert "tool_error" in html  # the drift table names what drifted

    later = build_report(lambda n: str(lake / n), start + timedelta(seconds=8), start + timedelta(seconds=10),
                         tmp_path / "cut")
    assert later["counts"]["traces"] == 1000  # 2 s at 500 traces/s
    empty = build_report(lambda n: str(tmp_path / "nolake" / n), datetime(2020, 1, 1, tzinfo=timezone.utc),
                         datetime(2020, 1, 2, tzinfo=timezone.utc), tmp_path / "empty")
    assert empty["figures"] == {} and "no data in this range" in empty["index"].read_text()


def test_report_without_drift_or_calibration_tables(tmp_path):
    """A fresh lake has traces but no drift/calibration tables yet: the report still renders (the demo's case)."""
    from datetime import datetime, timedelta, timezone

    import pyarrow as pa
    from deltalake import write_deltalake

    from alignloop.report import build_report
    from schemas.tables import TRACES_SCHEMA

    now = datetime.now(timezone.utc)
    row = {f.name: None for f in TRACES_SCHEMA}
    row.update(trace_id="t1", conversation_id="c", agent_id="a", policy_id="base", ts=now, date=now.date().isoformat(),
               src_topic="agent.traces", src_partition=0, src_offset=0, processed_at=now, outcome="pass",
               scores_json='{"safety": 1.0}', tags=[], flags=[], tool_names=[], pii_count=0, n_tool_errors=0,
               latency_ms=10.0, final_response="ok")
    write_deltalake(str(tmp_path / "lake" / "traces"), pa.Table.from_pylist([row], schema=TRACES_SCHEMA),
                    partition_by=["date"])
    result = build_report(lambda name: str(tmp_path / "lake" / name), now - timedelta(hours=1),
                          now + timedelta(hours=1), tmp_path / "out", None)
    assert result["counts"]["traces"] == 1 and result["counts"]["drift_events"] == 0
    assert Path(result["index"]).is_file() and result["figures"]


def test_report_shows_each_rollouts_timeline_decisions_and_per_arm_metrics(tmp_path):
    """Rows of the Delta table `rollouts` become a weight-over-time plot, a decision table with the reasons (escaped)
    and the per-arm metrics of each rollout's last analysed decision."""
    import json as _json
    from datetime import datetime, timedelta, timezone

    import pyarrow as pa
    from deltalake import write_deltalake

    from alignloop.report import build_report
    from schemas.tables import ROLLOUTS_SCHEMA

    t0 = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
    metric = {"name": "violation", "n_baseline": 300, "n_candidate": 140, "mean_baseline": 0.01,
              "mean_candidate": 0.031, "delta": 0.021, "margin": 0.005, "verdict": "harm"}

    def row(i, rid, action, before, after, reason, metrics=()):
        return {"decision_id": f"{rid}-{i}", "rollout_id": rid, "agent_id": "bot", "action": action, "actor": "ctl",
                "reason": reason, "flag_version": i, "stage": "canary", "weight_before": before, "weight_after": after,
                "adapter_id": f"sft@{rid}", "adapter_hash": "sha256:ab", "baseline_policy_id": "base",
                "candidate_policy_id": f"sft@{rid}", "baseline_conversations": 10 * i, "candidate_conversations": i,
                "counts_json": "{}", "metrics_json": _json.dumps(list(metrics)), "steps_json": "[]",
                "record_json": "{}", "decided_at": t0 + timedelta(seconds=10 * i), "date": "2026-12-02",
                "src_topic": "rollout.decisions", "src_partition": 0, "src_offset": i}

    rows = [row(1, "r1", "start", 0, 20, "started"), row(2, "r1", "step", 20, 50, "non-inferior"),
            row(3, "r1", "promote", 50, 100, "every metric non-inferior"),
            row(4, "r2", "start", 0, 20, "started"),
            row(5, "r2", "rollback", 20, 0, "candidate worse on violation <script>x</script>", [metric])]
    lake = tmp_path / "lake"
    write_deltalake(str(lake / "rollouts"), pa.Table.from_pylist(rows, schema=ROLLOUTS_SCHEMA), partition_by=["date"])
    res = build_report(lambda n: str(lake / n), t0 - timedelta(minutes=1), t0 + timedelta(hours=1), tmp_path / "out")
    page = res["index"].read_text()
    assert res["counts"]["rollout_decisions"] == 5 and res["figures"]["Rollouts"].is_file()
    assert page.count("<td>promote</td>") == 1 and page.count("<td>rollback</td>") == 1
    assert "20 → 50" in page and "candidate worse on violation &lt;script&gt;" in page and "<script>x" not in page
    assert "<td>violation</td><td>300</td><td>140</td><td>0.0100</td><td>0.0310</td>" in page
