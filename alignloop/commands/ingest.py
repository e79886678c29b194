"""`alignloop ingest otlp|openai-log`: bring OpenTelemetry GenAI spans and OpenAI-format logs into agent.traces."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    ingest = typer.Typer(help="Ingest OTLP GenAI spans or OpenAI-format logs into agent.traces.",
                         no_args_is_help=True)
    app.add_typer(ingest, name="ingest")

    @ingest.command("otlp")
    def otlp(
        port: int = typer.Option(4318, "--port", help="HTTP port (4318 is OTLP/HTTP's default)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for every one)."),
        settle_s: float = typer.Option(5.0, "--settle-s", min=0.1,
                                       help="Publish a turn whose OTel trace sent no root span after this long."),
        assemble: bool = typer.Option(True, "--assemble/--no-assemble",
                                      help="Run the turn assembler in this process (--no-assemble: run "
                                           "`alignloop ingest assemble` separately)."),
    ) -> None:
        """Serve OTLP/HTTP on /v1/traces (protobuf and JSON): one Trace per agent turn to agent.traces, spans it
        cannot map to agent.traces.dlq with a reason."""
        from alignloop.ingest.otlp_server import serve
        from alignloop.errors import UserError
        from schemas.settings import ConfigError, load_settings

        try:
            settings = load_settings()
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        typer.echo(f"OTLP/HTTP receiver on http://{host}:{port}/v1/traces -> {settings.topic('agent.traces')}",
                   err=True)
        serve(settings, host=host, port=port, settle_s=settle_s, assemble=assemble)

    @ingest.command("assemble")
    def assemble_cmd(
        settle_s: float = typer.Option(5.0, "--settle-s", min=0.1,
                                       help="Publish a turn whose OTel trace sent no root span after this long."),
        partitions: str = typer.Option("", "--partitions",
                                       help="Comma-separated partitions of ingest.otlp_spans to own (default all)."),
    ) -> None:
        """Group the spans the OTLP receiver acknowledged (ingest.otlp_spans) into turns and publish them to
        agent.traces in Kafka transactions: exactly once across kill -9 and restarts."""
        from alignloop.errors import UserError
        from alignloop.ingest.assembler import serve as serve_assembler
        from schemas.settings import ConfigError, load_settings

        try:
            settings = load_settings()
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        try:
            owned = [int(p) for p in partitions.split(",") if p.strip()] or None
        except ValueError:
            raise UserError(f"--partitions takes comma-separated numbers, got {partitions!r}") from None
        serve_assembler(settings, settle_s=settle_s, partitions=owned)

    @ingest.command("openai-log")
    def openai_log(
        file: str = typer.Argument(..., help="A JSONL file of chat-completions request/response logs; '-' = stdin."),
        agent_id: str = typer.Option(None, "--agent-id", help="agent_id for lines that name none."),
    ) -> None:
        """Publish each log line as a Trace; a line that is not JSON or not a chat completion goes to
        agent.traces.dlq with its reason and line number, and the rest goes on."""
        import asyncio
        import sys

        from alignloop.errors import UserError
        from alignloop.ingest.openai_log import ingest_lines
        from schemas.settings import ConfigError, load_settings

        try:
            settings = load_settings()
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        if file == "-":
            stats = asyncio.run(ingest_lines(settings, sys.stdin.buffer, source="openai-log:-",
                                             default_agent=agent_id))
        else:
            path = Path(file)
            if not path.is_file():
                raise UserError(f"no such log file: {file}; give a JSONL file or '-' for stdin")
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            with open(path, "rb") as fh, Progress("{task.description}", BarColumn(), DownloadColumn(),
                                                  TimeRemainingColumn(), transient=True,
                                                  disable=path.stat().st_size < 50 << 20) as bar:
                task = bar.add_task(path.name, total=path.stat().st_size)
                stats = asyncio.run(ingest_lines(settings, fh, source=f"openai-log:{path.name}",
                                                 default_agent=agent_id,
                                                 progress=lambda _n: bar.update(task, completed=fh.tell())))
        typer.echo(f"{stats['lines']} lines: {stats['traces']} traces to agent.traces, "
                   f"{stats['dead']} to agent.traces.dlq" + (f" ({stats['reasons']})" if stats["dead"] else ""))
