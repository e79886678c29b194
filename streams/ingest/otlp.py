"""OTLP/HTTP trace payloads (protobuf or JSON) -> flat ``Span`` views, with per-span validation.

Decoding uses the ``opentelemetry-proto`` messages. OTLP/JSON differs from protobuf's canonical JSON mapping in
one way that matters here: trace and span ids are hex strings, not base64 (OTLP spec, "JSON Protobuf Encoding"),
so they are rewritten to base64 before ``json_format.ParseDict``.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)

MAX_ATTRIBUTE_CHARS = 1_000_000  # one attribute value larger than this: the span is rejected as too_large
MAX_ATTRIBUTES = 512             # more attributes on one span: rejected as over_limit
MAX_EVENTS = 1024


class PayloadError(ValueError):
    """The request body is not an OTLP ExportTraceServiceRequest (answered 400, nothing accepted)."""


@dataclass
class Span:
    trace_id: str                 # 32 hex chars
    span_id: str                  # 16 hex chars
    parent_id: str                # "" for a root span
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)  # (name, time_ns, attributes)
    status_code: int = 0          # 0 unset, 1 ok, 2 error
    status_message: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # parsed messages, per span

    @property
    def genai(self) -> bool:
        return any(k.startswith("gen_ai.") for k in self.attributes) or any(
            n.startswith("gen_ai.") for n, _, _ in self.events)

    @property
    def operation(self) -> str:
        op = self.attributes.get("gen_ai.operation.name")
        if isinstance(op, str) and op:
            return op
        if not self.genai:
            return ""
        first = self.name.split(" ", 1)[0]
        if first in ("chat", "text_completion", "generate_content", "execute_tool", "invoke_agent", "embeddings"):
            return first
        # instrumentations that predate gen_ai.operation.name (OpenLLMetry: "openai.chat"): a span naming a
        # model is a model call
        return "chat" if "gen_ai.request.model" in self.attributes or "gen_ai.response.model" in self.attributes \
            else first

    def to_dict(self) -> dict[str, Any]:
        """The span as a JSON-ready dict (``from_dict`` reads it back)."""
        return {"trace_id": self.trace_id, "span_id": self.span_id, "parent_span_id": self.parent_id,
                "name": self.name, "start_time_unix_nano": self.start_ns,
                "end_time_unix_nano": self.end_ns, "attributes": self.attributes,
                "events": [{"name": n, "time_unix_nano": t, "attributes": a} for n, t, a in self.events],
                "status": {"code": self.status_code, "message": self.status_message},
                "resource": self.resource, "scope": self.scope}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Span":
        st = d.get("status") or {}
        return cls(trace_id=d["trace_id"], span_id=d["span_id"], parent_id=d.get("parent_span_id", ""),
                   name=d.get("name", ""), start_ns=int(d.get("start_time_unix_nano", 0)),
                   end_ns=int(d.get("end_time_unix_nano", 0)), attributes=d.get("attributes") or {},
                   events=[(e.get("name", ""), int(e.get("time_unix_nano", 0)), e.get("attributes") or {})
                           for e in d.get("events") or []],
                   status_code=int(st.get("code", 0)), status_message=st.get("message", ""),
                   resource=d.get("resource") or {}, scope=d.get("scope", ""))

    def to_json(self) -> bytes:
        """The span as JSON (what a dead letter keeps of it)."""
        return json.dumps(self.to_dict(), default=str).encode()


@dataclass
class Rejected:
    span: Span
    reason: str   # a schemas.dlq DeadLetterReason
    error: str


def any_value(v: Any) -> Any:
    """A protobuf AnyValue as a Python value."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def _hex_ids_to_b64(obj: Any) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id") \
                    and isinstance(v, str):
                try:
                    v = base64.b64encode(bytes.fromhex(v)).decode()
                except ValueError:
                    raise PayloadError(f"{k} {v[:40]!r} is not hex (OTLP/JSON ids are hex strings)") from None
            out[k] = _hex_ids_to_b64(v)
        return out
    if isinstance(obj, list):
        return [_hex_ids_to_b64(x) for x in obj]
    return obj


def decode_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """The request in ``body``; a PayloadError (one line) when it is not one."""
    req = ExportTraceServiceRequest()
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PayloadError("body must be a JSON object (an ExportTraceServiceRequest)")
        try:
            json_format.ParseDict(_hex_ids_to_b64(data), req, ignore_unknown_fields=True)
        except (json_format.ParseError, RecursionError) as exc:
            raise PayloadError(f"not an ExportTraceServiceRequest: {str(exc)[:300]}") from None
        return req
    if ctype == "application/x-protobuf":
        try:
            req.ParseFromString(body)
        except (DecodeError, RecursionError) as exc:
            raise PayloadError(f"protobuf body does not decode as ExportTraceServiceRequest: {exc}") from None
        return req
    raise PayloadError(f"unsupported Content-Type {content_type!r}: send application/x-protobuf or application/json")


def spans_of(req: ExportTraceServiceRequest) -> tuple[list[Span], list[Rejected]]:
    """Every span of the request as a ``Span``; those that fail the per-span checks are returned as rejected."""
    ok: list[Span] = []
    bad: list[Rejected] = []
    for rs in req.resource_spans:
        resource = _attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                span = Span(trace_id=s.trace_id.hex(), span_id=s.span_id.hex(), parent_id=s.parent_span_id.hex(),
                            name=s.name, start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                            attributes=_attrs(s.attributes[:MAX_ATTRIBUTES + 1]),
                            events=[(e.name, e.time_unix_nano, _attrs(e.attributes)) for e in s.events[:MAX_EVENTS]],
                            status_code=int(s.status.code), status_message=s.status.message, resource=resource,
                            scope=ss.scope.name)
                problem = check_span(span, n_attributes=len(s.attributes), n_events=len(s.events))
                if problem:
                    bad.append(Rejected(span, *problem))
                else:
                    ok.append(span)
    return ok, bad


def check_span(span: Span, *, n_attributes: int, n_events: int) -> tuple[str, str] | None:
    """(reason, error) when a span cannot be taken, else None."""
    if len(span.trace_id) != 32 or span.trace_id == "0" * 32:
        return "validation_error", f"trace_id must be 16 non-zero bytes, got {len(span.trace_id) // 2}"
    if len(span.span_id) != 16 or span.span_id == "0" * 16:
        return "validation_error", f"span_id must be 8 non-zero bytes, got {len(span.span_id) // 2}"
    if span.parent_id and len(span.parent_id) != 16:
        return "validation_error", f"parent_span_id must be empty or 8 bytes, got {len(span.parent_id) // 2}"
    if span.end_ns < span.start_ns:
        return "validation_error", "end_time_unix_nano is before start_time_unix_nano"
    if n_attributes > MAX_ATTRIBUTES or n_events > MAX_EVENTS:
        return "over_limit", f"{n_attributes} attributes / {n_events} events (limits {MAX_ATTRIBUTES} / {MAX_EVENTS})"
    for k, v in span.attributes.items():
        if isinstance(v, str) and len(v) > MAX_ATTRIBUTE_CHARS:
            return "too_large", f"attribute {k} holds {len(v)} chars (limit {MAX_ATTRIBUTE_CHARS})"
    return None


def response(rejected: int, message: str, *, as_json: bool) -> tuple[bytes, str]:
    """The ExportTraceServiceResponse body (partial_success set only when something was rejected)."""
    resp = ExportTraceServiceResponse()
    if rejected:
        resp.partial_success.rejected_spans = rejected
        resp.partial_success.error_message = message[:2000]
    if as_json:
        return json_format.MessageToJson(resp).encode(), "application/json"
    return resp.SerializeToString(), "application/x-protobuf"


def status_body(message: str, *, as_json: bool) -> tuple[bytes, str]:
    """A google.rpc.Status body for a failed request (OTLP/HTTP: 4xx/5xx carry a Status)."""
    from google.rpc.status_pb2 import Status

    st = Status(code=3, message=message[:2000])  # 3 = INVALID_ARGUMENT
    if as_json:
        return json_format.MessageToJson(st).encode(), "application/json"
    return st.SerializeToString(), "application/x-protobuf"
