"""Erasure in the drift monitors' state: drop every entry of an erased trace, wherever a snapshot is kept.

A monitor's snapshot names recent trace ids in five places (open and recent block examples, embedding block
examples, the label-join confidence store with its text snippet, misjudged examples with their snippet, example
ids of drift events held by the retraining trigger). ``scrub_snapshot`` removes an erased trace from all of them;
the aggregates (block means, reference statistics, detector state, counters) stay: they are sums over hundreds of
traces and hold no id or text.

``alignloop erase`` calls ``erase_drift_state``: it publishes a ``DriftErase`` command (keyed trace ids only) to
``drift.erase``, which every running monitor follows and applies (``DriftHook.on_erase``: scrub, then save at
once); it waits for the monitors' new snapshots, cleans the snapshots of monitors that are not running itself (the
latest record of each key on ``drift.state`` and the state files under ``<home>/worker/``), then moves the start of
every ``drift.state`` partition that held the trace past its last copy (DeleteRecords; keys whose latest snapshot
would fall behind the cut are re-published first, so no monitor loses its state). A monitor that was down applies
the command when it starts (it reads ``drift.erase`` from its stored position, or from the beginning).
"""
from __future__ import annotations

import asyncio
import glob
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from schemas.drift_state import DriftErase, DriftSnapshot

if TYPE_CHECKING:
    from schemas.settings import Settings

HEADER = 8  # the save counter in front of a KafkaStateStore snapshot (streams.drift.state)


def scrub_snapshot(snap: DriftSnapshot, erased: Callable[[str], bool]) -> tuple[DriftSnapshot, int]:
    """``snap`` without any trace id for which ``erased(id)`` is true, and the number of entries removed."""
    removed = 0

    def keep(ids: list[str]) -> list[str]:
        nonlocal removed
        out = [i for i in ids if not erased(i)]
        removed += len(ids) - len(out)
        return out

    def rows(items: list[Any]) -> list[Any]:  # tuples whose first element is the trace id
        nonlocal removed
        out = [x for x in items if not erased(x[0])]
        removed += len(items) - len(out)
        return out

    b, t, g = snap.bank, snap.tracker, snap.trigger
    monitors = [m.model_copy(update={"open_ids": keep(list(m.open_ids)),
                                     "recent": [r.model_copy(update={"trace_ids": keep(list(r.trace_ids))})
                                                for r in m.recent]}) for m in b.monitors]
    emb = [e.model_copy(update={"ids": keep(list(e.ids))}) for e in b.emb]
    store = t.store.model_copy(update={"items": rows(list(t.store.items))})
    windows = [w.model_copy(update={"misjudged": rows(list(w.misjudged))}) for w in t.windows]
    events = [pe.model_copy(update={"events": [
        (ts, {**e, "example_trace_ids": keep(list(e["example_trace_ids"]))} if "example_trace_ids" in e else e)
        for ts, e in pe.events]})
        for pe in g.events]
    out = snap.model_copy(update={
        "bank": b.model_copy(update={"monitors": monitors, "emb": emb}),
        "tracker": t.model_copy(update={"store": store, "windows": windows}),
        "trigger": g.model_copy(update={"events": events})})
    return DriftSnapshot.model_validate_json(out.model_dump_json()), removed  # re-checked like any snapshot


def scrub_blob(blob: bytes, erased: Callable[[str], bool]) -> tuple[bytes, int] | None:
    """A stored snapshot (framed by a save counter or plain JSON) scrubbed, its counter advanced by one so it wins
    the next restore; None when it is no valid snapshot (the caller drops it)."""
    framed = not blob.lstrip().startswith(b"{")
    body = blob[HEADER:] if framed else blob
    try:
        snap = DriftSnapshot.model_validate_json(body)
    except ValueError:
        return None
    clean, n = scrub_snapshot(snap, erased)
    out = clean.model_dump_json().encode()
    if framed:
        seq = int.from_bytes(blob[:HEADER], "big") + 1
        out = seq.to_bytes(HEADER, "big") + out
    return out, n


def _has(value: bytes | None, needles: list[bytes]) -> bool:
    return value is not None and any(n in value for n in needles)


async def _latest(settings: "Settings", topic: str) -> tuple[list[Any], dict[tuple[int, bytes], Any]]:
    from connectors.kafka_erase import read_retained

    records = await read_retained(settings, topic)
    latest: dict[tuple[int, bytes], Any] = {}
    for m in records:
        if m.key is not None:
            latest[(m.partition, m.key)] = m
    return records, latest


async def erase_drift_state(settings: "Settings", trace_ids: list[str], conversation_ids: list[str], *,
                            erasure_id: str, truncate: bool = True, wait_s: float = 10.0) -> dict[str, Any]:
    """Erase the traces from every drift-monitor snapshot (module doc); the report names keys and counts only."""
    from connectors.erasure_key import erasure_keys
    from connectors.kafka import producer
    from schemas.topics import DRIFT_ERASE, DRIFT_STATE
    from streams.drift.state import StateFile

    keys = erasure_keys(settings)
    erased_keys = {keys.trace(t) for t in trace_ids}
    erased = lambda tid: keys.trace(tid) in erased_keys  # noqa: E731
    needles = [json.dumps(x).encode() for x in [*trace_ids, *conversation_ids]]
    topic = settings.topic(DRIFT_STATE)
    report: dict[str, Any] = {"command_offset": None, "applied_by_monitors": [], "cleaned_here": [],
                              "dropped_invalid": [], "files_cleaned": [], "entries_removed": 0,
                              "partitions_cut": {}, "remaining": 0}
    files = sorted(glob.glob(str(Path(settings.home) / "worker" / "drift-state-*.json")))
    if not truncate:  # --keep-topics: report only
        _, latest = await _latest(settings, topic)
        report["remaining"] = sum(_has(m.value, needles) for m in latest.values())
        report["files_with_copies"] = [Path(f).name for f in files if _has(Path(f).read_bytes(), needles)]
        return report
    command = DriftErase(erasure_id=erasure_id, trace_keys=sorted(erased_keys))
    # the snapshots holding copies, read before the command is sent: a monitor that applies it at once has saved a
    # clean snapshot before a read after the send, and would be missed from applied_by_monitors
    _, latest = await _latest(settings, topic)
    dirty = {k for k, m in latest.items() if _has(m.value, needles)}
    async with producer(settings) as prod:
        md = await prod.send_and_wait(settings.topic(DRIFT_ERASE), key=erasure_id.encode(),
                                      value=command.model_dump_json().encode())
        report["command_offset"] = md.offset
        # 1. running monitors apply the command and save: wait for their clean snapshots
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while dirty and loop.time() < deadline:
            await asyncio.sleep(0.5)
            _, latest = await _latest(settings, topic)
            now_dirty = {k for k, m in latest.items() if _has(m.value, needles)}
            report["applied_by_monitors"] += sorted(k[1].decode(errors="replace") for k in dirty - now_dirty)
            dirty = now_dirty
        # 2. the rest (monitors not running): clean their latest snapshot here
        for k in sorted(dirty):
            got = scrub_blob(latest[k].value, erased)
            name = k[1].decode(errors="replace")
            if got is None:
                report["dropped_invalid"].append(name)  # no valid snapshot: nothing to keep, cut below
                continue
            await prod.send_and_wait(topic, key=k[1], value=got[0], partition=k[0])
            report["cleaned_here"].append(name)
            report["entries_removed"] += got[1]
        # 3. the local state files (a monitor running here re-saves after applying the command anyway)
        for f in files:
            blob = Path(f).read_bytes()
            if _has(blob, needles):
                got = scrub_blob(blob, erased)
                if got is None:
                    Path(f).unlink()
                else:
                    StateFile(f).save(got[0])
                    report["entries_removed"] += got[1]
                report["files_cleaned"].append(Path(f).name)
        # 4. cut every partition past its last copy, re-publishing keys whose latest would fall behind the cut
        records, latest = await _latest(settings, topic)
        last: dict[int, int] = {}
        for m in records:
            if _has(m.value, needles):
                last[m.partition] = max(last.get(m.partition, -1), m.offset)
        for (part, key), m in sorted(latest.items()):
            if part in last and m.offset <= last[part] and m.value is not None and not _has(m.value, needles):
                await prod.send_and_wait(topic, key=key, value=m.value, partition=part)
    if last:
        from connectors.kafka_erase import delete_records

        try:
            cut = await delete_records(settings, {(DRIFT_STATE, p): off + 1 for p, off in last.items()})
            report["partitions_cut"] = {str(p): start for (_, p), start in cut.items()}
        except Exception as exc:  # e.g. a topic created with cleanup.policy=compact alone (docs/erasure.md)
            report["cut_error"] = f"{exc.__class__.__name__}: {exc}"[:300]
    records, _ = await _latest(settings, topic)
    report["remaining"] = sum(_has(m.value, needles) for m in records)  # > 0: a monitor saved in between; rerun
    return report
