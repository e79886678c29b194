"""The drift snapshot's contract: plain JSON, versioned, validated by these models before anything uses it.

Snapshots come back from a Kafka topic (``drift.state``) that anything with write access can publish to, so a
record is data to check, never code to run (it used to be a pickle). Every number is bounded (a counter of
2**64-1 is refused, not overflowed at the next checkpoint), every list has a cap, every float is finite; the
river detectors' state is checked against a fresh detector (``detector_state.py``). A snapshot that fails is
logged, counted (``alignloop_drift_state_invalid_total{reason}``) and skipped; the monitors warm up instead.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 2  # 1 was the pickle
MAX_INT = 2**63 - 1

Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Offset = Annotated[int, Field(ge=-1, le=MAX_INT)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Magnitude = Annotated[float, Field(allow_inf_nan=False, ge=-1e300, le=1e300)]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Ident = Annotated[str, Field(max_length=1024)]  # ids, names; traces cap their ids at 256
Snippet = Annotated[str, Field(max_length=4096)]
Ids = Annotated[list[Ident], Field(max_length=50)]
Vector = Annotated[list[Finite], Field(max_length=4096)]


class OtherConfig(ValueError):
    """The snapshot is valid but was written under another config: not an attack, still not usable."""


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StatsState(_Data):
    n: Count
    mean: Finite
    m2: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class BlockState(_Data):
    first_ts: datetime
    last_ts: datetime
    mean: Magnitude
    z: Magnitude
    trace_ids: Ids


class MonitorState(_Data):
    signal: Ident
    policy_id: Ident
    one_sided: bool
    detector: dict[str, Any]  # checked against a fresh detector of the configured kind
    drift_detected: bool
    alarms: Count
    rejected: Count = 0
    errors: Count = 0
    open_sum: Magnitude
    open_n: Count
    open_ids: Ids
    open_first_ts: datetime | None
    trace_stats: StatsState
    block_stats: StatsState
    ref_mean: Magnitude | None
    ref_std: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    recent: Annotated[list[BlockState], Field(max_length=400)]
    blocks: Count
    last_mean: Magnitude | None
    last_z: Magnitude

    @model_validator(mode="after")
    def _reference(self) -> "MonitorState":
        if self.ref_mean is not None and self.ref_std <= 0:
            raise ValueError("a learned reference needs a positive std")  # the next z-score divides by it
        return self


class CentroidState(_Data):
    ref_sum: Vector
    ref_n: Count
    reference: Vector | None


class EmbeddingState(_Data):
    policy_id: Ident
    field: Literal["prompt", "response"]
    dist: CentroidState
    total: Vector
    n: Count
    first_ts: datetime | None
    ids: Ids


class SourceOffset(_Data):
    topic: Ident
    partition: Count
    offset: Offset


class BankState(_Data):
    config: dict[str, Any]  # must equal the running config, or the snapshot is another monitor's
    monitors: list[MonitorState]
    offsets: list[SourceOffset]
    seen: Count
    emb: list[EmbeddingState]


class StoreState(_Data):
    size: Count
    evicted: Count
    judge_sets: list[list[Ident]]
    # (trace_id, policy_id, index into judge_sets, base64 little-endian float32 pass probabilities, snippet)
    items: list[tuple[Ident, Ident, Count, Annotated[str, Field(max_length=4096)], Snippet]]


class WindowState(_Data):
    judge: Ident
    policy_id: Ident
    pairs: list[tuple[Prob, Annotated[int, Field(ge=0, le=1)]]]
    misjudged: list[tuple[Ident, Snippet]]
    labels: Count
    wrong: Count


class TrackerState(_Data):
    config: dict[str, Any]
    store: StoreState
    windows: list[WindowState]
    since_snapshot: Count
    matched: Count
    unmatched: Count


class TriggerEvents(_Data):
    policy_id: Ident
    events: list[tuple[Finite, dict[str, Any]]]  # (unix time, DriftEvent as JSON: validated by its model)


class TriggerState(_Data):
    events: list[TriggerEvents]
    labels: dict[Ident, Count]
    last_request: dict[Ident, Finite]


class LabelOffset(_Data):
    partition: Count
    offset: Offset


class DriftSnapshot(_Data):
    schema_version: Literal[2]
    bank: BankState
    tracker: TrackerState
    trigger: TriggerState
    label_offsets: list[LabelOffset]
    erase_offsets: list[LabelOffset] = []  # positions on drift.erase: the erasure commands already applied


class DriftErase(_Data):
    """An erasure command on ``drift.erase``: every monitor drops the traces whose keyed ids
    (``ErasureKeys.trace``: HMAC of the trace id under the erasure key) are listed. No id or text travels."""

    schema_version: Literal[1] = 1
    erasure_id: Ident
    trace_keys: Annotated[list[Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]], Field(max_length=1_000_000)]

