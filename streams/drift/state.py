"""Detector state: snapshots in a compacted Kafka changelog (``drift.state``), with an atomically written local
file as the fallback.

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
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger("alignloop.drift")


class Candidate(NamedTuple):
    """One stored snapshot, newest first in ``candidates()``: ``body`` is None when even its frame was bad."""

    origin: str
    body: bytes | None
    error: str = ""
    seq: int = 0  # the save counter of its frame (Kafka store only)


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

    def candidates(self) -> list[Candidate]:
        blob = self.load()
        return [] if blob is None else [Candidate(f"file {self.path}", blob)]

    def chose(self, c: Candidate) -> None:
        pass


class KafkaStateStore:
    """Detector snapshots in a compacted Kafka topic (a changelog), keyed by the monitor's app id, so a worker
    restarted on any host restores them. The local ``StateFile`` stays as a fallback for when the cluster is
    unreachable at save or restore time; the newer of the two snapshots wins.

    The interface is synchronous (``save``/``load``) like ``StateFile``: each call runs its own short-lived
    aiokafka client on a private event loop in a helper thread, so it is safe to call from inside the worker's
    loop (``load`` at start-up) or from ``asyncio.to_thread`` (``save``).
    """

    HEADER = 8  # big-endian save counter in front of each snapshot: the newer of Kafka and file wins
    MAX_SEQ = 2**62  # a larger counter is a forged frame (it would overflow the header at the next save)
    KEEP = 8  # snapshots of this key kept while reading the topic: forged ones must not crowd out ours

    def __init__(self, settings: "Settings", key: str, fallback: StateFile, timeout_s: float = 15.0):
        from schemas.topics import DRIFT_STATE

        self.settings = settings
        self.topic = settings.topic(DRIFT_STATE)
        self.key = key.encode()
        self.fallback = fallback
        self.path = f"kafka:{self.topic}/{key} (fallback {fallback.path})"
        self.timeout_s = timeout_s
        self._seq = 0

    def _call(self, coro_fn: Any) -> Any:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, asyncio.wait_for(coro_fn(), self.timeout_s)).result()

    def save(self, blob: bytes) -> None:
        self._seq = min(self._seq + 1, self.MAX_SEQ)
        framed = self._seq.to_bytes(self.HEADER, "big") + blob
        self.fallback.save(framed)

        async def send() -> None:
            from connectors.kafka import producer

            async with producer(self.settings) as prod:
                await prod.send_and_wait(self.topic, value=framed, key=self.key)

        try:
            self._call(send)
        except Exception as exc:  # the file has it; the next save retries the changelog
            log.warning("drift state not written to %s (%s); kept in %s", self.topic, exc, self.fallback.path)

    def _remote(self) -> list[bytes]:
        async def latest() -> list[bytes]:
            from connectors.kafka import read_topic

            values: list[bytes] = []
            for m in await read_topic(self.settings, self.topic, timeout_s=5.0):
                if m.key == self.key and m.value is not None:
                    values = [*values[-(self.KEEP - 1):], m.value]  # the last few: one may be forged
            return values

        try:
            return self._call(latest)
        except Exception as exc:
            log.warning("drift state not read from %s (%s); trying %s", self.topic, exc, self.fallback.path)
            return []

    def candidates(self) -> list[Candidate]:
        """Every stored snapshot of this key, newest (highest counter) first; bad frames first of all, so the
        caller counts them. Call ``chose`` with the one that restored, so later saves continue its counter."""
        local = self.fallback.load()
        framed = [(f"kafka {self.topic}@{i}", b) for i, b in enumerate(self._remote())]
        if local is not None:
            framed.append((f"file {self.fallback.path}", local))
        bad, good = [], []
        for origin, b in framed:
            seq = int.from_bytes(b[:self.HEADER], "big") if len(b) > self.HEADER else -1
            if not 0 < seq <= self.MAX_SEQ:
                bad.append(Candidate(origin, None, "bad_header"))
            else:
                good.append(Candidate(origin, b[self.HEADER:], seq=seq))
        good.reverse()  # on equal counters the later record wins (the sort below is stable)
        good.sort(key=lambda c: -c.seq)
        return bad + good

    def chose(self, c: Candidate) -> None:
        if c.seq:
            self._seq = c.seq

    def load(self) -> bytes | None:
        """The newest well-framed snapshot (unvalidated), for tools and tests."""
        good = [c for c in self.candidates() if c.body is not None]
        if good:
            self.chose(good[0])
        return good[0].body if good else None
