"""`alignloop worker`: the stream worker (Faust)."""
from __future__ import annotations

import logging
from typing import Any

import typer


def stream_worker(app: Any, loglevel: str) -> Any:
    """The Faust worker for ``app``, without its terminal spinner: to spin on every log record, faust sets the root
    logger to DEBUG, so each debug line of aiokafka and faust (one per message sent) built a LogRecord that the
    handlers then dropped, ~5% of a spine's CPU (py-spy over a 2-spine drain). Without it the root logger keeps
    ``loglevel``."""
    import faust

    worker = faust.Worker(app, loglevel=loglevel.upper(), quiet=True)
    worker.spinner = None
    return worker


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        metrics_port: int = typer.Option(None, help="Prometheus /metrics port (default: settings; 0 disables)."),
        loglevel: str = typer.Option("warning", help="debug | info | warning | error"),
        role: str = typer.Option("all", help="all | spine (validate, scrub, judge, land) | monitor (drift, "
                                 "escalation, curation over traces.judged: run it as a second process)"),
    ) -> None:
        """Validate → scrub → judge every trace on agent.traces; publish and land them in Delta."""
        from prometheus_client import CollectorRegistry

        from alignloop.configs import load_configs
        from alignloop.errors import UserError
        from alignloop.preflight import check_loglevel, check_port, require_broker, start_metrics
        from alignloop.runner import tune_gc
        from schemas.settings import DEV_PII_KEY, load_settings
        from streams.app import ROLES, create_app

        if role not in ROLES:
            raise UserError(f"--role must be one of {', '.join(ROLES)} (got {role!r})")
        loglevel = check_loglevel(loglevel)
        s = load_settings()
        port = check_port(s.metrics_port if metrics_port is None else metrics_port)
        configs = load_configs(s)
        registry = CollectorRegistry()
        start_metrics(port, registry)  # local mistakes first, then the network
        require_broker(s)
        if s.pii_hmac_key.get_secret_value() == DEV_PII_KEY:
            logging.getLogger("alignloop").warning(
                "ALIGNLOOP_PII_HMAC_KEY is not set: pseudonyms use the development key (fine locally, not in production)")
        app_, _ = create_app(s, configs, registry=registry, role=role)
        tune_gc()  # a long-running stream process: see alignloop.runner.tune_gc
        stream_worker(app_, loglevel).execute_from_commandline()
