"""``alignloop replay``: re-judge a window of history into a replay namespace, by partition, across processes.

Everything a user can get wrong is checked before anything is written: the name, the configs (loaded and
validated as the live spine loads them), the topic and the window against what the broker holds. Then the
manifest is written (``status: running``, with the resolved window), partitions are split across spawned
processes (spawn, not fork: deltalake deadlocks in a forked child), and the manifest is completed from the
replay's ledger. Re-running the same command resumes a crashed replay (same window, same configs); a different
request for an existing name is refused.
"""
from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignloop.errors import UserError

if TYPE_CHECKING:
    from schemas.settings import Settings

REPLAYABLE = ("agent.traces", "agent.traces.dlq")  # the scrub + judge step reads raw traces (or their dead letters)


def config_paths(settings: "Settings") -> dict[str, Path]:
    from streams.judges.config import DEFAULT_JUDGES_CONFIG
    from streams.scrub.config import DEFAULT_SCRUB_CONFIG

    return {"policy": Path(settings.policy_path), "judges": Path(settings.judges_config or DEFAULT_JUDGES_CONFIG),
            "scrub": Path(settings.scrub_config or DEFAULT_SCRUB_CONFIG)}


def config_hashes(settings: "Settings") -> dict[str, str]:
    """sha256 of each config file the step runs with (a missing file: 'default', the built-in defaults)."""
    return {k: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "default"
            for k, p in config_paths(settings).items()}


def with_configs(settings: "Settings", policy: Path | None, judges: Path | None, scrub: Path | None) -> "Settings":
    """``settings`` running the given configs (each checked to exist); the live ones where not given."""
    update: dict[str, Any] = {}
    for field, path in (("policy_path", policy), ("judges_config", judges), ("scrub_config", scrub)):
        if path is not None:
            if not Path(path).is_file():
                raise UserError(f"config file {path} does not exist; fix --{field.split('_')[0]}")
            update[field] = Path(path)
    return settings.model_copy(update=update)


def resolve_window(settings: "Settings", topic: str, frm: str, to: str | None) -> tuple[Any, list[Any]]:
    from connectors.kafka_window import probe_topic
    from streams.replay.window import PartitionProbe, WindowError, parse_window, resolve

    if topic not in REPLAYABLE:
        raise UserError(f"replay re-runs the scrub + judge step, which reads {' or '.join(REPLAYABLE)}; "
                        f"got --topic {topic}")
    try:
        spec = parse_window(frm, to)
    except WindowError as exc:
        raise UserError(str(exc)) from None
    physical = settings.topic(topic)
    try:
        raw = asyncio.run(probe_topic(settings, physical, (spec.from_ms, spec.to_ms)))
    except Exception as exc:
        raise UserError(f"cannot read topic {physical} on {settings.kafka_bootstrap} ({type(exc).__name__}: "
                        f"{exc}); start the broker (alignloop broker start) or fix ALIGNLOOP_KAFKA_BOOTSTRAP") from None
    if not raw:
        raise UserError(f"topic {physical} does not exist on {settings.kafka_bootstrap}; check --topic and "
                        "ALIGNLOOP_TOPIC_PREFIX")
    try:
        return spec, resolve(spec, {p: PartitionProbe(**v) for p, v in raw.items()})
    except WindowError as exc:
        raise UserError(f"{physical}: {exc}") from None


def _child(settings: "Settings", task: Any, log_path: str, results: Any) -> None:
    """A spawned replay process: load the configs as any process does, replay the task's partitions, report its
    counts and times (unix seconds: started, ready, done) on ``results``. Ready is when its step is built, its
    sinks have said where to resume and its consumer holds its partitions (``replay_partitions``' ``on_ready``):
    the counterpart of a live spine that has started and joined its group; its CPU time is counted from there."""
    import logging
    from dataclasses import asdict

    from alignloop.configs import load_configs
    from alignloop.runner import tune_gc
    from streams.replay.worker import replay_partitions

    logging.basicConfig(filename=log_path, level=logging.INFO,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("alignloop.replay")
    started = time.time()
    configs = load_configs(settings)
    # what deltalake's first write imports (~1 s, more under load), at start-up rather than in the first commit:
    # a live spine pays it in its first batch, which its bench measure leaves out
    import pandas  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.dataset  # noqa: F401

    tune_gc()
    marks: dict[str, float] = {}

    def ready() -> None:
        marks["ready"], marks["cpu"] = time.time(), time.process_time()
        log.info("partitions %s: ready %.1f s after start", sorted(task.ranges), marks["ready"] - started)

    run = replay_partitions(settings, configs, task, on_ready=ready)
    prof_dir = os.environ.get("ALIGNLOOP_REPLAY_PROFILE")  # a folder: cProfile this process's replay into it
    if prof_dir:
        import cProfile

        profile = cProfile.Profile()
        counts = profile.runcall(asyncio.run, run)
        profile.dump_stats(str(Path(prof_dir) / f"replay-{os.getpid()}.prof"))
    else:
        counts = asyncio.run(run)
    done = time.time()
    log.info("done in %.1f s: %s", done - marks["ready"], counts)
    results.put({"partitions": sorted(task.ranges), "started_at": started, "ready_at": marks["ready"],
                 "done_at": done, "cpu_s": round(time.process_time() - marks["cpu"], 3),  # every thread, from ready
                 **{k: v for k, v in asdict(counts).items() if k != "by_partition"}})


def _split(ranges: dict[int, tuple[int, int]], processes: int) -> list[dict[int, tuple[int, int]]]:
    """Partitions dealt round-robin, biggest first, to at most ``processes`` processes."""
    order = sorted(ranges, key=lambda p: ranges[p][0] - ranges[p][1])
    groups: list[dict[int, tuple[int, int]]] = [{} for _ in range(min(processes, len(order)))]
    for i, p in enumerate(order):
        groups[i % len(groups)][p] = ranges[p]
    return groups


def run_processes(settings: "Settings", tasks: list[Any], log_dir: Path, progress: Any = None
                  ) -> list[dict[str, Any]]:
    """Run each task in its own spawned process; ``progress(done, total)`` polled with the ledger's row count
    (offsets read so far, this run and earlier ones) against the window's offsets. Returns each process's
    counts and times."""
    import queue
    from connectors.delta_sink import RowCounter
    from connectors.replay_store import replay_table_uri
    from schemas.tables import REPLAY_RECORDS_TABLE

    total = sum(hi - lo + 1 for t in tasks for lo, hi in t.ranges.values())
    ctx = multiprocessing.get_context("spawn")
    log_dir.mkdir(parents=True, exist_ok=True)
    results = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(settings, t, str(log_dir / f"replay-{i}.log"), results),
                         daemon=False) for i, t in enumerate(tasks)]
    reports: list[dict[str, Any]] = []
    for p in procs:
        p.start()
    counter = RowCounter(replay_table_uri(settings.lake, tasks[0].name, REPLAY_RECORDS_TABLE),
                         settings.lake_storage_options or None)
    try:
        while any(p.is_alive() for p in procs) or len(reports) < len(procs):
            try:
                reports.append(results.get(timeout=0.5))
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break
            if progress is not None:
                progress(counter(), total)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    failed = [i for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise UserError(f"replay process(es) {failed} failed (exit {[procs[i].exitcode for i in failed]}); see "
                        f"{log_dir}/replay-<n>.log, then re-run the same command to resume")
    return sorted(reports, key=lambda r: r["partitions"])


def _code_version() -> str | None:
    from alignloop.bench._results import _commit

    return _commit()


def run_replay(settings: "Settings", *, topic: str, frm: str, to: str | None, into: str, processes: int = 2,
               batch: int = 5000, policy: Path | None = None, judges: Path | None = None, scrub: Path | None = None,
               rescrub: bool = False, progress: Any = None) -> dict[str, Any]:
    """Replay a window into ``into``; returns the completed manifest (also written next to the tables).

    Records whose live ``traces`` row was made from the same bytes under the same scrub version are judged from
    that row's scrubbed text (the same rows; scrubbing is most of the step's cost); ``rescrub`` scrubs them all."""
    from alignloop.configs import load_configs
    from connectors.replay_store import check_name, read_manifest, write_manifest
    from streams.replay.worker import Task

    try:
        check_name(into)
    except ValueError as exc:
        raise UserError(f"--into: {exc}") from None
    from streams.scrub import scrub_version
    from streams.scrub.pseudonym import Pseudonymizer

    s = with_configs(settings, policy, judges, scrub)
    configs = load_configs(s)  # a config that does not validate fails here, one line, before anything is written
    request = {"topic": topic, "from": frm, "to": to, "configs": {k: str(v) for k, v in config_paths(s).items()},
               "config_hashes": config_hashes(s)}
    old = read_manifest(s, into)
    if old is not None and old.get("request") != request:
        raise UserError(f"replay {into} already exists with a different window or configs; choose another "
                        f"--into (or re-run its own command: {old.get('command', '?')})")
    if old is not None:
        windows = old["windows"]
        spec_from, spec_to = old["time_filter_ms"]
    else:
        spec, resolved = resolve_window(s, topic, frm, to)
        windows = [w.to_dict() for w in resolved]
        spec_from, spec_to = spec.from_ms, spec.to_ms
    manifest: dict[str, Any] = old or {
        "name": into, "status": "running", "request": request, "topic": s.topic(topic),
        "command": f"alignloop replay --topic {topic} --from {frm}" + (f" --to {to}" if to else "") + f" --into {into}",
        "windows": windows, "time_filter_ms": [spec_from, spec_to], "code_version": _code_version(),
        "started_at": datetime.now(timezone.utc).isoformat(), "runs": 0}
    manifest["runs"] = int(manifest.get("runs", 0)) + 1
    manifest["status"] = "running"
    manifest["scrub_version"] = scrub_version(configs.scrub, Pseudonymizer(s.pii_hmac_key).key_id)
    manifest["rescrub"] = rescrub
    write_manifest(s, into, manifest)
    ranges = {w["partition"]: (w["start"], w["end"]) for w in windows if w["start"] <= w["end"]}
    tasks = [Task(into, s.topic(topic), g, spec_from, spec_to, batch, reuse=not rescrub)
             for g in _split(ranges, processes)]
    from connectors.replay_store import replay_sink
    from streams.replay.worker import SINKS

    for table, writer in SINKS:  # here, once, rather than raced by the processes' first commits
        replay_sink(s, into, table, writer).create()
    started = time.perf_counter()
    reports = run_processes(s, tasks, Path(s.home) / "replay" / into, progress)
    manifest.update(finish(s, into, windows), status="complete", wall_s=round(time.perf_counter() - started, 3),
                    processes=len(tasks), completed_at=datetime.now(timezone.utc).isoformat(), last_run=reports)
    write_manifest(s, into, manifest)
    return manifest


def finish(settings: "Settings", name: str, windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, gaps and the content hash, from the replay's ledger (so a run that crashed and resumed counts
    every record once)."""
    from connectors.delta_sink import read_table
    from connectors.replay_store import replay_table_uri
    from schemas.tables import REPLAY_RECORDS_TABLE
    from streams.replay.rows import content_hash

    t = read_table(replay_table_uri(settings.lake, name, REPLAY_RECORDS_TABLE),
                   storage_options=settings.lake_storage_options or None)
    rows = t.select([c for c in ("topic", "partition", "offset", "value_sha256", "status", "reused")
                     if c in t.column_names]).to_pylist() if t.num_columns else []
    by_part: dict[int, list[int]] = {}
    counts = {"read": len(rows), "landed": 0, "invalid": 0, "filtered": 0, "reused": 0, "rescrubbed": 0}
    for r in rows:
        counts[r["status"]] += 1
        if r["status"] == "landed":
            counts["reused" if r.get("reused") else "rescrubbed"] += 1
        by_part.setdefault(r["partition"], []).append(r["offset"])
    per_partition = {}
    for w in windows:
        offs = sorted(by_part.get(w["partition"], []))
        gaps = list(w["gaps"])
        missing = (w["end"] - w["start"] + 1 - len(offs)) if w["start"] <= w["end"] else 0
        if missing > 0:  # compaction, transaction markers or aborted records: offsets the broker never returned
            gaps.append(f"partition {w['partition']}: {missing} offset(s) in {w['start']}-{w['end']} returned no "
                        "record (compaction, transaction markers, or retention while the replay ran)")
        per_partition[str(w["partition"])] = {
            "requested": w["requested"], "start": w["start"], "end": w["end"], "read": len(offs),
            "actual": [offs[0], offs[-1]] if offs else None, "gaps": gaps}
    return {"counts": counts, "partitions": per_partition, "content_hash": content_hash(rows),
            "gaps": [g for p in per_partition.values() for g in p["gaps"]]}
