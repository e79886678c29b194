"""The Trace contract: what agents publish to ``agent.traces``.

The canonical layout nests tool calls; the flat layout of the RFT requirement (``selected_tools``, ``tool_args``,
``tool_results``, ``latency`` in seconds, ``flags`` as a mapping) is accepted and normalised on the way in
(``Trace.model_validate`` and ``Trace.model_validate_json``), so agents written against either shape validate.

Numbers are finite everywhere in a trace: ``NaN``, ``Infinity`` and overflowing literals such as ``1e999`` are not
JSON numbers (they would land as ``inf`` or as invalid JSON) and fail validation, in the typed fields and in the
free-form ones (metadata, tool arguments and results, at any depth).
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo,
                      field_validator, model_validator)
from pydantic_core import PydanticSerializationError, to_json

TRACE_SCHEMA_VERSION = 1
# The validation context for JSON this system wrote with ``to_json`` from a validated Trace (a ``traces.judged`` event
# read by the monitor, a ``traces`` row read back by a replay): ``to_json`` writes a non-finite number as null, so
# its free-form values need no non-finite check.
OWN_JSON: dict[str, bool] = {"own_json": True}


class ContextItem(BaseModel):
    """One piece of context the agent saw: a prior turn, a memory, a retrieved document."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field("context", description="user | assistant | system | tool | memory | document | context")
    content: str = Field(..., description="Text of the item (scrubbed downstream of agent.traces).")


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(..., min_length=1, description="Tool name as the agent registered it.")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments the model chose.")
    result: Any = Field(None, description="What the tool returned (any JSON value).")
    error: str | None = Field(None, description="Error message when the call failed.")
    status: Literal["ok", "error", "timeout"] = "ok"
    latency_ms: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _status_from_error(self) -> "ToolCall":
        if self.error and self.status == "ok":
            self.status = "timeout" if "timeout" in self.error.lower() or "timed out" in self.error.lower() else "error"
        return self


class Trace(BaseModel):
    """One agent turn: the request, what the agent did, what it answered."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    schema_version: int = Field(TRACE_SCHEMA_VERSION, ge=1, le=TRACE_SCHEMA_VERSION,
                                description="Contract version; newer ones go to the DLQ.")
    trace_id: str = Field(..., min_length=1, max_length=128)
    conversation_id: str = Field(..., min_length=1, max_length=128)
    agent_id: str = Field("default", min_length=1, max_length=128)
    policy_id: str = Field("base", min_length=1, max_length=256, description="Model/adapter that served this turn.")
    adapter_hash: str | None = Field(None, max_length=128, pattern=r"^[0-9A-Za-z:._-]+$",
                                     description="Content hash of the LoRA adapter that served this turn (None: the "
                                                 "base model); with policy_id it attributes the turn to a rollout arm.")
    timestamp: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    user_message: str
    context: list[ContextItem] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    final_response: str
    latency_ms: float = Field(0.0, ge=0)
    flags: list[str] = Field(default_factory=list, description="Agent-side safety/quality flags.")
    candidates: list[str] = Field(default_factory=list, description="Alternative responses, for preference pairs.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("context", mode="before")
    @classmethod
    def _context_from_text(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [{"role": "context", "content": v}] if v else []
        if isinstance(v, dict):
            where = _non_finite_at(v, "context")
            if where:
                raise ValueError(_non_finite_message(where))
            return [{"role": "memory", "content": json.dumps(v, sort_keys=True)}]
        if isinstance(v, list):
            return [{"role": "context", "content": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("flags", mode="before")
    @classmethod
    def _flags_from_mapping(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return sorted(k if val is True else f"{k}:{val}" for k, val in v.items() if val not in (False, None, ""))
        return v

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)

    @field_validator("tool_calls", "metadata")
    @classmethod
    def _finite_free_form(cls, v: Any, info: ValidationInfo) -> Any:
        """``allow_inf_nan=False`` covers the typed floats; the free-form values (tool arguments and results,
        metadata: typed ``Any``) get one Rust serialisation, a few µs, that shows any non-finite number as a
        NaN/Infinity token. Only when such a token appears (a string may merely contain the word) does the Python
        walk run, to confirm and name the field. JSON this system wrote (``OWN_JSON``) is not checked again.
        Field validators, not a model validator: one at the model level makes pydantic hand every JSON record to
        Python as dicts before validating it (~20 µs a simulator trace, twice per trace in the system)."""
        if not v or info.context is OWN_JSON:
            return v
        free = [{"args": c.args, "result": c.result} for c in v] if info.field_name == "tool_calls" else v
        try:
            blob = to_json(free, inf_nan_mode="constants", fallback=str)
        except PydanticSerializationError as exc:  # from a Python caller: a cycle, or nesting past to_json's depth
            if "Circular reference" in str(exc):
                raise ValueError(f"metadata and tool args/results must be JSON values: {exc}") from None
            blob = b"NaN"  # too deep to serialise: the walk (iterative, no depth limit) decides
        if b"NaN" in blob or b"Infinity" in blob:
            where = _non_finite_at(free, info.field_name)
            if where:
                raise ValueError(_non_finite_message(where))
        return v

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> "Trace":
        """``BaseModel.model_validate``, accepting the flat layout too (``FLAT_KEYS``)."""
        if cls is Trace and isinstance(obj, dict) and not FLAT_KEYS.isdisjoint(obj):
            return _FLAT_LAYOUT.validate_python(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> "Trace":
        """``BaseModel.model_validate_json``, accepting the flat layout too. The canonical layout validates in one
        pass; a record the canonical layout refuses only for flat keys is validated again through the mapping."""
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            if cls is not Trace or not any(e["type"] == "extra_forbidden" and e["loc"][0] in FLAT_KEYS
                                           for e in exc.errors(include_url=False)):
                raise
        return _FLAT_LAYOUT.validate_json(json_data, **kwargs)


# The flat 004 layout's keys, mapped onto the canonical fields by ``_canonical_layout``.
FLAT_KEYS = frozenset({"selected_tools", "tool_args", "tool_results", "latency"})


def _canonical_layout(data: Any) -> Any:
    """Map the flat 004 layout onto the canonical one."""
    if not isinstance(data, dict):
        return data
    flat = FLAT_KEYS & data.keys()
    if not flat:
        return data
    data = dict(data)
    tools = data.pop("selected_tools", None) or []
    args = data.pop("tool_args", None) or []
    results = data.pop("tool_results", None) or []
    if not isinstance(tools, list):
        raise ValueError("selected_tools must be a list of tool names")
    if isinstance(args, dict):  # {tool_name: args}
        args = [args.get(t, {}) for t in tools]
    if isinstance(results, dict):
        results = [results.get(t) for t in tools]
    if not isinstance(args, list) or not isinstance(results, list):
        raise ValueError("tool_args/tool_results must be lists aligned with selected_tools, or dicts by tool")
    if tools and not data.get("tool_calls"):
        data["tool_calls"] = [
            {"name": t, "args": args[i] if i < len(args) and args[i] is not None else {},
             "result": results[i] if i < len(results) else None}
            for i, t in enumerate(tools)
        ]
    if "latency" in data:
        latency = data.pop("latency")
        if "latency_ms" not in data and latency is not None:
            data["latency_ms"] = float(latency) * 1000.0
    return data


# Trace with the flat layout mapped first: what ``Trace.model_validate`` / ``model_validate_json`` fall back to.
_FLAT_LAYOUT: TypeAdapter[Trace] = TypeAdapter(Annotated[Trace, BeforeValidator(_canonical_layout)])


def _non_finite_message(where: str) -> str:
    return f"{where} is not a finite number (NaN, Infinity and overflowing numbers are not JSON); send a number or null"


def _non_finite_at(value: Any, root: str) -> str | None:
    """The dotted path of the first non-finite float inside ``value`` (containers at any depth), or None.
    Iterative, and each entry keeps only (key, parent): deep nesting costs neither recursion nor long paths."""
    stack: list[tuple[Any, Any]] = [((root, None) if root else None, value)]
    while stack:
        at, v = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                keys = []
                while at is not None:
                    keys.append(str(at[0]))
                    at = at[1]
                return ".".join(reversed(keys))
        elif isinstance(v, dict):
            stack.extend(((k, at), x) for k, x in reversed(v.items()))
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(((i, at), x) for i, x in reversed(list(enumerate(v))))
    return None
