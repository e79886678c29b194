"""The policy file (configs/policy.yaml): disallowed behaviours, allowed tools, argument constraints, graph ops.

Loaded and validated once; every regex is compiled at load so a typo fails at startup with a one-line error,
never per trace.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.settings import ConfigError, load_yaml_config


class Behaviour(BaseModel):
    """A disallowed behaviour: trigger words gate the (costly) regexes over request and response."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    severity: Literal["high", "medium"] = "high"
    triggers: list[str] = Field(..., min_length=1, description="Lower-case words; patterns run only if one appears.")
    request: list[str] = Field(default_factory=list, description="Regexes: the user asks for this behaviour.")
    response: list[str] = Field(default_factory=list, description="Regexes: the answer carries it out.")
    defused_by: list[str] = Field(default_factory=list, description=(
        "Regexes ending in $: a response match is not counted when the text just before it (same sentence, up "
        "to 80 characters) matches one, e.g. a warning ('never run ...')."))

    @model_validator(mode="after")
    def _some_pattern(self) -> "Behaviour":
        if not self.request and not self.response:
            raise ValueError("needs at least one request or response pattern")
        for p in self.request + self.response + self.defused_by:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"bad regex {p!r}: {exc}") from None
        return self


class ArgRule(BaseModel):
    """A constraint on one argument of a tool; ``arg`` may list aliases (cmd/command)."""

    model_config = ConfigDict(extra="forbid")
    arg: list[str]
    deny: list[str] = Field(default_factory=list, description="Regexes the value must not match.")
    allow_prefix: list[str] = Field(default_factory=list, description="If set, string values must start with one.")
    max_items: int | None = Field(None, ge=1, description="Max list items (or comma-separated entries).")
    max_value: float | None = Field(None, description="Max numeric value.")

    @field_validator("arg", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("deny")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"bad regex {p!r}: {exc}") from None
        return v


class ToolsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_allowed: list[str] = Field(..., description="Tool names (or 'prefix.*') any agent may call.")
    agents: dict[str, list[str]] = Field(default_factory=dict, description="agent_id -> its own allowlist.")
    constraints: dict[str, list[ArgRule]] = Field(default_factory=dict, description="tool -> argument rules.")


class GraphPolicy(BaseModel):
    """Graph/memory operations: tool calls named ``<tool_prefix><op>`` and ops listed in trace metadata."""

    model_config = ConfigDict(extra="forbid")
    tool_prefix: str = "graph."
    metadata_key: str = "graph_ops"
    allowed_operations: list[str] = Field(default_factory=list)


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = "1"
    disallowed: dict[str, Behaviour] = Field(default_factory=dict)
    tools: ToolsPolicy
    graph: GraphPolicy = Field(default_factory=GraphPolicy)


def load_policy(path: str | Path) -> PolicyConfig:
    """Parse and validate a policy file; any problem is a one-line ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"policy file {p} not found; set ALIGNLOOP_POLICY_PATH or create it (see docs/judges.md)")
    return load_yaml_config(PolicyConfig, p, "policy file", "fix the file or ALIGNLOOP_POLICY_PATH")
