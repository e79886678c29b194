"""Delta table schemas (Arrow) for everything the pipeline lands."""
from __future__ import annotations

import pyarrow as pa

TRACES_TABLE = "traces"

TRACES_SCHEMA = pa.schema([
    pa.field("trace_id", pa.string(), nullable=False),
    pa.field("conversation_id", pa.string(), nullable=False),
    pa.field("agent_id", pa.string(), nullable=False),
    pa.field("policy_id", pa.string(), nullable=False),
    pa.field("adapter_hash", pa.string()),          # the adapter that served the turn (None: base model)
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("date", pa.string(), nullable=False),  # partition column, YYYY-MM-DD of ts
    pa.field("user_message", pa.string()),
    pa.field("final_response", pa.string()),
    pa.field("context_json", pa.string()),
    pa.field("tool_calls_json", pa.string()),
    pa.field("tool_names", pa.list_(pa.string())),
    pa.field("n_tool_errors", pa.int32()),
    pa.field("latency_ms", pa.float64()),
    pa.field("flags", pa.list_(pa.string())),
    pa.field("candidates_json", pa.string()),
    pa.field("metadata_json", pa.string()),
    pa.field("outcome", pa.string()),
    pa.field("scores_json", pa.string()),
    pa.field("verdicts_json", pa.string()),
    pa.field("tags", pa.list_(pa.string())),
    pa.field("pii_json", pa.string()),
    pa.field("pii_count", pa.int32()),
    pa.field("src_topic", pa.string(), nullable=False),
    pa.field("src_partition", pa.int32(), nullable=False),
    pa.field("src_offset", pa.int64(), nullable=False),
    pa.field("processed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("scrub_version", pa.string()),         # JudgedTrace.scrub_version (None: rows from before 2026-12)
    pa.field("src_sha256", pa.string()),            # sha256 of the source record's raw value (SourceRef)
])

# The traces columns that judging decides: a replay that reuses a live row's scrubbed trace sets these afresh and
# copies the rest (connectors.replay_store.LiveTraces, streams.encoding.rejudged_row)
TRACES_JUDGING_COLUMNS = ("outcome", "scores_json", "verdicts_json", "tags", "processed_at")

SFT_EXAMPLES_TABLE = "sft_examples"
SFT_EXAMPLES_SCHEMA = pa.schema([
    pa.field("example_id", pa.string(), nullable=False),   # = trace_id for examples curated from traces
    pa.field("trace_id", pa.string()),
    pa.field("conversation_id", pa.string()),
    pa.field("policy_id", pa.string()),
    pa.field("prompt", pa.string(), nullable=False),        # scrubbed; context rendered in
    pa.field("response", pa.string(), nullable=False),      # scrubbed
    pa.field("domain", pa.string()),
    pa.field("score", pa.float64()),                        # aggregate judge score in [0, 1]
    pa.field("confidence", pa.float64()),
    pa.field("judge_versions_json", pa.string()),           # {"policy": "1", ...}
    pa.field("date", pa.string(), nullable=False),
    pa.field("src_topic", pa.string()),
    pa.field("src_partition", pa.int32()),
    pa.field("src_offset", pa.int64()),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
])

PREFERENCES_TABLE = "preferences"
PREFERENCES_SCHEMA = pa.schema([                           # seed 000's preference store
    pa.field("pref_id", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("candidates", pa.list_(pa.string()), nullable=False),
    pa.field("chosen_idx", pa.int32(), nullable=False),
    pa.field("rejected_idx", pa.int32(), nullable=False),
    pa.field("chosen", pa.string(), nullable=False),
    pa.field("rejected", pa.string(), nullable=False),
    pa.field("strength", pa.float64()),
    pa.field("rationale", pa.string()),
    pa.field("safety_tags", pa.list_(pa.string())),
    pa.field("source", pa.string()),                        # llm_judge | human | sdk | rule
    pa.field("annotator", pa.string()),
    pa.field("trace_id", pa.string()),
    pa.field("conversation_id", pa.string()),
    pa.field("policy_id", pa.string()),
    pa.field("judge_versions_json", pa.string()),
    pa.field("metadata_json", pa.string()),
    pa.field("date", pa.string(), nullable=False),
    pa.field("src_topic", pa.string()),
    pa.field("src_partition", pa.int32()),
    pa.field("src_offset", pa.int64()),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
])

LABELS_TABLE = "labels"
LABELS_SCHEMA = pa.schema([
    pa.field("label_id", pa.string(), nullable=False),
    pa.field("trace_id", pa.string(), nullable=False),
    pa.field("policy_id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("annotator", pa.string()),
    pa.field("passed", pa.bool_()),
    pa.field("scores_json", pa.string()),
    pa.field("confidence", pa.float64()),
    pa.field("rationale", pa.string()),
    pa.field("judge_version", pa.string()),
    pa.field("date", pa.string(), nullable=False),
    pa.field("src_topic", pa.string()),
    pa.field("src_partition", pa.int32()),
    pa.field("src_offset", pa.int64()),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
])

# name -> (schema, partition columns). Other areas add their tables here (adapters, drift_events, calibration).
TABLES: dict[str, tuple[pa.Schema, list[str]]] = {
    TRACES_TABLE: (TRACES_SCHEMA, ["date"]),
    SFT_EXAMPLES_TABLE: (SFT_EXAMPLES_SCHEMA, ["date"]),
    PREFERENCES_TABLE: (PREFERENCES_SCHEMA, ["date"]),
    LABELS_TABLE: (LABELS_SCHEMA, ["date"]),
}

# Trainers' model registry (issue 6): one row per event (trained, gate result); latest row per adapter_id wins.
ADAPTERS_TABLE = "adapters"
ADAPTERS_SCHEMA = pa.schema([
    pa.field("adapter_id", pa.string(), nullable=False),    # <name>@<version>
    pa.field("name", pa.string(), nullable=False),
    pa.field("version", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),           # sft | dpo | reward
    pa.field("event", pa.string(), nullable=False),          # trained | gated
    pa.field("status", pa.string(), nullable=False),         # trained | gate_passed | gate_failed
    pa.field("base_model", pa.string()),
    pa.field("path", pa.string()),
    pa.field("dataset_table", pa.string()),
    pa.field("dataset_version", pa.int64()),
    pa.field("dataset_hash", pa.string()),
    pa.field("seed", pa.int64()),
    pa.field("metrics_json", pa.string()),
    pa.field("gate_json", pa.string()),
    pa.field("manifest_json", pa.string()),
    pa.field("date", pa.string(), nullable=False),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
])
TABLES[ADAPTERS_TABLE] = (ADAPTERS_SCHEMA, ["date"])

DRIFT_EVENTS_TABLE = "drift_events"
DRIFT_EVENTS_SCHEMA = pa.schema([                          # streams.drift.events.DriftEvent
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("policy_id", pa.string(), nullable=False),
    pa.field("signal", pa.string(), nullable=False),
    pa.field("detector", pa.string()),
    pa.field("since", pa.timestamp("us", tz="UTC")),
    pa.field("detected_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("ref_mean", pa.float64()),
    pa.field("current_mean", pa.float64()),
    pa.field("magnitude", pa.float64()),
    pa.field("z", pa.float64()),
    pa.field("example_trace_ids", pa.list_(pa.string())),
    pa.field("worker", pa.string()),
    pa.field("date", pa.string(), nullable=False),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
])

CALIBRATION_TABLE = "calibration"
CALIBRATION_SCHEMA = pa.schema([                           # streams.drift.tracker.CalibrationTracker.snapshot
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("date", pa.string(), nullable=False),
    pa.field("judge", pa.string(), nullable=False),
    pa.field("policy_id", pa.string(), nullable=False),
    pa.field("window_n", pa.int64()),
    pa.field("ece", pa.float64()),
    pa.field("brier", pa.float64()),
    pa.field("bins_json", pa.string()),                     # [[lo, hi, count, mean_p, observed|null], ...]
    pa.field("labels_total", pa.int64()),
    pa.field("misjudged_total", pa.int64()),
    pa.field("clusters_json", pa.string()),                 # [{cluster, size, top_terms, example_trace_ids}]
])

TABLES[DRIFT_EVENTS_TABLE] = (DRIFT_EVENTS_SCHEMA, ["date"])
TABLES[CALIBRATION_TABLE] = (CALIBRATION_SCHEMA, ["date"])

# The audit trail's Delta mirror (issues 14, 16, 17): one row per audit.log entry, written after the entry is on
# the topic (the topic is the record; `alignloop audit verify` checks the chain in both and that they agree).
AUDIT_TABLE = "audit"
AUDIT_SCHEMA = pa.schema([
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("actor", pa.string(), nullable=False),
    pa.field("action", pa.string(), nullable=False),
    pa.field("subject", pa.string(), nullable=False),
    pa.field("details_json", pa.string(), nullable=False),
    pa.field("prev_hash", pa.string(), nullable=False),
    pa.field("hash", pa.string(), nullable=False),
    pa.field("src_offset", pa.int64(), nullable=False),
    pa.field("date", pa.string(), nullable=False),
])
TABLES[AUDIT_TABLE] = (AUDIT_SCHEMA, [])

# Rollout decisions (issue 14): one row per record on rollout.decisions (start, step, promote, rollback, hold,
# pause, resume), landed idempotently by source offset; decision_id = <rollout_id>:<flag_version>:<action>.
ROLLOUTS_TABLE = "rollouts"
ROLLOUTS_SCHEMA = pa.schema([
    pa.field("decision_id", pa.string(), nullable=False),
    pa.field("rollout_id", pa.string(), nullable=False),
    pa.field("agent_id", pa.string(), nullable=False),
    pa.field("action", pa.string(), nullable=False),
    pa.field("actor", pa.string(), nullable=False),
    pa.field("reason", pa.string()),
    pa.field("flag_version", pa.int64(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("weight_before", pa.int32()),
    pa.field("weight_after", pa.int32()),
    pa.field("adapter_id", pa.string()),
    pa.field("adapter_hash", pa.string()),
    pa.field("baseline_policy_id", pa.string()),
    pa.field("candidate_policy_id", pa.string()),
    pa.field("baseline_conversations", pa.int64()),
    pa.field("candidate_conversations", pa.int64()),
    pa.field("counts_json", pa.string()),
    pa.field("metrics_json", pa.string()),                  # [MetricResult, ...]
    pa.field("steps_json", pa.string()),
    pa.field("record_json", pa.string()),                   # the whole RolloutDecisionRecord
    pa.field("decided_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("date", pa.string(), nullable=False),
    pa.field("src_topic", pa.string()),
    pa.field("src_partition", pa.int32()),
    pa.field("src_offset", pa.int64()),
])
TABLES[ROLLOUTS_TABLE] = (ROLLOUTS_SCHEMA, ["date"])

# Erasure (issue 17): every row of conversation data carries ``conv_key`` = HMAC-SHA256(erasure key,
# conversation_id), a pseudonymous key, so an erasure deletes by it and no identifier is written into the Delta log.
# ``connectors.delta_sink.table_sink`` stamps it on every row of a table that has the column.
CONV_KEY = "conv_key"
TRACES_SCHEMA = TRACES_SCHEMA.append(pa.field(CONV_KEY, pa.string()))
SFT_EXAMPLES_SCHEMA = SFT_EXAMPLES_SCHEMA.append(pa.field(CONV_KEY, pa.string()))
PREFERENCES_SCHEMA = PREFERENCES_SCHEMA.append(pa.field(CONV_KEY, pa.string()))
LABELS_SCHEMA = LABELS_SCHEMA.append(pa.field(CONV_KEY, pa.string()))
for _name, _schema in ((TRACES_TABLE, TRACES_SCHEMA), (SFT_EXAMPLES_TABLE, SFT_EXAMPLES_SCHEMA),
                       (PREFERENCES_TABLE, PREFERENCES_SCHEMA), (LABELS_TABLE, LABELS_SCHEMA)):
    TABLES[_name] = (_schema, TABLES[_name][1])

# Replay namespaces (issue 17): <lake>/replay/<name>/<table>. A replay lands `traces` (and, curated, `sft_examples`
# and `preferences`) with the live schemas, plus these two of its own. No raw bytes: a value is kept as its hash.
REPLAY_RECORDS_TABLE = "records"
REPLAY_RECORDS_SCHEMA = pa.schema([                        # one row per record read: the replay's ledger
    pa.field("topic", pa.string(), nullable=False),
    pa.field("partition", pa.int32(), nullable=False),
    pa.field("offset", pa.int64(), nullable=False),
    pa.field("timestamp_ms", pa.int64()),
    pa.field("value_sha256", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),        # landed | invalid | filtered (outside the time window)
    pa.field("trace_id", pa.string()),
    pa.field("conversation_id", pa.string()),
    pa.field("reused", pa.bool_()),                         # landed from the live row's scrubbed text (same
])                                                          # scrub version, same bytes); False: scrubbed again
REPLAY_DLQ_TABLE = "dlq"
REPLAY_DLQ_SCHEMA = pa.schema([                            # invalid records of a replay, with their reasons
    pa.field("topic", pa.string(), nullable=False),
    pa.field("partition", pa.int32(), nullable=False),
    pa.field("offset", pa.int64(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("error", pa.string()),                         # strict-scrubbed: validation errors may quote input
    pa.field("size_bytes", pa.int64()),
    pa.field("value_sha256", pa.string(), nullable=False),
    pa.field("failed_at", pa.timestamp("us", tz="UTC"), nullable=False),
])
# name -> (schema, partition columns) of every table a replay namespace may hold
REPLAY_TABLES: dict[str, tuple[pa.Schema, list[str]]] = {
    TRACES_TABLE: TABLES[TRACES_TABLE], SFT_EXAMPLES_TABLE: TABLES[SFT_EXAMPLES_TABLE],
    PREFERENCES_TABLE: TABLES[PREFERENCES_TABLE],
    REPLAY_RECORDS_TABLE: (REPLAY_RECORDS_SCHEMA, []), REPLAY_DLQ_TABLE: (REPLAY_DLQ_SCHEMA, []),
}

# Lineage (issue 17): which conversations every built dataset includes, one row per (dataset, conversation key),
# written by the trainer next to its registry row; `alignloop lineage conversation` joins on it.
DATASET_CONVERSATIONS_TABLE = "dataset_conversations"
DATASET_CONVERSATIONS_SCHEMA = pa.schema([
    pa.field("dataset_hash", pa.string(), nullable=False),  # the dataset manifest's content_hash
    pa.field("dataset_table", pa.string(), nullable=False),
    pa.field("dataset_version", pa.int64()),
    pa.field("adapter_id", pa.string()),                    # None: a dataset built without training
    pa.field("kind", pa.string()),
    pa.field("split", pa.string(), nullable=False),
    pa.field(CONV_KEY, pa.string(), nullable=False),
    pa.field("rows", pa.int64(), nullable=False),          # the conversation's rows in that split
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
])
TABLES[DATASET_CONVERSATIONS_TABLE] = (DATASET_CONVERSATIONS_SCHEMA, [])

# Human-label agreement snapshots (issue 16): one row per queue per snapshot, written by `alignloop ui`; the newest
# row per queue is the export gate's input (connectors.agreement_table.latest_agreement).
AGREEMENT_TABLE = "agreement"
AGREEMENT_SCHEMA = pa.schema([
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("date", pa.string(), nullable=False),
    pa.field("queue", pa.string(), nullable=False),
    pa.field("kind", pa.string()),
    pa.field("labels", pa.int64()),
    pa.field("items", pa.int64()),
    pa.field("min_alpha", pa.float64()),                    # lowest alpha over the dimensions (None: undefined)
    pa.field("alpha_json", pa.string()),                    # {dimension: alpha | null}
    pa.field("summary_json", pa.string()),                  # kappa per pair, self-consistency, position bias, ...
])
TABLES[AGREEMENT_TABLE] = (AGREEMENT_SCHEMA, ["date"])
