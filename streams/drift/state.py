"""Detector state on local disk: one versioned pickle per worker, written atomically.

Why a local file and not a Faust table: monitors are keyed per (policy_id, signal), not per Kafka partition,
because partitions carry exchangeable traffic (keyed by conversation) and per-partition monitors would see a
quarter of the traffic each and detect four times later. A per-worker snapshot restores every monitor on
restart; a lost or unreadable file costs one warm-up (during which no alarm can fire), never a false alarm.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("alignloop.drift")


class StateFile:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def save(self, blob: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)  # readers see the old or the new snapshot, never half of one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
