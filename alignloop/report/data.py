"""Read the Delta tables the report needs, cut to a time range (pandas frames; empty when a table is absent)."""
from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from connectors.delta_sink import read_table
from schemas.tables import CALIBRATION_TABLE, DRIFT_EVENTS_TABLE, LABELS_TABLE, TRACES_TABLE

TRACE_COLUMNS = ["trace_id", "policy_id", "ts", "outcome", "scores_json", "n_tool_errors", "latency_ms", "pii_count"]


def _cut(df: pd.DataFrame, col: str, since: datetime, until: datetime) -> pd.DataFrame:
    if df.empty or col not in df:
        return df
    return df[(df[col] >= pd.Timestamp(since)) & (df[col] < pd.Timestamp(until))].sort_values(col)


def _read(uri: str, columns: list[str] | None, storage_options: dict[str, str] | None) -> pd.DataFrame:
    t = read_table(uri, columns=columns, storage_options=storage_options)
    return t.to_pandas() if t.num_columns else pd.DataFrame(columns=columns or [])


def load(table_uri, since: datetime, until: datetime, storage_options: dict[str, str] | None = None
         ) -> dict[str, pd.DataFrame]:
    """table_uri: name -> URI. Returns traces (with one column per score dimension), drift, calibration, labels."""
    traces = _cut(_read(table_uri(TRACES_TABLE), TRACE_COLUMNS, storage_options), "ts", since, until)
    if not traces.empty:
        scores = pd.DataFrame([json.loads(s or "{}") for s in traces["scores_json"]], index=traces.index)
        traces = traces.join(scores.add_prefix("score:"))
    drift = _cut(_read(table_uri(DRIFT_EVENTS_TABLE), None, storage_options), "detected_at", since, until)
    calib = _cut(_read(table_uri(CALIBRATION_TABLE), None, storage_options), "ts", since, until)
    labels = _cut(_read(table_uri(LABELS_TABLE), ["label_id", "policy_id", "source", "passed", "created_at"],
                        storage_options), "created_at", since, until)
    return {"traces": traces, "drift": drift, "calibration": calib, "labels": labels}
