"""What a rollout client holds, without Kafka: ``FlagBook`` (the flags in force, the version rule, every skipped
record counted by reason) and ``StickyAssignments`` (a conversation keeps its first turn's variant through a ramp).
Used by ``connectors/rollout_client.py``; pure, so tests and simulators drive them directly."""
from __future__ import annotations

import json
import logging
import threading
from collections import Counter, OrderedDict
from typing import Any

from pydantic import ValidationError

from schemas.bucketing import assign
from schemas.rollout import ROLLOUT_SCHEMA_VERSION, RolloutFlag, RolloutVariant, VariantName

log = logging.getLogger("connectors.rollout_client")


class FlagBook:
    """The flags in force (agent id -> flag) and what happened to every record offered. Pure: no Kafka.

    One writer (the follower thread); readers on other threads do single-key reads, atomic under the GIL, and
    take a copy to iterate (``RolloutClient.flags``).
    """

    def __init__(self) -> None:
        self.flags: dict[str, RolloutFlag] = {}
        self.applied = 0
        self.ignored: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()
        self.last_reason: str | None = None

    def offer(self, key: bytes | None, value: bytes | None) -> RolloutFlag | None:
        """Apply one topic record; returns the flag now in force when it changed, else None."""
        if value is None:
            return self._skip(self.ignored, "tombstone", key, "a tombstone does not remove a flag")
        flag, reason = _parse(value)
        if flag is None:
            return self._skip(self.invalid, reason[0], key, reason[1])
        if key is not None and key.decode("utf-8", "replace") != flag.agent_id:
            return self._skip(self.invalid, "key_mismatch", key, f"record key names another agent than "
                                                                  f"{flag.agent_id!r}")
        return self.put(flag)

    def put(self, flag: RolloutFlag) -> RolloutFlag | None:
        held = self.flags.get(flag.agent_id)
        if held is not None and flag.version <= held.version:
            if flag == held:
                return self._skip(self.ignored, "replay", None, "", quiet=True)
            return self._skip(self.ignored, "version_not_higher", flag.agent_id.encode(),
                              f"version {flag.version} is not higher than {held.version} in force")
        self.flags[flag.agent_id] = flag
        self.applied += 1
        return flag

    def _skip(self, counter: Counter[str], reason: str, key: bytes | None, detail: str,
              quiet: bool = False) -> None:
        counter[reason] += 1
        if not quiet:
            agent = key.decode("utf-8", "replace") if key else "?"
            self.last_reason = f"agent {agent!r}: {reason}: {detail}; kept the last good flag"
            log.warning("rollout flag skipped: %s", self.last_reason)
        return None

    def stats(self) -> dict[str, Any]:
        return {"applied": self.applied, "ignored": dict(self.ignored), "invalid": dict(self.invalid),
                "agents": len(self.flags)}


def _parse(value: bytes) -> tuple[RolloutFlag | None, tuple[str, str]]:
    """The flag, or None with (reason, detail). Reasons: not_json, not_an_object, future_schema_version, weights,
    invalid."""
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, ("not_json", f"not JSON ({exc.__class__.__name__})")
    if not isinstance(data, dict):
        return None, ("not_an_object", f"a JSON {type(data).__name__}, not an object")
    sv = data.get("schema_version", ROLLOUT_SCHEMA_VERSION)
    if isinstance(sv, int) and sv > ROLLOUT_SCHEMA_VERSION:
        return None, ("future_schema_version", f"schema_version {sv} is newer than {ROLLOUT_SCHEMA_VERSION}")
    try:
        return RolloutFlag.model_validate(data), ("", "")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        reason = "weights" if "weights" in first["msg"] or where.startswith("weights") else "invalid"
        return None, (reason, f"({where}) {first['msg']}")


def served_by_bucketing(flag: RolloutFlag, conversation_id: str) -> tuple[VariantName, RolloutVariant]:
    if flag.candidate is not None and assign(flag, conversation_id) == "candidate":
        return "candidate", flag.candidate
    return "baseline", flag.baseline


class StickyAssignments:
    """Conversation -> the variant that served its first turn, so a ramp never moves a conversation mid-way.

    flagd's ``fractional`` (which new conversations get, bit for bit) is monotonic for the candidate only: at a
    larger weight some baseline conversations hash into the candidate's buckets. Pinning the first turn's
    variant closes that gap. A pin is dropped, and the conversation re-assigned, when its variant stops serving:
    the candidate's weight fell to 0 or the flag was rolled back (``rollback``, by design), or the variant is no
    longer in the flag at all (``variant_gone``: a new rollout, or a promotion made final). A pinned baseline
    keeps serving its conversation at weight 100 (the conversation drains). Bounded: the least recently served
    conversations are forgotten first.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.moves: Counter[str] = Counter()
        self._pins: OrderedDict[tuple[str, str], RolloutVariant] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pins)

    def serve(self, flag: RolloutFlag, conversation_id: str) -> tuple[VariantName, RolloutVariant]:
        fresh = served_by_bucketing(flag, conversation_id)
        if not conversation_id:
            return fresh
        key = (flag.agent_id, conversation_id)
        with self._lock:
            pinned = self._pins.get(key)
            if pinned is not None:
                name, why = _still_serving(flag, pinned)
                if name is not None:
                    self._pins.move_to_end(key)
                    return name, pinned
                self.moves[why] += 1
            self._pins[key] = fresh[1]
            self._pins.move_to_end(key)
            if len(self._pins) > self.capacity:
                self._pins.popitem(last=False)
        return fresh

    def end(self, agent_id: str, conversation_id: str) -> None:
        with self._lock:
            self._pins.pop((agent_id, conversation_id), None)


def _still_serving(flag: RolloutFlag, pinned: RolloutVariant) -> tuple[VariantName | None, str]:
    if flag.candidate == pinned:
        return ("candidate", "") if flag.candidate_weight > 0 and flag.stage != "rolled_back" else (None, "rollback")
    if flag.baseline == pinned:
        return "baseline", ""
    return None, "rollback" if flag.stage == "rolled_back" else "variant_gone"
