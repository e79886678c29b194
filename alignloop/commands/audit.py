"""`alignloop audit verify | show | mirror`: the hash-chained audit trail (``audit.log`` + Delta ``audit``)."""
from __future__ import annotations

import asyncio
import json

import typer

from alignloop.errors import UserError

audit_app = typer.Typer(help="The audit trail: verify the hash chain, show entries, catch the Delta mirror up.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def _run(coro):
    from connectors.audit import AuditError
    from schemas.settings import load_settings

    settings = load_settings()
    try:
        return asyncio.run(coro(settings))
    except AuditError as exc:
        raise UserError(str(exc)) from None
    except Exception as exc:  # broker down, auth, ...: one line
        raise UserError(f"cannot read the audit trail from {settings.kafka_bootstrap}: {exc}") from None


@audit_app.command("verify")
def verify_cmd() -> None:
    """Check every entry's hash and its link to the one before, and that the Delta mirror agrees. Exit 1 if not."""
    from connectors.audit import verify

    report = _run(verify)
    typer.echo(report.line())
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("show")
def show_cmd(last: int = typer.Option(20, "--last", min=1, help="How many of the newest entries.")) -> None:
    """Print the newest entries, one JSON object per line."""
    from connectors.audit import read_entries

    for entry, _ in _run(lambda s: read_entries(s, last=last)):
        typer.echo(json.dumps(entry.model_dump(mode="json"), sort_keys=True))


@audit_app.command("mirror")
def mirror_cmd() -> None:
    """Land every entry the Delta mirror lacks (after a writer died between the topic and the table)."""
    from connectors.audit import mirror

    typer.echo(f"{_run(mirror)} rows written to the audit table")
