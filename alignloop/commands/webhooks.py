"""`alignloop webhooks run`: signed HTTP webhooks for drift, training, gate, rollout and erasure events."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    hooks = typer.Typer(help="Webhooks out (Standard Webhooks signatures, retries, dead letters).",
                        no_args_is_help=True)
    app.add_typer(hooks, name="webhooks")

    @hooks.command("run")
    def run(
        config: Path = typer.Option(Path("configs/webhooks.yaml"), "--config", help="Webhooks YAML."),
        metrics_port: int = typer.Option(0, "--metrics-port", help="Serve Prometheus /metrics here (0: off)."),
        once: bool = typer.Option(False, "--once", help="Deliver what is waiting, stop after 5 s idle."),
    ) -> None:
        """Deliver events from drift.events, models.registry and audit.log until stopped."""
        from alignloop.errors import UserError
        from alignloop.webhooks import run_webhooks
        from schemas.settings import ConfigError, load_settings

        try:
            settings = load_settings()
            runner = run_webhooks(settings, config, metrics_port=metrics_port, stop_when_idle_s=5.0 if once else None)
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        except KeyboardInterrupt:
            return
        done = {(s.labels["webhook"], s.labels["outcome"]): int(s.value)
                for m in runner.registry.collect() for s in m.samples if s.name.endswith("_total")}
        typer.echo(", ".join(f"{w} {o}={n}" for (w, o), n in sorted(done.items())) or "no deliveries")
