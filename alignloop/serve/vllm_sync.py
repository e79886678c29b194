"""`alignloop vllm-sync`: keep a vLLM server's LoRA adapters in step with ``rollout.flags`` and the registry.

Every adapter a flag names is loaded under its content hash (the name agents send as ``model``) as soon as the
flag names it — a candidate published at weight 0 is loaded before any traffic reaches it. An adapter is
unloaded once no flag routes traffic to it (weight 0 outside a canary, or no flag names it) for ``grace_s``
seconds, so conversations in flight finish first. Only names this syncer manages (content hashes) are ever
unloaded; whatever else the operator loaded stays. Failures are retried on the next tick, never fatal.
"""
from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.rollout import RolloutFlag, RolloutVariant

HASH_PREFIX = "sha256:"


def wanted(flags: Mapping[str, RolloutFlag]) -> dict[str, RolloutVariant]:
    """content hash -> variant for every adapter a flag serves or is about to serve (a canary's candidate at
    weight 0 included: it is loaded before the ramp starts). The base-model variant needs nothing."""
    out: dict[str, RolloutVariant] = {}
    for flag in flags.values():
        variants = []
        if flag.weights.get("baseline", 0) > 0:
            variants.append(flag.baseline)
        if flag.candidate is not None and (flag.candidate_weight > 0 or flag.stage in ("canary", "paused")):
            variants.append(flag.candidate)
        for v in variants:
            if v.adapter_hash:
                out[v.adapter_hash] = v
    return out


@dataclass
class SyncState:
    loaded: dict[str, str] = field(default_factory=dict)  # hash -> path, as vLLM reported / we loaded
    unused_since: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # hash -> last error (retried next tick)


class VllmSync:
    """One tick = compare wanted adapters with vLLM's, load what is missing, unload what has gone unused."""

    def __init__(self, client: Any, resolve_path: Callable[[RolloutVariant], str], *, grace_s: float = 60.0,
                 log: Callable[[str], None] = lambda m: print(m, flush=True)) -> None:
        self.client, self.resolve_path, self.grace_s, self.log = client, resolve_path, grace_s, log
        self.state = SyncState()
        self.refreshed = False

    def refresh(self) -> None:
        """What vLLM has loaded now (its own names stay untouched; only content-hash names are managed)."""
        self.state.loaded = {n: p for n, p in self.client.loaded_loras().items() if n.startswith(HASH_PREFIX)}
        self.refreshed = True

    def tick(self, flags: Mapping[str, RolloutFlag], now: float | None = None) -> list[tuple[str, str]]:
        """Returns the (action, hash) pairs done this tick: load, unload, error."""
        from connectors.vllm import VllmError

        now = time.monotonic() if now is None else now
        done: list[tuple[str, str]] = []
        try:
            if not self.refreshed:
                self.refresh()
        except VllmError as exc:
            self.log(f"vllm-sync: cannot list adapters: {exc}")
            return [("error", "models")]
        want = wanted(flags)
        for h, variant in want.items():
            self.state.unused_since.pop(h, None)
            if h in self.state.loaded:
                continue
            try:
                path = self.resolve_path(variant)
                out = self.client.load_lora(h, path)
            except (VllmError, ValueError) as exc:
                self.state.errors[h] = str(exc)
                self.log(f"vllm-sync: load {variant.adapter_id} {h[:19]} failed (retrying): {exc}")
                done.append(("error", h))
                continue
            self.state.loaded[h] = path
            self.state.errors.pop(h, None)
            self.log(f"vllm-sync: loaded {variant.adapter_id} as {h} in {out.seconds * 1000:.0f} ms"
                     f"{' (already loaded)' if out.already else ''}")
            done.append(("load", h))
        for h in [h for h in self.state.loaded if h not in want]:
            since = self.state.unused_since.setdefault(h, now)
            if now - since < self.grace_s:
                continue
            try:
                self.client.unload_lora(h)
            except VllmError as exc:
                self.log(f"vllm-sync: unload {h[:19]} failed (retrying): {exc}")
                done.append(("error", h))
                continue
            del self.state.loaded[h]
            self.state.unused_since.pop(h, None)
            self.log(f"vllm-sync: unloaded {h} (no traffic for {now - since:.0f} s)")
            done.append(("unload", h))
        return done


def registry_resolver(settings: Any, path_map: tuple[str, str] | None = None,
                      check_hash: bool = True) -> Callable[[RolloutVariant], str]:
    """adapter_id -> the directory vLLM should load (``path_map`` rewrites a local prefix into vLLM's view).
    The directory's content hash must be the flag's: other weights are never loaded under that name."""
    from trainers.registry import list_adapters
    from trainers.serving.adapter_files import adapter_content_hash

    cache: dict[str, str] = {}

    def resolve(v: RolloutVariant) -> str:
        if v.adapter_id not in cache:
            cache.update({r["adapter_id"]: r["path"] for r in list_adapters(settings)})
        path = cache.get(v.adapter_id or "")
        if path is None:
            raise ValueError(f"adapter {v.adapter_id} is not in the registry")
        if check_hash:
            actual = adapter_content_hash(path)
            if actual != v.adapter_hash:
                raise ValueError(f"registry path {path} of {v.adapter_id} holds weights {actual}, the flag wants "
                                 f"{v.adapter_hash}; not loading other weights under that name")
        if path_map is not None and path.startswith(path_map[0]):
            path = path_map[1] + path[len(path_map[0]):]
        return path

    return resolve


class FlagFollower:
    """Follows the compacted ``rollout.flags`` topic from the beginning with a group-less consumer; holds the
    current flag per agent (bad records skipped with a warning, the last good flag staying in force)."""

    def __init__(self, settings: Any) -> None:
        self.settings, self.flags, self._consumer = settings, {}, None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from connectors.kafka import aiokafka_client_kwargs, end_offsets
        from schemas.topics import ROLLOUT

        topic = self.settings.topic(ROLLOUT)
        try:
            parts = await end_offsets(self.settings, topic)
        except Exception:  # noqa: BLE001 - an unknown topic or an unreachable broker: one line for the user
            parts = {}
        if not parts:
            raise ValueError(f"topic {topic} does not exist at {self.settings.kafka_bootstrap}; create it with "
                             f"`alignloop broker topics` (or start the rollout controller)")
        self._consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(self.settings), enable_auto_commit=False,
                                          auto_offset_reset="earliest")
        await self._consumer.start()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)

    async def poll(self, timeout_ms: int = 500) -> int:
        from streams.rollout.flags import FlagError, apply, parse_flag

        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=1000)
        changed = 0
        for msgs in batch.values():
            for m in msgs:
                if m.value is None:
                    continue
                try:
                    changed += apply(self.flags, parse_flag(m.value))
                except FlagError as exc:
                    print(f"vllm-sync: skipping {m.topic}:{m.partition}@{m.offset}: {exc}", file=sys.stderr)
        return changed

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


async def follow(settings: Any, sync: VllmSync, *, interval_s: float = 2.0, max_ticks: int | None = None,
                 until: Callable[[VllmSync], bool] | None = None) -> VllmSync:
    """Poll flags and tick until ``max_ticks`` or ``until(sync)``; retries ride on the next tick."""
    follower = FlagFollower(settings)
    await follower.start()
    ticks = 0
    try:
        while max_ticks is None or ticks < max_ticks:
            await follower.poll(timeout_ms=int(interval_s * 1000))
            await asyncio.to_thread(sync.tick, dict(follower.flags))
            ticks += 1
            if until is not None and until(sync):
                break
    finally:
        await follower.stop()
    return sync
