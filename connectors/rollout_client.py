"""The agent SDK for rollouts: ``RolloutClient`` follows the compacted ``rollout.flags`` topic in the background and
answers ``variant(agent_id, conversation_id)`` from memory, with flagd's bucketing (``schemas/bucketing.py``).

    client = RolloutClient(settings).start(wait_s=10)
    name, variant = client.variant("support-bot", conversation_id) or ("baseline", None)
    trace = client.stamp(trace, "support-bot", conversation_id)   # policy_id + adapter_hash of the served arm

Guarantees:
- **Versions never go back.** A record whose version is not higher than the one held for its agent is ignored;
  a record that does not validate (not JSON, bad fields, weights that do not sum to 100, a newer
  ``schema_version``, a key that names another agent) is counted by reason and skipped. Either way the last good
  flag stays in force; nothing a producer writes can stop the follower.
- **Tombstones do not delete.** A null value for an agent is ignored (counted ``tombstone``): an agent that lost
  its flag would silently fall back to whatever its code defaults to, and a rollback must be an explicit flag
  with a higher version (``stage: rolled_back``), which the controller writes.
- **Broker down.** The last known flags are kept on disk (atomic: temp file + ``os.replace``) and served at start
  when the broker cannot be reached; the follower keeps retrying in the background. Cached versions count as
  held, so a restarted agent never serves an older flag than it served before.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from pydantic import ValidationError

from connectors.rollout_state import FlagBook, StickyAssignments
from schemas.rollout import RolloutFlag, RolloutVariant, VariantName
from schemas.topics import ROLLOUT
from schemas.trace import Trace

if TYPE_CHECKING:
    from schemas.settings import Settings

__all__ = ["FlagBook", "RolloutClient", "StickyAssignments", "stamp_served"]
log = logging.getLogger(__name__)
T = TypeVar("T", dict, Trace)


def _read_cache(path: Path) -> list[RolloutFlag]:
    try:
        doc = json.loads(path.read_text())
        return [RolloutFlag.model_validate(f) for f in doc["flags"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
        log.warning("rollout flag cache %s unreadable (%s): ignored, following the topic", path,
                    exc.__class__.__name__)
        return []


def _write_cache(path: Path, flags: dict[str, RolloutFlag]) -> None:
    """Atomic: a reader (this agent restarting, or another agent sharing the file) sees the old file or the new
    one, never a torn write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"saved_at": time.time(),
                       "flags": [f.model_dump(mode="json") for f in flags.values()]}).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RolloutClient:
    """Follows ``rollout.flags`` from the beginning with a group-less consumer on a background thread (its own
    event loop); every read is answered from memory. ``on_apply(flag)`` runs on that thread for each flag that
    comes into force (benchmarks time propagation with it)."""

    def __init__(self, settings: "Settings", *, cache_path: Path | None = None,
                 on_apply: Callable[[RolloutFlag], None] | None = None,
                 max_pinned_conversations: int = 100_000) -> None:
        self.settings = settings
        self.topic = settings.topic(ROLLOUT)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.topic)
        self.cache_path = cache_path or Path(settings.home) / "rollout" / f"flags-{safe}.json"
        self.on_apply = on_apply
        self.book = FlagBook()
        self.pins = StickyAssignments(max_pinned_conversations)
        self.caught_up = False      # reached the end offsets seen when the follower connected
        self.cache_loaded = False
        self.last_error: str | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self, wait_s: float | None = None) -> "RolloutClient":
        """Load the disk cache, start following; with ``wait_s``, wait up to that long for ``ready``."""
        if self._thread is None:
            cached = _read_cache(self.cache_path)
            for flag in cached:
                self.book.put(flag)
            if cached:
                self.cache_loaded = True
                self._ready.set()
            self._thread = threading.Thread(target=self._run, name=f"rollout-client:{self.topic}", daemon=True)
            self._thread.start()
        if wait_s:
            self._ready.wait(wait_s)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> "RolloutClient":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ready(self) -> bool:
        """Caught up with the topic as it was at start, or serving the flags loaded from the disk cache."""
        return self._ready.is_set()

    def wait_ready(self, timeout_s: float) -> bool:
        return self._ready.wait(timeout_s)

    @property
    def stats(self) -> dict[str, Any]:
        return {**self.book.stats(), "moves": dict(self.pins.moves), "pinned": len(self.pins), "ready": self.ready,
                "caught_up": self.caught_up, "cache_loaded": self.cache_loaded, "last_error": self.last_error}

    # --- reads: memory only --------------------------------------------------------------------------------
    def flag(self, agent_id: str) -> RolloutFlag | None:
        return self.book.flags.get(agent_id)

    def flags(self) -> dict[str, RolloutFlag]:
        """A copy of every flag in force (agent id -> flag)."""
        return dict(self.book.flags)

    def variant(self, agent_id: str, conversation_id: str) -> tuple[VariantName, RolloutVariant] | None:
        """The arm serving this conversation; None when the agent has no flag. A new conversation gets flagd's
        assignment (bucketing of agent id + conversation id); later turns keep it (``StickyAssignments``)."""
        served = self.served(agent_id, conversation_id)
        return None if served is None else served[:2]

    def served(self, agent_id: str, conversation_id: str
               ) -> tuple[VariantName, RolloutVariant, RolloutFlag] | None:
        """``variant`` plus the flag it came from, read once (the follower may replace it meanwhile)."""
        flag = self.book.flags.get(agent_id)
        return None if flag is None else (*self.pins.serve(flag, conversation_id), flag)

    def end_conversation(self, agent_id: str, conversation_id: str) -> None:
        """Forget a finished conversation's pin (optional: pins are bounded anyway)."""
        self.pins.end(agent_id, conversation_id)

    def stamp(self, trace: T, agent_id: str, conversation_id: str) -> T:
        """``trace`` (a dict or a Trace; a copy) with the served arm's policy_id and adapter_hash, and
        ``metadata.rollout`` (rollout id, variant, flag version); unchanged when the agent has no flag."""
        served = self.served(agent_id, conversation_id)
        return trace if served is None else stamp_served(trace, served)

    # --- the follower --------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._follow())
        except Exception as exc:  # never let the thread die silently; the flags in memory keep being served
            self.last_error = f"follower stopped: {exc.__class__.__name__}: {exc}"
            log.error("rollout client: %s", self.last_error)

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.errors import KafkaError

        from connectors.kafka import aiokafka_client_kwargs

        backoff = 0.2
        while not self._stopping.is_set():
            consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(self.settings), group_id=None,
                                        enable_auto_commit=False, auto_offset_reset="earliest",
                                        isolation_level="read_committed",  # flags are written in transactions
                                        request_timeout_ms=10000, retry_backoff_ms=100)
            try:
                await consumer.start()
                parts = await self._partitions(consumer)
                if not parts:
                    raise LookupError(f"topic {self.topic} has no partitions yet")
                tps = [TopicPartition(self.topic, p) for p in parts]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                targets = {tp: off for tp, off in (await consumer.end_offsets(tps)).items()}
                self.last_error = None
                backoff = 0.2
                await self._consume(consumer, targets)
                return
            except (KafkaError, OSError, LookupError, asyncio.TimeoutError) as exc:
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("rollout client: cannot follow %s (%s); serving %d cached flag(s), retrying",
                            self.topic, self.last_error, len(self.book.flags))
            finally:
                await consumer.stop()
            await self._sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _partitions(self, consumer: Any) -> list[int]:
        parts = consumer.partitions_for_topic(self.topic)
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            parts = consumer.partitions_for_topic(self.topic)
        return sorted(parts or ())

    async def _consume(self, consumer: Any, targets: dict[Any, int]) -> None:
        pending = {tp for tp, end in targets.items() if end > 0}
        self._mark_caught_up(pending)
        while not self._stopping.is_set():
            # getmany returns as soon as a fetch brings records (the broker answers a waiting fetch when data
            # lands), so the timeout only bounds how long stop() waits
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            changed = []
            for tp, records in batch.items():
                for rec in records:
                    if (flag := self.book.offer(rec.key, rec.value)) is not None:
                        changed.append(flag)
                if records and tp in pending and records[-1].offset + 1 >= targets[tp]:
                    pending.discard(tp)
            if changed:
                self._save()
                if self.on_apply is not None:
                    for flag in changed:
                        try:
                            self.on_apply(flag)
                        except Exception as exc:  # a caller's hook must not stop the follower
                            log.warning("rollout client: on_apply raised %s", exc.__class__.__name__)
            self._mark_caught_up(pending)

    def _mark_caught_up(self, pending: set[Any]) -> None:
        if not pending and not self.caught_up:
            self.caught_up = True
            self._ready.set()

    def _save(self) -> None:
        try:
            _write_cache(self.cache_path, self.book.flags)
        except OSError as exc:  # a full or read-only disk must not stop serving from memory
            self.last_error = f"cache not written: {exc}"
            log.warning("rollout client: %s", self.last_error)

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stopping.is_set() and time.monotonic() < end:
            await asyncio.sleep(0.05)


def stamp_served(trace: T, served: tuple[VariantName, RolloutVariant, RolloutFlag]) -> T:
    """``RolloutClient.stamp`` for an arm chosen earlier (``served``): a copy of ``trace`` carrying it."""
    name, arm, flag = served
    meta = dict((trace.get("metadata") if isinstance(trace, dict) else trace.metadata) or {})
    meta["rollout"] = {"rollout_id": flag.rollout_id, "variant": name, "flag_version": flag.version}
    update = {"policy_id": arm.policy_id, "adapter_hash": arm.adapter_hash, "metadata": meta}
    if isinstance(trace, dict):
        return {**trace, **update}
    return trace.model_copy(update=update)
