"""`alignloop bench ingest`: OTLP ingest and export throughput, each against a plain baseline in the same run.

- OTLP mapping (CPU, no broker): spans/s and turns/s through decode -> per-span checks -> turn buffer -> Trace
  validation, against the plain cost of decoding the same protobuf bodies (``ParseFromString`` only).
- OTLP end to end (``--kafka``, a broker from the settings): spans/s accepted by a real ``alignloop ingest otlp``
  process (every response waits for Kafka's acks) and turns/s published, against publishing the same Trace records
  straight to agent.traces with the plain producer.
- Export: rows/s and CPU-µs per row per format over an n-row ``traces`` (or ``preferences``) table (generated as
  Arrow columns, 100,000-row commits), against reading the same rows from Delta into Python (``read_rows``: the
  columns exporters read, as dicts), the floor every exporter pays; the Arrow read alone is reported too.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import typer


def _otel_bodies(turns: int, per_request: int) -> tuple[list[bytes], int]:
    """Protobuf ExportTraceServiceRequest bodies from the real SDK, ``per_request`` turns each; (bodies, spans)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from alignloop.bench._otel_turn import agent_turn

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    bodies, spans = [], 0
    for start in range(0, turns, per_request):
        for i in range(start, min(turns, start + per_request)):
            agent_turn(tracer, i, conversation=f"c{i % 50}")
        batch = exporter.get_finished_spans()
        spans += len(batch)
        bodies.append(encode_spans(batch).SerializeToString())
        exporter.clear()
    provider.shutdown()
    return bodies, spans


def bench_mapping(bodies: list[bytes], spans: int) -> dict[str, float]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from streams.ingest.genai import map_otel_trace
    from streams.ingest.otlp import decode_request, spans_of
    from streams.ingest.turns import TurnBuffer

    for group in TurnBuffer().add(spans_of(decode_request(bodies[0], "application/x-protobuf"))[0], 0.0):
        map_otel_trace(group)  # warm-up: first-use imports and validator builds are not throughput
    t0 = time.perf_counter()
    for b in bodies:
        ExportTraceServiceRequest().ParseFromString(b)
    plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    buf, turns = TurnBuffer(), 0
    for b in bodies:
        ok, _ = spans_of(decode_request(b, "application/x-protobuf"))
        for group in buf.add(ok, time.monotonic()):
            turns += len(map_otel_trace(group)[0])
    full = time.perf_counter() - t0
    return {"spans": spans, "turns": turns, "decode_only_spans_per_s": spans / plain,
            "mapping_spans_per_s": spans / full, "mapping_turns_per_s": turns / full,
            "mapping_cost_vs_decode": full / plain}


def bench_kafka(bodies: list[bytes], spans: int, turns: int, concurrency: int) -> dict[str, float]:
    import httpx

    from alignloop.publish import publish
    from alignloop.runner import REPO
    from schemas.settings import load_settings, settings_env
    from schemas.topics import TRACES
    from streams.ingest.genai import map_otel_trace
    from streams.ingest.otlp import decode_request, spans_of
    from streams.ingest.turns import TurnBuffer

    import os

    settings = load_settings()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "alignloop.cli", "ingest", "otlp", "--port", str(port)], cwd=REPO,
                            env=settings_env(settings, os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1/traces"
    try:
        for _ in range(120):
            try:
                httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.5)

        async def post_all() -> float:
            sem = asyncio.Semaphore(concurrency)
            async with httpx.AsyncClient(timeout=60) as client:
                async def one(b: bytes) -> None:
                    async with sem:
                        r = await client.post(url, content=b, headers={"content-type": "application/x-protobuf"})
                        r.raise_for_status()
                t0 = time.perf_counter()
                await asyncio.gather(*[one(b) for b in bodies])
                return time.perf_counter() - t0

        otlp_s = asyncio.run(post_all())
        buf, records = TurnBuffer(), []
        for b in bodies:
            for group in buf.add(spans_of(decode_request(b, "application/x-protobuf"))[0], 0.0):
                records += [(t.conversation_id.encode(), t.model_dump_json().encode()) for t in map_otel_trace(group)[0]]
        t0 = time.perf_counter()
        asyncio.run(publish(settings, settings.topic(TRACES), records))
        plain_s = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    return {"otlp_spans_per_s": spans / otlp_s, "otlp_turns_per_s": turns / otlp_s,
            "plain_publish_traces_per_s": len(records) / plain_s, "otlp_cost_vs_plain_publish": otlp_s / plain_s}


def bench_export(n: int, formats: list[str], root: Path, no_rescrub: bool = True) -> dict[str, Any]:
    from deltalake import DeltaTable, write_deltalake

    from alignloop.bench._export_rows import pref_batch, trace_batch
    from schemas.settings import Settings
    from schemas.tables import TABLES
    from trainers.export import EXPORTERS
    from trainers.export.run import _without_gc, read_rows, run_export

    s = Settings(home=root / "home", lake_root=str(root / "lake"))
    tables = {EXPORTERS[f].tables[0] for f in formats} or {"traces"}
    chunk = 100_000
    out: dict[str, Any] = {}
    for table, make in (("traces", trace_batch), ("preferences", pref_batch)):
        if table not in tables:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, n, chunk):  # Arrow tables built column by column, one Delta commit per chunk
            write_deltalake(s.table_uri(table), make(start, min(n, start + chunk)), mode="append",
                            partition_by=TABLES[table][1] or None)
        out[f"write_{table}_s"] = time.perf_counter() - t0
        out[f"write_{table}_cpu_s"] = time.process_time() - c0
        t0 = time.perf_counter()
        arrow = DeltaTable(s.table_uri(table)).to_pyarrow_table()
        out[f"read_{table}_arrow_rows_per_s"] = arrow.num_rows / (time.perf_counter() - t0)
        del arrow
        t0, c0 = time.perf_counter(), time.process_time()
        rows, _, _ = _without_gc(read_rows, s.table_uri(table), None, [], None)  # what every exporter pays
        secs = time.perf_counter() - t0
        out[f"read_{table}_rows_per_s"] = len(rows) / secs
        out[f"read_{table}_cpu_us_per_row"] = (time.process_time() - c0) / len(rows) * 1e6
        print(f"{table}: wrote {n:,} rows in {out[f'write_{table}_s']:.1f} s; read "
              f"{out[f'read_{table}_rows_per_s']:,.0f} rows/s as dicts, "
              f"{out[f'read_{table}_arrow_rows_per_s']:,.0f} as Arrow", file=sys.stderr, flush=True)
        del rows
    for fmt in formats:
        table = EXPORTERS[fmt].tables[0]
        runs = [("", True)] + ([("_no_rescrub", False)] if no_rescrub and fmt == "trl-sft" else [])
        for suffix, rescrub in runs:  # trl-sft without the strict re-scrub too: what the exporter itself costs
            t0, c0 = time.perf_counter(), time.process_time()
            dest = root / "out" / (fmt + suffix if EXPORTERS[fmt].directory else f"{fmt}{suffix}.jsonl")
            res = run_export(s, fmt, table, out=dest, rescrub=rescrub)
            secs = time.perf_counter() - t0
            key = f"{fmt}{suffix}"
            out[f"{key}_rows_per_s"] = res.lineage["row_count"] / secs
            out[f"{key}_cpu_us_per_row"] = (time.process_time() - c0) / res.lineage["row_count"] * 1e6
            out[f"{key}_cost_vs_read"] = out[f"read_{table}_rows_per_s"] / out[f"{key}_rows_per_s"]
            for p in res.files:
                p.unlink()  # a million-row export is gigabytes: keep the disk for the next one
            print(f"{key}: {out[f'{key}_rows_per_s']:,.0f} rows/s, {out[f'{key}_cpu_us_per_row']:,.1f} CPU-us/row",
                  file=sys.stderr, flush=True)
    return out


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("ingest")
    def ingest(
        turns: int = typer.Option(2000, help="Agent turns for the OTLP figures (4 spans each)."),
        per_request: int = typer.Option(25, help="Turns per OTLP request."),
        kafka: bool = typer.Option(False, "--kafka", help="Also measure end to end through a broker (settings)."),
        concurrency: int = typer.Option(4, help="Concurrent OTLP requests (--kafka)."),
        rows: int = typer.Option(20_000, help="Rows of the export table (the issue's target is 1,000,000)."),
        skip_otlp: bool = typer.Option(False, "--skip-otlp", help="Only the export figures."),
        formats: str = typer.Option("trl-sft,trl-preference,hf,openai-sft,openai-dpo,openai-rft,argilla",
                                    help="Comma-separated export formats."),
    ) -> None:
        """OTLP spans/s and turns/s, export rows/s per format; each against a plain baseline of the same run."""
        from alignloop.bench._results import print_table, write_result

        bodies, spans = _otel_bodies(turns, per_request) if not skip_otlp else ([], 0)
        figures: dict[str, Any] = {"turns": turns, "per_request": per_request, "rows": rows}
        if not skip_otlp:
            figures["otlp_mapping"] = bench_mapping(bodies, spans)
        if kafka and not skip_otlp:
            figures["otlp_kafka"] = bench_kafka(bodies, spans, figures["otlp_mapping"]["turns"], concurrency)
        with tempfile.TemporaryDirectory(prefix="alignloop-bench-ingest-") as tmp:
            figures["export"] = bench_export(rows, [f for f in formats.split(",") if f], Path(tmp))
        flat = [(f"{k}.{kk}", vv) for k, v in figures.items() if isinstance(v, dict) for kk, vv in v.items()]
        print_table("bench ingest", flat)
        typer.echo(f"wrote {write_result('ingest', figures)}")
