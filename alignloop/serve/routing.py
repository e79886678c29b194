"""Which adapter serves a request: the ``model`` field, else the rollout flag of (agent, conversation).

A rollout source is anything with ``variant(agent_id, conversation_id) -> (variant name, RolloutVariant) | None``
— `connectors.rollout_client.RolloutClient` (following ``rollout.flags``) or `StaticRolloutSource` over flags
held in memory (tests, ``--flags FILE``). The assignment is flagd's bucketing, so the server and agents that
embed the SDK put a conversation on the same variant.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.rollout import RolloutFlag, RolloutVariant

AGENT_HEADER = "x-agent-id"
CONVERSATION_HEADER = "x-conversation-id"
BASE_NAMES = ("", "base", "auto")


class RolloutSource(Protocol):
    def variant(self, agent_id: str, conversation_id: str) -> tuple[str, RolloutVariant] | None: ...


class StaticRolloutSource:
    """Flags held in memory (agent id -> flag); assignment by `streams.rollout.bucketing.assign`."""

    def __init__(self, flags: Mapping[str, RolloutFlag]) -> None:
        self.flags = dict(flags)

    def variant(self, agent_id: str, conversation_id: str) -> tuple[str, RolloutVariant] | None:
        from streams.rollout.bucketing import assign

        flag = self.flags.get(agent_id)
        if flag is None:
            return None
        name = assign(flag, conversation_id)
        return name, (flag.candidate if name == "candidate" and flag.candidate is not None else flag.baseline)


@dataclass(frozen=True)
class Route:
    """What the request asked for: an adapter reference (None: the base model) and, when a rollout flag
    decided it, the variant and its policy id (stamped on the response for the trace)."""

    ref: str | None
    variant: str | None = None
    policy_id: str | None = None
    expected_hash: str | None = None
    adapter_id: str | None = None  # where to find the hash's weights when they are not resident yet


def route(model: str | None, headers: Mapping[str, str], source: RolloutSource | None, base_name: str) -> Route:
    """An explicit adapter in ``model`` wins; else (agent, conversation) headers ask the rollout source."""
    ref = (model or "").strip()
    if ref and ref not in BASE_NAMES and ref != base_name:
        return Route(ref)
    agent, conversation = headers.get(AGENT_HEADER), headers.get(CONVERSATION_HEADER)
    if source is not None and agent:
        picked: Any = source.variant(agent, conversation or "")
        if picked is not None:
            name, v = picked
            return Route(v.adapter_hash or v.adapter_id, name, v.policy_id, v.adapter_hash, v.adapter_id)
    return Route(None)
