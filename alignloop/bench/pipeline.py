"""`alignloop bench pipeline`: landed traces/s through real workers vs the in-process ceiling, what the full
scrubber and the fast judges cost inside that stream, and publish→landed latency under a steady rate — one run.

1. ceiling: the same step functions (validate, scrub, judge, row + event serialisation) in-process, no Kafka.
2. throughput, per variant: real `alignloop worker --role spine` subprocesses start on a fresh topic set and
   Delta table; once their consumer group has settled (every spine holds its partitions, so no start-up rebalance
   falls inside the drain), N traces (~2 KB) are published and drained. landed/s = rows / (last commit − first
   commit) from the Delta log's file times (the first file's rows left out), and CPU µs per trace of every process
   (spines, monitor, broker, this one) from /proc. Variants: ``full`` (the configured pipeline),
   ``structured_scrub`` (structured scrub tier only) and ``no_fast_judges``, interleaved ``--repeats`` times.
   Throughput is the best pass per variant; the costs of the full scrubber and the fast judges are medians over
   repeats of neighbouring drains' ratios (the shared machine's speed drifts over minutes, much less between two
   drains). Then ``--pairs`` times, the full pipeline drains beside each lighter variant at the same moment (one
   spine each, their own topics and tables, N/2 traces each): both see the same machine, so its drift cancels out
   of their ratio of spine CPU per trace.
   The spine issue's figure is ``full``: the spine alone. ``system`` then drains once more with the monitor
   process (drift, escalation, curation over ``traces.judged``) running beside the spines.
3. latency: with the system caught up, M traces are published at half the spine's throughput; latency of each
   trace = time its Delta file was written − time it was sent.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import typer
from rich.console import Console

console = Console()


def _ceiling(settings, values: list[bytes], repeats: int = 3) -> tuple[float, float]:
    """Best of ``repeats`` timed passes (the machine is shared and noisy; the best pass is the ceiling)."""
    from alignloop.runner import tune_gc
    from alignloop.configs import load_configs
    from schemas.record import Record
    from streams.encoding import encode_event, summarize, to_row
    from streams.pipeline import Pipeline

    pipe = Pipeline.from_settings(settings, load_configs(settings))
    tune_gc()  # as the worker runs it
    for v in values[:200]:  # warm caches
        pipe.process(v, "agent.traces", 0, 0)
    step = settings.sink_batch_size  # batches as the worker takes them, judged stage by stage as it does
    batches = [[Record("agent.traces", 0, i, None, v) for i, v in enumerate(values[b:b + step], b)]
               for b in range(0, len(values), step)]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            for out in pipe.process_batch(batch):
                encode_event(out)  # as the worker does
                to_row(out, summarize(out.verdicts))
        best = min(best, time.perf_counter() - started)
    return len(values) / best, best / len(values) * 1e6


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (Linux /proc), 0 when unknown."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_rows(uri: str, n: int, timeout: float, worker) -> int:
    from connectors.delta_sink import RowCounter

    count = RowCounter(uri)  # from the Delta log, so polling costs the machine next to nothing
    deadline = time.monotonic() + timeout
    rows = 0
    while time.monotonic() < deadline:
        rows = count()
        if rows >= n:
            return rows
        if not worker.alive():
            raise RuntimeError(f"the worker exited; see {worker.log_path}")
        time.sleep(0.5)
    return rows


VARIANTS = ("full", "structured_scrub", "no_fast_judges")


def _variant_env(variant: str, work: Path, settings) -> dict[str, str]:
    """Config overrides (as environment) that turn the configured pipeline into ``variant``."""
    import yaml

    from streams.judges import FAST_JUDGES
    from streams.judges.config import DEFAULT_JUDGES_CONFIG, JUDGES_CONFIG_ENV
    from streams.scrub.config import DEFAULT_SCRUB_CONFIG, SCRUB_CONFIG_ENV

    if variant == "structured_scrub":
        src = Path(settings.scrub_config or DEFAULT_SCRUB_CONFIG)
        cfg = yaml.safe_load(src.read_text()) if src.exists() else {}
        cfg["tier"] = "structured"
        out = work / "scrub-structured.yaml"
        out.write_text(yaml.safe_dump(cfg))
        return {SCRUB_CONFIG_ENV: str(out)}
    if variant == "no_fast_judges":
        src = Path(settings.judges_config or DEFAULT_JUDGES_CONFIG)
        cfg = yaml.safe_load(src.read_text()) if src.exists() else {}
        fast = cfg["fast"] = cfg.get("fast") or {}
        for name in FAST_JUDGES:
            fast[name] = {**(fast.get(name) or {}), "enabled": False}
        out = work / "judges-none.yaml"
        out.write_text(yaml.safe_dump(cfg))
        return {JUDGES_CONFIG_ENV: str(out)}
    return {}


class _Run:
    """One drain: fresh topics, lake and consumer groups; spines (and optionally the monitor) as subprocesses."""

    def __init__(self, base, tag: str, name: str, work: Path, partitions: int, env: dict[str, str]):
        self.name = name
        self.dir = work / name
        self.s = base.model_copy(update={
            "topic_prefix": f"bench-{tag}.{name}.", "app_id": f"bench-{tag}-{name}",
            "lake_root": str(self.dir / "lake"), "home": self.dir / "home", "metrics_port": 0,
            "partitions": partitions, "sink_flush_interval_s": 0.25})
        self.env = env
        self.workers: list = []
        self.monitor = None

    def start(self, spines: int, monitor: bool) -> None:
        """Fresh topics, then the workers; returns once each consumer group has settled (every member holds its
        partitions), so the drain has no start-up rebalance in it: with the traces published first, the spine
        that joined first would drain alone until the other arrived."""
        from alignloop.errors import UserError
        from alignloop.runner import WorkerProcess
        from connectors.kafka import create_topics

        try:
            asyncio.run(create_topics(self.s))
        except Exception as exc:
            raise UserError(f"cannot create bench topics on {self.s.kafka_bootstrap}: {exc}") from None
        self.workers = [WorkerProcess(self.s, self.dir / f"spine-{i}.log", role="spine", env=self.env).start()
                        for i in range(spines)]
        if monitor:
            self.monitor = WorkerProcess(self.s, self.dir / "monitor.log", role="monitor", env=self.env).start()
        self._wait_group(self.s.app_id, self.workers)
        if self.monitor is not None:
            self._wait_group(f"{self.s.app_id}-monitor", [self.monitor])

    def _wait_group(self, group: str, workers: list, timeout: float = 180.0) -> None:
        from alignloop.errors import UserError
        from connectors.kafka import group_members

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                members = asyncio.run(group_members(self.s, group))
            except Exception:  # the coordinator is still loading the group
                members = []
            if len(members) == len(workers) and all(members):
                return
            for w in workers:
                if not w.alive():
                    raise UserError(f"{self.name}: a worker exited at start-up; see {w.log_path}")
            time.sleep(0.25)
        raise UserError(f"{self.name}: {len(workers)} worker(s) did not all join consumer group {group} in "
                        f"{timeout:.0f} s")

    def stop(self) -> None:
        for w in [*self.workers, *([self.monitor] if self.monitor else [])]:
            w.stop()

    def discard(self) -> None:
        """Delete this drain's topics and lake (after ``stop``): a run makes ~20 drains, and a broker left holding
        every drain's partitions and data costs more CPU per trace with each one (28 → 60-140 µs over a run)."""
        import shutil

        from alignloop.bench._cleanup import delete_topics

        delete_topics(self.s)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def uri(self) -> str:
        from schemas.tables import TRACES_TABLE

        return self.s.table_uri(TRACES_TABLE)

    def drain(self, records: list, broker_pid: int | None) -> dict:
        """Publish ``records`` to the settled workers and wait until they have all landed; landed/s from the Delta
        log (first commit to last, the first file's rows left out) and CPU µs per trace of each process kind."""
        from alignloop.errors import UserError
        from alignloop.publish import publish
        from connectors.delta_sink import landing_times
        from schemas.topics import TRACES

        n = len(records)
        procs = {"spine": [w.proc.pid for w in self.workers if w.proc],
                 "monitor": [self.monitor.proc.pid] if self.monitor and self.monitor.proc else [],
                 "broker": [broker_pid], "bench": [os.getpid()]}
        lead = self.workers[0]
        cpu0 = {k: sum(_cpu_s(p) for p in v) for k, v in procs.items()}
        asyncio.run(publish(self.s, self.s.topic(TRACES), records))
        got = _wait_rows(self.uri, n, 600, lead)
        cpu1 = {k: sum(_cpu_s(p) for p in v) for k, v in procs.items()}
        if got < n:
            raise UserError(f"{self.name}: only {got}/{n} traces landed within 600 s; see {lead.log_path}")
        for w in [*self.workers, *([self.monitor] if self.monitor else [])]:
            if not w.alive():
                raise UserError(f"{self.name}: a worker exited during the run; see {w.log_path}")
        times = sorted(landing_times(self.uri).values())
        first_batch = sum(1 for t in times if t == times[0])
        landed = (n - first_batch) / max(times[-1] - times[0], 1e-9)
        cpu = {k: round((cpu1[k] - cpu0[k]) / got * 1e6, 1) for k in procs if procs[k]}
        return {"landed_per_s": round(landed, 1), "cpu_us_per_trace": cpu}


def _concurrent_pair(base, tag: str, name: str, work: Path, partitions: int, variants: tuple[str, str],
                     records: list, keep: bool = False) -> dict[str, dict]:
    """Drain the same traces with two variants at the same time, one spine each, on their own topics and tables:
    both see the same machine, so the VM's drift (±25% over minutes here) cancels out of their ratio. CPU µs per
    trace of each variant's spine, and landed/s while both ran (for the record only: a lone spine waits on acks
    and commits between batches, so it does not use its core to the full and its rate hides the cost)."""
    from alignloop.errors import UserError
    from alignloop.publish import publish
    from connectors.delta_sink import RowCounter, landing_times
    from schemas.topics import TRACES

    runs = {v: _Run(base, tag, f"{name}-{v}", work, partitions, _variant_env(v, work, base)) for v in variants}
    try:
        for r in runs.values():
            r.start(1, monitor=False)
        pids = {v: r.workers[0].proc.pid for v, r in runs.items()}
        cpu0 = {v: _cpu_s(pid) for v, pid in pids.items()}

        async def publish_all() -> None:
            await asyncio.gather(*(publish(r.s, r.s.topic(TRACES), records) for r in runs.values()))

        asyncio.run(publish_all())
        n = len(records)
        counters = {v: RowCounter(r.uri) for v, r in runs.items()}
        cpu1: dict[str, float] = {}  # read the moment a variant has landed everything: no idle CPU after it
        deadline = time.monotonic() + 600
        while len(cpu1) < len(runs) and time.monotonic() < deadline:
            for v, r in runs.items():
                if v not in cpu1 and counters[v]() >= n:
                    cpu1[v] = _cpu_s(pids[v])
                elif v not in cpu1 and not r.workers[0].alive():
                    raise UserError(f"{name}: a spine exited; see {r.workers[0].log_path}")
            time.sleep(0.2)
        if len(cpu1) < len(runs):
            raise UserError(f"{name}: the pair did not land {n} traces each within 600 s (logs under {work})")
        times = {v: sorted(landing_times(r.uri).values()) for v, r in runs.items()}
        both_until = min(t[-1] for t in times.values())  # landed/s while both ran: no solo tail counted
        out = {}
        for v, t in times.items():
            rows = sum(1 for x in t if t[0] < x <= both_until)  # the first file's rows left out
            out[v] = {"landed_per_s": round(rows / max(both_until - t[0], 1e-9), 1),
                      "spine_cpu_us_per_trace": round((cpu1[v] - cpu0[v]) / n * 1e6, 1)}
        return out
    finally:
        for r in runs.values():
            r.stop()
            if not keep:
                r.discard()


def _system_only(base, tag: str, work: Path, partitions: int, spines: int, repeats: int, records: list,
                 broker_pid: int | None, keep: bool) -> None:
    """``--only system``: the whole system's landed/s (spines + monitor), ``repeats`` drains, each on fresh topics
    and a fresh table; the best counts, as for the other variants."""
    from alignloop.bench._results import print_table, write_result

    drains = []
    for rep in range(repeats):
        run = _Run(base, tag, f"system-{rep}", work, partitions, {})
        console.print(f"\\[system {rep + 1}/{repeats}] {spines} spine(s) and the monitor, {len(records)} traces …")
        run.start(spines, monitor=True)
        try:
            got = run.drain(records, broker_pid)
        finally:
            run.stop()
            if not keep:
                run.discard()
        console.print(f"    {got['landed_per_s']:,.0f} landed/s; CPU µs/trace {got['cpu_us_per_trace']}")
        drains.append(got)
    best = max(drains, key=lambda d: d["landed_per_s"])
    figures = {"n": len(records), "repeats": repeats, "spines": spines, "partitions": partitions,
               "landed_per_s_with_monitor": best["landed_per_s"],
               "cpu_us_per_trace_with_monitor": best["cpu_us_per_trace"], "drains": drains}
    path = write_result("pipeline-system", figures)
    print_table(f"bench pipeline --only system ({len(records)} traces, {spines} spine(s) + monitor, best of "
                f"{repeats})", [("landed traces/s with the monitor process", best["landed_per_s"]),
                                *((f"CPU µs/trace: {k}", v) for k, v in best["cpu_us_per_trace"].items()),
                                ("landed/s of each drain", ", ".join(f"{d['landed_per_s']:,.0f}" for d in drains))],
                console)
    console.print(f"wrote {path}")
    if not keep:
        import shutil

        from alignloop.bench._cleanup import delete_topics

        delete_topics(base.model_copy(update={"topic_prefix": f"bench-{tag}."}))
        shutil.rmtree(work, ignore_errors=True)


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("pipeline")
    def pipeline(
        n: int = typer.Option(80_000, "--n", min=1000,
                              help="Traces per throughput drain (a drain lasts ~15 s at ~6,000/s)."),
        latency_n: int = typer.Option(0, "--latency-n", help="Traces for the latency phase (default n/5)."),
        size_bytes: int = typer.Option(2000, "--size-bytes", help="Approximate trace size."),
        partitions: int = typer.Option(4, "--partitions", min=1),
        seed: int = typer.Option(0, "--seed"),
        keep: bool = typer.Option(False, "--keep", help="Keep the bench topics and lakes."),
        spines: int = typer.Option(2, "--spines", min=1, max=8, help="Spine processes in one consumer group."),
        repeats: int = typer.Option(3, "--repeats", min=1, max=7,
                                    help="Drains per variant: the best counts for throughput, the median of paired "
                                         "drains for the costs of the full scrubber and the fast judges."),
        compare: bool = typer.Option(True, "--compare/--no-compare",
                                     help="Also drain with the structured scrub tier only and with no fast judges."),
        pairs: int = typer.Option(3, "--pairs", min=0, max=7,
                                  help="With --compare: drains of the full pipeline beside each lighter variant at "
                                       "the same time (one spine each), so the machine's drift cancels out."),
        only: str = typer.Option("", "--only", help="'system': only the whole-system figure, --repeats drains of "
                                                    "the spines with the monitor beside them (no ceiling, variants "
                                                    "or latency phase)."),
    ) -> None:
        """Throughput, latency and step costs of the stream worker against the in-process ceiling."""
        if only not in ("", "system"):
            raise typer.BadParameter("--only takes 'system'", param_hint="--only")
        from alignloop.bench._results import print_table, write_result
        from alignloop.runner import ensure_local_broker
        from schemas.settings import load_settings
        from alignloop.simulate import Knobs, Simulator
        from connectors.broker import LocalBroker
        from connectors.delta_sink import landing_times
        from schemas.topics import TRACES

        base = load_settings()
        if note := ensure_local_broker(base):
            console.print(note)
        broker_pid = LocalBroker(base.home).pid()  # None for an external cluster: its CPU is not counted
        tag = uuid.uuid4().hex[:6]
        work = Path(tempfile.mkdtemp(prefix="alignloop-bench-"))
        latency_n = latency_n or n // 5
        console.print(f"generating {n + latency_n} traces of ~{size_bytes} B …")
        sim = Simulator(seed=seed, knobs=Knobs(size_bytes=size_bytes))
        records = [(k, v) for k, v, _, _ in sim.records(n + latency_n)]
        values = [v for _, v in records]
        mean_size = statistics.mean(len(v) for v in values)

        if only:
            _system_only(base, tag, work, partitions, spines, repeats, records[:n], broker_pid, keep)
            return
        console.print("ceiling: step functions in-process, best of 3 …")
        ceiling, us_per_trace = _ceiling(base, values[: min(n, 10_000)])

        variants = VARIANTS if compare else VARIANTS[:1]
        best: dict[str, dict] = {}
        passes: list[dict[str, dict]] = []  # per repeat: variant -> figures (adjacent in time, so comparable)
        system = None
        try:
            for rep in range(repeats):
                passes.append({})
                for v in variants[rep % len(variants):] + variants[:rep % len(variants)]:  # rotate: no order bias
                    run = _Run(base, tag, f"{v}-{rep}", work, partitions, _variant_env(v, work, base))
                    console.print(f"\\[{v} {rep + 1}/{repeats}] starting {spines} spine(s), then publishing and "
                                  f"draining {n} traces …")
                    run.start(spines, monitor=False)
                    try:
                        got = run.drain(records[:n], broker_pid)
                    finally:
                        run.stop()
                        if not keep:
                            run.discard()
                    console.print(f"    {got['landed_per_s']:,.0f} landed/s; CPU µs/trace {got['cpu_us_per_trace']}")
                    passes[-1][v] = got
                    if v not in best or got["landed_per_s"] > best[v]["landed_per_s"]:
                        best[v] = got
            concurrent: list[dict[str, dict]] = []
            for rep in range(pairs if compare else 0):
                for other in ("structured_scrub", "no_fast_judges"):
                    console.print(f"\\[full beside {other} {rep + 1}/{pairs}] one spine each, at the same time, "
                                  f"{n // 2} traces each …")
                    got = _concurrent_pair(base, tag, f"pair{rep}-{other}", work, partitions, ("full", other),
                                           records[: n // 2], keep)
                    console.print(f"    {got}")
                    concurrent.append(got)
            system = _Run(base, tag, "system", work, partitions, {})
            console.print(f"\\[system] the full pipeline again, with the monitor process beside {spines} spine(s) …")
            system.start(spines, monitor=True)
            with_monitor = system.drain(records[:n], broker_pid)
            console.print(f"    {with_monitor['landed_per_s']:,.0f} landed/s; CPU µs/trace "
                          f"{with_monitor['cpu_us_per_trace']}")
            rate = best["full"]["landed_per_s"] / 2
            console.print(f"latency: {latency_n} traces at {rate:,.0f}/s (half the spine's throughput) …")
            sent_at: list[float] = []
            from alignloop.publish import publish

            asyncio.run(publish(system.s, system.s.topic(TRACES), records[n:], rate=rate, record_time=sent_at))
            _wait_rows(system.uri, n + latency_n, 300, system.workers[0])
            landed = landing_times(system.uri)
            ids = [json.loads(v)["trace_id"] for v in values[n:]]
            lat = sorted(landed[i] - t for i, t in zip(ids, sent_at) if i in landed)
        finally:
            if system is not None:
                system.stop()
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        full = best["full"]
        figures = {
            "n": n, "latency_n": latency_n, "repeats": repeats, "spines": spines, "partitions": partitions,
            "mean_trace_bytes": round(mean_size),
            "landed_per_s": full["landed_per_s"], "ceiling_per_s": round(ceiling, 1),
            "ratio_to_ceiling": round(full["landed_per_s"] / ceiling, 3), "step_us_per_trace": round(us_per_trace, 1),
            "cpu_us_per_trace": full["cpu_us_per_trace"],
            "landed_per_s_with_monitor": with_monitor["landed_per_s"],
            "cpu_us_per_trace_with_monitor": with_monitor["cpu_us_per_trace"],
            "variants": best, "latency_rate_per_s": round(rate, 1),
            "p50_latency_s": round(p50, 3), "p99_latency_s": round(p99, 3), "latency_samples": len(lat),
            "targets": {"landed_per_s": 3000, "ratio_to_ceiling": 0.5, "p99_latency_s": 5.0,
                        "full_scrubber_throughput_loss_pct": 20, "fast_judges_added_cost_pct": 15},
        }
        rows = [
            ("landed traces/s, spines alone (real workers → Delta)", figures["landed_per_s"]),
            ("ceiling traces/s (step functions in-process)", figures["ceiling_per_s"]),
            ("ratio to ceiling", figures["ratio_to_ceiling"]),
            ("step cost µs/trace (in-process)", figures["step_us_per_trace"]),
            *((f"CPU µs/trace while draining: {k}", v) for k, v in full["cpu_us_per_trace"].items()),
            ("landed traces/s with the monitor process too", figures["landed_per_s_with_monitor"]),
            *((f"CPU µs/trace with the monitor: {k}", v) for k, v in with_monitor["cpu_us_per_trace"].items()),
        ]
        if compare:
            st, nj = best["structured_scrub"], best["no_fast_judges"]

            def paired(fn) -> float:
                """Median over repeats of a comparison between variants drained one after the other: the
                machine's speed drifts between repeats, much less between neighbouring drains."""
                return round(statistics.median(fn(p) for p in passes) * 100, 1)

            def cpu(p: dict, v: str) -> float:
                return p[v]["cpu_us_per_trace"]["spine"]

            figures["full_scrubber_throughput_loss_pct"] = paired(
                lambda p: 1 - p["full"]["landed_per_s"] / p["structured_scrub"]["landed_per_s"])
            figures["full_scrubber_added_cpu_pct"] = paired(lambda p: cpu(p, "full") / cpu(p, "structured_scrub") - 1)
            figures["fast_judges_added_cost_pct"] = paired(lambda p: cpu(p, "full") / cpu(p, "no_fast_judges") - 1)
            figures["fast_judges_throughput_loss_pct"] = paired(
                lambda p: 1 - p["full"]["landed_per_s"] / p["no_fast_judges"]["landed_per_s"])
            figures["passes"] = passes
            if concurrent:
                def conc(other: str) -> float:
                    """Median over the pairs with ``other`` of the full spine's CPU per trace over other's, in %."""
                    return round(statistics.median(
                        c["full"]["spine_cpu_us_per_trace"] / c[other]["spine_cpu_us_per_trace"] - 1
                        for c in concurrent if other in c) * 100, 1)

                figures["concurrent_pairs"] = concurrent
                figures["full_scrubber_added_cpu_pct_concurrent"] = conc("structured_scrub")
                figures["fast_judges_added_cost_pct_concurrent"] = conc("no_fast_judges")
                rows += [
                    ("full scrubber: spine CPU/trace added % (median, concurrent pairs)",
                     figures["full_scrubber_added_cpu_pct_concurrent"]),
                    ("fast judges: spine CPU/trace added % (median, concurrent pairs)",
                     figures["fast_judges_added_cost_pct_concurrent"]),
                ]
            rows += [
                ("landed traces/s, structured scrub tier only", st["landed_per_s"]),
                ("landed traces/s, no fast judges", nj["landed_per_s"]),
                ("full scrubber: throughput lost % (median of paired drains)",
                 figures["full_scrubber_throughput_loss_pct"]),
                ("full scrubber: spine CPU/trace added % (median, paired)", figures["full_scrubber_added_cpu_pct"]),
                ("fast judges: spine CPU/trace added % (median, paired)", figures["fast_judges_added_cost_pct"]),
                ("fast judges: throughput lost % (median, paired)", figures["fast_judges_throughput_loss_pct"]),
            ]
        rows += [(f"p50 latency s at {rate:,.0f}/s", figures["p50_latency_s"]),
                 (f"p99 latency s at {rate:,.0f}/s", figures["p99_latency_s"])]
        path = write_result("pipeline", figures)
        print_table(f"bench pipeline ({n} traces of ~{mean_size:.0f} B, {partitions} partitions, {spines} spine "
                    f"process(es), best of {repeats})", rows, console)
        console.print(f"wrote {path}")
        if not keep:
            import shutil

            from alignloop.bench._cleanup import delete_topics

            delete_topics(base.model_copy(update={"topic_prefix": f"bench-{tag}."}))
            shutil.rmtree(work, ignore_errors=True)
