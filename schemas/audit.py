"""The audit trail (``audit.log``, one partition, kept forever): append-only and hash-chained.

Each entry carries the hash of the one before (``prev_hash``) and its own ``hash`` over its canonical JSON, so
removing, reordering or editing any entry breaks the chain at that point (``verify_chain``).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field

AUDIT_SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64


class AuditEntry(BaseModel):
    """One thing someone (a person or a process) did: a promotion, a rollback, an erasure, a config change."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    schema_version: int = Field(AUDIT_SCHEMA_VERSION, ge=1, le=AUDIT_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    seq: int = Field(..., ge=0, description="Position in the chain: 0 for the first entry, then +1 each.")
    ts: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    actor: str = Field(..., min_length=1, description="Who: a user name or a process (e.g. rollout-controller).")
    action: str = Field(..., min_length=1, description="What, e.g. rollout.promote, rollout.rollback, erase.")
    subject: str = Field(..., min_length=1, description="On what, e.g. agent-7, adapter sft@1.2, conversation c-9.")
    details: dict[str, Any] = Field(default_factory=dict, description="Inputs and outcome (JSON).")
    prev_hash: str = Field(..., pattern=r"^[0-9a-f]{64}$", description="The previous entry's hash (zeros first).")
    hash: str = Field(..., pattern=r"^[0-9a-f]{64}$", description="sha256 of this entry's canonical JSON "
                                                                  "without this field.")

    @staticmethod
    def digest(fields: dict[str, Any]) -> str:
        body = {k: v for k, v in fields.items() if k != "hash"}
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                         allow_nan=False).encode()).hexdigest()

    @classmethod
    def after(cls, previous: "AuditEntry | None", *, actor: str, action: str, subject: str,
              details: dict[str, Any] | None = None, ts: datetime | None = None) -> "AuditEntry":
        """The entry that follows ``previous`` (None: the first entry of a chain)."""
        draft = cls(seq=0 if previous is None else previous.seq + 1,
                    prev_hash=GENESIS_HASH if previous is None else previous.hash, actor=actor, action=action,
                    subject=subject, details=details or {}, ts=ts or datetime.now(timezone.utc), hash=GENESIS_HASH)
        return draft.model_copy(update={"hash": cls.digest(_fields(draft))})

    def intact(self) -> bool:
        """Whether ``hash`` is the hash of this entry's content."""
        return self.hash == self.digest(_fields(self))


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude={"hash"})


def verify_chain(entries: Iterable[AuditEntry]) -> int | None:
    """The ``seq`` of the first entry that breaks the chain (edited, missing, reordered), or None when intact."""
    prev: AuditEntry | None = None
    for e in entries:
        expected_seq = 0 if prev is None else prev.seq + 1
        expected_prev = GENESIS_HASH if prev is None else prev.hash
        if e.seq != expected_seq or e.prev_hash != expected_prev or not e.intact():
            return e.seq
        prev = e
    return None
