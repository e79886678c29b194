"""`alignloop demo`: broker → topics → worker → synthetic traffic → what landed, on the local default set-up."""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()


def _table(title: str, counts: Counter, total: int | None = None) -> Table:
    t = Table(title=title)
    t.add_column(title.split(" by ")[-1])
    t.add_column("count", justify="right")
    if total:
        t.add_column("share", justify="right")
    for k, v in counts.most_common():
        t.add_row(str(k), f"{v:,}", *([f"{v / total:.1%}"] if total else []))
    return t


def summarise(settings, trace_ids: set[str], dlq_from: dict[int, int], bad: set[bytes]) -> dict:
    from connectors.delta_sink import read_table
    from connectors.kafka import read_topic
    from schemas.dlq import DeadLetter
    from schemas.tables import TRACES_TABLE
    from schemas.topics import DLQ

    t = read_table(settings.table_uri(TRACES_TABLE), columns=["trace_id", "outcome", "pii_json", "tags"])
    rows = [r for r in t.to_pylist() if r["trace_id"] in trace_ids] if t.num_columns else []
    outcomes = Counter(r["outcome"] for r in rows)
    pii: Counter[str] = Counter()
    for r in rows:
        for f in json.loads(r["pii_json"]):
            pii[f["kind"]] += f["count"]
    tags = Counter(tag.split(":")[0] for r in rows for tag in r["tags"])
    letters = [DeadLetter.from_record(m.headers, m.key, m.value) for m in asyncio.run(read_topic(settings, settings.topic(DLQ)))
               if m.offset >= dlq_from.get(m.partition, 0) and m.value in bad]
    from connectors.delta_sink import landing_times

    landed = sorted(t for i, t in landing_times(settings.table_uri(TRACES_TABLE)).items() if i in trace_ids)
    first = sum(1 for t in landed if t == landed[0]) if landed else 0
    per_s = (len(landed) - first) / (landed[-1] - landed[0]) if len(landed) > 1 and landed[-1] > landed[0] else 0.0
    return {"rows": len(rows), "outcomes": outcomes, "pii": pii, "tags": tags,
            "dlq": Counter(d.reason for d in letters), "per_s": per_s}


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        n: int = typer.Option(5000, "--n", min=100, help="Synthetic traces to publish."),
        malformed: float = typer.Option(0.02, "--malformed", min=0.0, max=0.5),
        seed: int = typer.Option(None, "--seed", help="Default: a new seed each run."),
        timeout: float = typer.Option(300, "--timeout", help="Seconds to wait for everything to land."),
        loop: bool = typer.Option(True, "--loop/--no-loop", help="Then close the loop: train and gate two tiny "
                                  "adapters and canary them on fleet traffic (one promoted, one rolled back)."),
    ) -> None:
        """Run the whole spine locally and show what landed."""
        from alignloop.commands.broker import _run
        from alignloop.errors import UserError
        from alignloop.publish import publish
        from alignloop.runner import WorkerProcess, ensure_local_broker
        from schemas.settings import load_settings
        from alignloop.simulate import Knobs, Simulator
        from connectors.delta_sink import read_table
        from connectors.kafka import create_topics, end_offsets
        from schemas.tables import SFT_EXAMPLES_TABLE, TRACES_TABLE
        from schemas.topics import DLQ, ESCALATIONS, TRACES

        s = load_settings()
        seed = seed if seed is not None else int(time.time())
        with console.status("starting the local Kafka broker (the first run resolves its jars with Maven)…"):
            from connectors.broker import BrokerError

            try:
                note = ensure_local_broker(s)
            except BrokerError as exc:
                raise UserError(str(exc)) from None
        console.print(note or f"Kafka: {s.kafka_bootstrap}")
        _run(create_topics(s), s)
        console.print(f"topics ready ({s.partitions} partitions); lake at {s.lake}")
        dlq_from = _run(end_offsets(s, s.topic(DLQ)), s)
        esc_from = _run(end_offsets(s, s.topic(ESCALATIONS)), s)
        sft_uri = s.table_uri(SFT_EXAMPLES_TABLE)

        def sft_rows() -> int:
            t = read_table(sft_uri, columns=["example_id"])
            return t.num_rows if t.num_columns else 0

        sft_from = sft_rows()
        worker = WorkerProcess(s, s.home / "logs" / "demo-worker.log", role="spine").start()
        monitor = WorkerProcess(s, s.home / "logs" / "demo-monitor.log", role="monitor",
                                metrics_port=s.metrics_port + 2 if s.metrics_port else 0).start()
        console.print(f"workers started: spine pid {worker.proc.pid} (metrics :{s.metrics_port}), monitor pid "
                      f"{monitor.proc.pid} (drift, escalation, curation); logs in {worker.log_path.parent}")

        from datetime import datetime, timedelta, timezone

        run_start = datetime.now(timezone.utc)
        sim = Simulator(seed=seed, knobs=Knobs(size_bytes=1500), start=run_start, rate_hint=200.0)
        ids: set[str] = set()
        bad: set[bytes] = set()
        records = []
        for key, value, truth, kind in sim.records(n, malformed=malformed, max_bytes=s.max_record_bytes):
            records.append((key, value))
            if kind:
                bad.add(value)
            else:
                ids.add(truth.trace_id)
        try:
            started = time.monotonic()
            with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                pub = progress.add_task("published", total=n)
                _run(publish(s, s.topic(TRACES), records, on_sent=lambda k: progress.advance(pub, k)), s)
                land = progress.add_task("landed", total=len(ids))
                deadline = time.monotonic() + timeout
                landed = 0
                while landed < len(ids):
                    if not worker.alive():
                        raise UserError(f"the worker exited; see {worker.log_path}")
                    if time.monotonic() > deadline:
                        raise UserError(f"only {landed}/{len(ids)} traces landed in {timeout:.0f}s; "
                                        f"see {worker.log_path}")
                    t = read_table(s.table_uri(TRACES_TABLE), columns=["trace_id"])
                    landed = len(ids.intersection(t.column("trace_id").to_pylist())) if t.num_columns else 0
                    progress.update(land, completed=landed)
                    time.sleep(0.5)
            elapsed = time.monotonic() - started
            time.sleep(1.0)  # let the last dead letters arrive
            summary = summarise(s, ids, dlq_from, bad)
            # the monitor reads traces.judged on its own: wait until its outputs stop growing (at most 30 s)
            monitored, last, calm = (0, 0), None, 0
            with console.status("waiting for the monitor (drift, escalation, curation) to catch up …"):
                for _ in range(30):
                    if not monitor.alive():
                        raise UserError(f"the monitor exited; see {monitor.log_path}")
                    esc = _run(end_offsets(s, s.topic(ESCALATIONS)), s)
                    monitored = (sum(o - esc_from.get(p, 0) for p, o in esc.items()), sft_rows() - sft_from)
                    calm = calm + 1 if monitored == last else 0
                    if calm >= 3:
                        break
                    last = monitored
                    time.sleep(1.0)
            story = None
            if loop:
                from alignloop.demo_loop import run_story

                console.rule("closing the loop: curated data -> adapter -> gate -> canary -> promote / roll back")
                story = run_story(s, seed, console)
        finally:
            worker.stop()
            monitor.stop()
        rows = summary["rows"]
        console.print(_table("traces by verdict", summary["outcomes"], rows))
        console.print(_table("findings by judge tag", summary["tags"]))
        console.print(_table("DLQ by reason", summary["dlq"], sum(summary["dlq"].values()) or None))
        console.print(_table("PII by type", summary["pii"]))
        n_dlq = sum(summary["dlq"].values())
        rate = (f"{summary['per_s']:,.0f} traces/s" if summary["per_s"] else
                "not measurable: everything landed in one commit, publish more with --n")
        ok = rows == len(ids) and n_dlq == len(bad)
        if story is not None:
            ends = [r["stage"] for r in story["rollouts"]]
            ok = ok and ends == ["promoted", "rolled_back"]
            shown = ", ".join(f"{r['adapter_id']} {r['stage']}" for r in story["rollouts"]) or "none"
            console.print(f"[bold]rollouts: {shown} (expected: the better candidate promoted, the unsafe one rolled "
                          "back)[/bold]")
        console.print(f"[bold]{rows:,} of {len(ids):,} valid traces landed in Delta `traces` exactly once; "
                      f"{n_dlq:,} of {len(bad):,} malformed records in the DLQ with a reason; worker throughput "
                      f"{rate} (first → last Delta commit); {elapsed:.1f}s from first "
                      f"publish to last landed, worker start-up included.[/bold]")
        from alignloop.report import build_report

        with console.status("writing the HTML report …"):
            report = build_report(s.table_uri, run_start - timedelta(minutes=1),
                                  datetime.now(timezone.utc) + timedelta(hours=1), s.home / "report",
                                  s.lake_storage_options or None)
        console.print(f"monitor: {monitored[0]:,} traces escalated to {s.topic(ESCALATIONS)} (budgeted) and "
                      f"{monitored[1]:,} SFT candidates curated into Delta `sft_examples`")
        console.print(f"report ({len(report['figures'])} plots): {report['index']}")
        console.print("the broker keeps running for you: `alignloop broker stop` stops it")
        if not ok:
            raise typer.Exit(1)
