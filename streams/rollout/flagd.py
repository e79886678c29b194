"""Export rollout flags as a flagd flag-definition file (https://flagd.dev/schema/v0/flags.json).

Each agent becomes one object-valued flag keyed by its agent id: variants ``baseline`` and ``candidate`` carry
the policy id, adapter id and adapter hash; targeting is ``fractional`` with no bucketing expression, so flagd
buckets on ``flagKey + targetingKey`` (the conversation id is the targeting key) exactly as
``streams.rollout.bucketing.assign`` does. The candidate comes first in the distribution (monotonic ramps).
An evaluation without a targeting key gets ``defaultVariant``, the baseline, as alignloop does.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from schemas.rollout import RolloutFlag, RolloutVariant
from streams.rollout.bucketing import distribution

FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"


def _variant_value(v: RolloutVariant) -> dict[str, Any]:
    return {"policy_id": v.policy_id, "adapter_id": v.adapter_id or "", "adapter_hash": v.adapter_hash or ""}


def flag_definition(flag: RolloutFlag) -> dict[str, Any]:
    """One flagd flag for ``flag``; `metadata` records where it came from (flagd passes it to clients)."""
    variants = {"baseline": _variant_value(flag.baseline)}
    out: dict[str, Any] = {"state": "ENABLED", "variants": variants, "defaultVariant": "baseline"}
    if flag.candidate is not None:
        variants["candidate"] = _variant_value(flag.candidate)
        out["targeting"] = {"fractional": [[name, weight] for name, weight in distribution(flag)]}
    out["metadata"] = {"rolloutId": flag.rollout_id or "", "version": flag.version, "stage": flag.stage}
    return out


def export_flagd(flags: Iterable[RolloutFlag]) -> dict[str, Any]:
    """The flag-definition document for ``flags`` (one per agent, sorted by agent id)."""
    ordered = sorted(flags, key=lambda f: f.agent_id)
    keys = [f.agent_id for f in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError("export_flagd takes one flag per agent (fold records with flags.latest_by_agent first)")
    return {"$schema": FLAGD_SCHEMA, "flags": {f.flag_key: flag_definition(f) for f in ordered}}


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
