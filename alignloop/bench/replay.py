"""`alignloop bench replay`: replay throughput against the live spine's, on the same traces in the same run.

1. live: real `alignloop worker --role spine` processes (``--spines``, one consumer group) drain N traces from a
   fresh topic set into the live ``traces`` table — the pipeline bench's drain (``bench/pipeline.py``'s ``_Run``),
   so landed/s is measured the same way: rows / (last commit − first commit) from the Delta log's file times,
   the first file's rows left out.
2. replay: ``alignloop replay`` of those same N traces (every offset of the topic) with ``--processes`` spawned
   processes into a replay namespace. landed/s = N / (last process done − first process ready): from the moment
   its processes are ready — configs loaded, step built, sinks asked where to resume, partitions assigned; the
   counterpart of spines that are started and settled in their group before the live drain — to the last commit,
   the first fetch and the first batch included (the live measure leaves its first batch out). Its CPU µs per
   trace is counted over the same span, every thread of the replay processes (the committer's included), as the
   spines' CPU is over the drain. (Until 2026-12-02 ready was "configs loaded", which counted building the step,
   opening the sinks and starting the consumer against the replay but not against the spines.) The live measure (Delta log, first file left out) is kept for the
   record as ``landed_per_s_delta_log``: with 5,000-record commits it leaves out a quarter of a 20k run and
   flatters the replay. End to end (window resolution, process start-up, manifest) too.

``figures`` is a dict of phases (``live``, ``replay``, then the ratio); a later phase (erasure) adds its own key.
"""
from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console()


def _landed_per_s(uri: str, n: int) -> float:
    """As the pipeline bench: rows / (last commit − first commit), the first file's rows left out."""
    from connectors.delta_sink import landing_times

    times = sorted(landing_times(uri).values())
    first = sum(1 for t in times if t == times[0])
    return round((n - first) / max(times[-1] - times[0], 1e-9), 1)


def measure_live(run: Any, records: list, spines: int, broker_pid: int | None) -> dict[str, Any]:
    run.start(spines, monitor=False)
    try:
        got = run.drain(records, broker_pid)
    finally:
        run.stop()
    return {"spines": spines, **got}


def measure_replay(settings: Any, name: str, n: int, processes: int, batch: int) -> dict[str, Any]:
    from alignloop.replay import run_replay
    from connectors.kafka import end_offsets
    from connectors.replay_store import replay_table_uri
    from schemas.tables import TRACES_TABLE
    from schemas.topics import TRACES
    import asyncio

    ends = asyncio.run(end_offsets(settings, settings.topic(TRACES)))
    window = ",".join(f"{p}:0-{e - 1}" for p, e in sorted(ends.items()) if e > 0)
    started = time.perf_counter()
    m = run_replay(settings, topic=TRACES, frm=window, to=None, into=name, processes=processes, batch=batch)
    wall = time.perf_counter() - started
    landed = m["counts"]["landed"]
    if landed < n:
        from alignloop.errors import UserError

        raise UserError(f"the replay landed {landed} of {n} traces; see {settings.home}/replay/{name}/")
    runs = m["last_run"]
    busy = max(r["done_at"] for r in runs) - min(r["ready_at"] for r in runs)
    return {"processes": processes, "batch": batch, "landed": landed, "reused": m["counts"]["reused"],
            "rescrubbed": m["counts"]["rescrubbed"], "wall_s": round(wall, 3),
            "busy_s": round(busy, 3), "landed_per_s": round(landed / busy, 1),
            "landed_per_s_delta_log": _landed_per_s(replay_table_uri(settings.lake, name, TRACES_TABLE), landed),
            "end_to_end_per_s": round(landed / wall, 1), "startup_s": [round(r["ready_at"] - r["started_at"], 2)
                                                                      for r in runs],
            "cpu_us_per_trace": round(sum(r["cpu_s"] for r in runs) / landed * 1e6, 1),
            "content_hash": m["content_hash"]}


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("replay")
    def replay(
        n: int = typer.Option(40_000, "--n", min=1000, help="Traces drained live, then replayed (each replay "
                              "process does n / 2 / --batch batches; at 20,000 its cold first batch and last "
                              "commit are a third of its run)."),
        size_bytes: int = typer.Option(2000, "--size-bytes", help="Approximate trace size."),
        partitions: int = typer.Option(4, "--partitions", min=1),
        spines: int = typer.Option(2, "--spines", min=1, max=8, help="Live spine processes."),
        processes: int = typer.Option(2, "--processes", min=1, max=8, help="Replay processes."),
        batch: int = typer.Option(5000, "--batch", min=100, help="Replay batch (records per step and commit)."),
        seed: int = typer.Option(0, "--seed"),
        keep: bool = typer.Option(False, "--keep", help="Keep the bench topics and lake."),
        erasure_rows: int = typer.Option(1_000_000, "--erasure-rows", min=0,
                                         help="Then erase one conversation from a lake of this many trace rows "
                                              "(0: skip; `alignloop bench erasure` runs that part alone)."),
    ) -> None:
        """Traces re-judged and landed per second by a replay against the live spine's landed/s, same traces; then
        the erasure of one conversation across tables of ``--erasure-rows`` trace rows (wall time, bytes)."""
        from alignloop.bench._cleanup import delete_topics
        from alignloop.bench._results import print_table, write_result
        from alignloop.bench.pipeline import _Run
        from alignloop.runner import ensure_local_broker
        from alignloop.simulate import Knobs, Simulator
        from connectors.broker import LocalBroker
        from schemas.settings import load_settings

        base = load_settings()
        if note := ensure_local_broker(base):
            console.print(note)
        broker_pid = LocalBroker(base.home).pid()
        tag = uuid.uuid4().hex[:6]
        work = Path(tempfile.mkdtemp(prefix="alignloop-bench-replay-"))
        console.print(f"generating {n} traces of ~{size_bytes} B …")
        records = [(k, v) for k, v, _, _ in Simulator(seed=seed, knobs=Knobs(size_bytes=size_bytes)).records(n)]
        run = _Run(base, tag, "live", work, partitions, {})
        figures: dict[str, Any] = {"n": n, "partitions": partitions}
        try:
            console.print(f"\\[live] {spines} spine(s) drain {n} traces …")
            figures["live"] = measure_live(run, records, spines, broker_pid)
            console.print(f"    {figures['live']['landed_per_s']:,.0f} landed/s")
            console.print(f"\\[replay] the same {n} traces, {processes} process(es) …")
            figures["replay"] = measure_replay(run.s, f"bench-{tag}", n, processes, batch)
            console.print(f"    {figures['replay']['landed_per_s']:,.0f} landed/s "
                          f"({figures['replay']['end_to_end_per_s']:,.0f}/s end to end)")
        finally:
            if not keep:
                delete_topics(run.s)
                shutil.rmtree(work, ignore_errors=True)
        live, rep = figures["live"]["landed_per_s"], figures["replay"]["landed_per_s"]
        figures["replay_to_live_ratio"] = round(rep / live, 3)
        figures["replay_end_to_end_to_live_ratio"] = round(figures["replay"]["end_to_end_per_s"] / live, 3)
        # CPU per trace drifts far less than rates when the machine is shared: the steadier comparison
        figures["replay_to_live_cpu_ratio"] = round(figures["live"]["cpu_us_per_trace"]["spine"]
                                                    / figures["replay"]["cpu_us_per_trace"], 3)
        figures["targets"] = {"replay_to_live_ratio": 2.0}
        if erasure_rows:
            from alignloop.bench.erasure import run_erasure_bench

            console.print(f"\\[erasure] one conversation out of {erasure_rows:,} trace rows …")
            figures["erasure"] = run_erasure_bench(erasure_rows)
            figures["targets"]["erasure_wall_s"] = 60.0
        path = write_result("replay", figures)
        print_table(f"bench replay ({n} traces, {partitions} partitions)", [
            (f"live spine landed traces/s ({spines} spine(s))", live),
            (f"replay landed traces/s ({processes} process(es), ready to last commit)", rep),
            ("replay landed traces/s, the live measure (Delta log, first file left out)",
             figures["replay"]["landed_per_s_delta_log"]),
            ("replay traces/s end to end (start-up and manifest included)", figures["replay"]["end_to_end_per_s"]),
            ("replay / live (goal >= 2)", figures["replay_to_live_ratio"]),
            ("live spine CPU µs/trace", figures["live"]["cpu_us_per_trace"]["spine"]),
            ("replay CPU µs/trace (its processes)", figures["replay"]["cpu_us_per_trace"]),
            ("live CPU / replay CPU per trace", figures["replay_to_live_cpu_ratio"]),
        ], console)
        console.print(f"wrote {path}")
