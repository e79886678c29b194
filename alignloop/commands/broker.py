"""`alignloop broker start|stop|status` and `alignloop topics create|list`."""
from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _broker():
    from schemas.settings import load_settings
    from connectors.broker import LocalBroker

    s = load_settings()
    return s, LocalBroker(s.home, port=s.broker_port, controller_port=s.broker_controller_port, heap=s.broker_heap)


def register(app: typer.Typer) -> None:
    broker = typer.Typer(help="A local single-node Kafka broker (KRaft) from Maven-resolved jars.",
                         no_args_is_help=True)
    topics = typer.Typer(help="Topics the pipeline uses.", no_args_is_help=True)
    app.add_typer(broker, name="broker")
    app.add_typer(topics, name="topics")

    @broker.command("start")
    def start() -> None:
        """Resolve jars (first run), format storage (first run), start the broker and wait until it listens."""
        from alignloop.errors import UserError
        from connectors.broker import BrokerError

        s, b = _broker()
        was = b.pid()
        try:
            with console.status("starting Kafka (first run resolves jars with Maven)…"):
                pid = b.start()
        except BrokerError as exc:
            raise UserError(str(exc)) from None
        console.print(f"broker {'already running' if was else 'started'}: pid {pid}, bootstrap {b.bootstrap}, "
                      f"data {b.data}")
        if s.kafka_bootstrap != b.bootstrap:
            console.print(f"[yellow]note: ALIGNLOOP_KAFKA_BOOTSTRAP is {s.kafka_bootstrap}; commands will use that, "
                          f"not this broker[/yellow]")

    @broker.command("stop")
    def stop() -> None:
        """Stop the local broker (data is kept)."""
        _, b = _broker()
        console.print("broker stopped" if b.stop() else "broker was not running")

    @broker.command("status")
    def status() -> None:
        """Is the local broker running, and where."""
        _, b = _broker()
        pid = b.pid()
        if pid is None:
            console.print(f"broker not running (data {b.data})")
            raise typer.Exit(1)
        console.print(f"broker running: pid {pid}, bootstrap {b.bootstrap}, listening {b.port_open()}, data {b.data}")

    @topics.command("create")
    def create(partitions: int = typer.Option(None, min=1, help="Partitions per topic (default: settings).")) -> None:
        """Create every topic the pipeline uses (idempotent)."""
        from schemas.settings import load_settings
        from connectors.kafka import create_topics
        from schemas.topics import TOPICS

        s = load_settings()
        result = _run(create_topics(s, partitions), s)
        table = Table(title=f"topics on {s.kafka_bootstrap}")
        for col in ("topic", "status", "contract", "retention", "zone"):
            table.add_column(col)
        for spec in TOPICS.values():
            name = s.topic(spec.name)
            retention = "compacted" if spec.compacted else (
                "forever" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000}d")
            table.add_row(name, result[name], spec.model.__name__ if spec.model else "json",
                          retention, "raw (PII)" if spec.raw_zone else "scrubbed")
        console.print(table)

    @topics.command("list")
    def list_() -> None:
        """List topics on the cluster."""
        from schemas.settings import load_settings
        from connectors.kafka import list_topics

        s = load_settings()
        for t in _run(list_topics(s), s):
            console.print(t)


def _run(coro, settings):
    """Run a Kafka coroutine, turning connection failures into one line naming the fix."""
    from aiokafka.errors import KafkaConnectionError, KafkaError

    from alignloop.errors import UserError

    try:
        return asyncio.run(coro)
    except KafkaConnectionError:
        raise UserError(f"cannot reach Kafka at {settings.kafka_bootstrap}: run `alignloop broker start` or set "
                        "ALIGNLOOP_KAFKA_BOOTSTRAP") from None
    except KafkaError as exc:
        raise UserError(f"Kafka error at {settings.kafka_bootstrap}: {exc}") from None
