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
from streams.pipeline import to_row
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
    assert res["counts"] == {"traces": 6000, "drift_events": len(alarms), "calibration_rows": 1, "labels": 300}
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
