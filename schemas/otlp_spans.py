"""The raw-zone record of ``ingest.otlp_spans``: what the OTLP receiver has acknowledged, before turns are built.

Two kinds, keyed by the OTel trace id (so a turn's spans share a partition):

- ``spans``: the spans of one OTel trace from one OTLP request, decoded (the receiver's ``Span`` as JSON). The
  receiver answers 200 only once Kafka has acknowledged these records.
- ``done``: written by the turn assembler into the same partition, in the same Kafka transaction that published
  the trace to ``agent.traces``: the trace is published; ``span_ids`` were in it. An assembler re-consuming the
  partition after a crash drops those spans instead of publishing the turn again.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


OTLP_SPANS_SCHEMA_VERSION = 1


class OtlpSpanRecord(BaseModel):
    schema_version: int = Field(OTLP_SPANS_SCHEMA_VERSION, ge=1, le=OTLP_SPANS_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    kind: Literal["spans", "done"]
    trace_id: str = Field(description="OTel trace id, 32 hex chars (also the record key).")
    spans: list[dict[str, Any]] = Field(default_factory=list,
                                        description="kind=spans: the decoded spans (trace_id, span_id, "
                                                    "parent_span_id, name, times, attributes, events, status, "
                                                    "resource, scope).")
    span_ids: list[str] = Field(default_factory=list, description="kind=done: the spans the published turn held.")
