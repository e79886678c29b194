"""The current flags from a stream of `RolloutFlag` records: latest version per agent, versions never go back."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from schemas.rollout import RolloutFlag


class FlagError(ValueError):
    """A flag record that cannot be applied; the message says which agent/record and why."""


def parse_flag(record: Mapping[str, Any] | str | bytes) -> RolloutFlag:
    """Validate one record (a dict or JSON text); raises `FlagError` with a one-line reason."""
    try:
        if isinstance(record, (str, bytes)):
            return RolloutFlag.model_validate_json(record)
        return RolloutFlag.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise FlagError(f"invalid RolloutFlag ({where}): {first['msg']}") from None


def apply(current: dict[str, RolloutFlag], flag: RolloutFlag) -> bool:
    """Fold ``flag`` into ``current`` (agent id -> flag). Returns False for a replay of the version in force.

    A version older than the one in force is an error (agents must never see a flag go backwards); the same
    version with different content is an error too (two writers).
    """
    held = current.get(flag.agent_id)
    if held is not None:
        if flag.version < held.version:
            raise FlagError(f"agent {flag.agent_id!r}: version {flag.version} is older than {held.version}")
        if flag.version == held.version:
            if flag != held:
                raise FlagError(f"agent {flag.agent_id!r}: two different flags with version {flag.version}")
            return False
    current[flag.agent_id] = flag
    return True


def latest_by_agent(records: Iterable[RolloutFlag]) -> dict[str, RolloutFlag]:
    current: dict[str, RolloutFlag] = {}
    for flag in records:
        apply(current, flag)
    return current


def fold_records(values: Iterable[bytes | str | None]) -> tuple[dict[str, RolloutFlag], list[str]]:
    """Current flags from raw topic values in offset order, and one reason per record that was skipped.

    Bad records (not a valid flag, a version going backwards, a tombstone) never stop the fold: the last good
    flag of that agent stays in force, as a client following the topic must keep serving it.
    """
    current: dict[str, RolloutFlag] = {}
    skipped: list[str] = []
    for i, value in enumerate(values):
        if value is None:
            skipped.append(f"record {i}: tombstone (flags are never deleted; kept the last good flag)")
            continue
        try:
            apply(current, parse_flag(value))
        except FlagError as exc:
            skipped.append(f"record {i}: {exc}")
    return current, skipped
