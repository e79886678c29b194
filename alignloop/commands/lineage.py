"""`alignloop lineage adapter ID | conversation C`: what an adapter was trained from; where a conversation went."""
from __future__ import annotations

import json

import typer

from alignloop.errors import UserError, exits_now

lineage_app = typer.Typer(help="Lineage: adapter -> datasets, versions, offsets; conversation -> rows, datasets, "
                               "adapters.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(lineage_app, name="lineage")


def _print(out: dict, timing: bool) -> None:
    if not timing:
        out = {k: v for k, v in out.items() if k != "seconds"}
        for t in out.get("tables", {}).values():
            t.pop("seconds", None)
    typer.echo(json.dumps(out, indent=2, sort_keys=True, default=str))


@lineage_app.command("adapter")
@exits_now
def adapter_cmd(adapter_id: str = typer.Argument(..., help="<name>@<version> (or a name: its latest version)."),
                timing: bool = typer.Option(False, "--timing", help="Include the query's wall time.")) -> None:
    """Tables and versions, offset ranges, judge/scrubber/policy versions, registry events and rollouts."""
    from schemas.settings import load_settings
    from trainers.lineage import lineage_adapter

    try:
        out = lineage_adapter(load_settings(), adapter_id)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    _print(out, timing)


@lineage_app.command("conversation")
@exits_now
def conversation_cmd(conversation_id: str = typer.Argument(..., help="The conversation id."),
                     timing: bool = typer.Option(False, "--timing", help="Include per-table query times.")) -> None:
    """Every table row (live and replay), dataset and adapter that includes the conversation."""
    from connectors.erasure_key import erasure_keys
    from schemas.settings import load_settings
    from trainers.lineage import lineage_conversation

    settings = load_settings()
    try:
        out = lineage_conversation(settings, erasure_keys(settings).conv(conversation_id), conversation_id)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not out["tables"]:
        raise UserError(f"no rows of that conversation in any table under {settings.lake}; check the id")
    _print(out, timing)
