"""`alignloop rollout ...`: export the current flags for flagd, and show which variant serves a conversation.

The current flags come from ``--flags FILE.json`` (a JSON list of `RolloutFlag` records, or one record, or
``{"flags": [...]}``, folded in order, latest version per agent; any bad record is an error), or, without
``--flags``, from the compacted ``rollout.flags`` topic (read to its end with a group-less consumer; bad
records there are skipped with a warning, the last good flag of that agent staying in force).
"""
from __future__ import annotations

import json
from pathlib import Path

import typer

from alignloop.errors import UserError

rollout_app = typer.Typer(help="Rollouts: flagd export, variant assignment.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")


def load_flags(path: Path) -> dict:
    """Agent id -> current `RolloutFlag` from a JSON file; a bad record is a `UserError` naming it."""
    from streams.rollout.flags import FlagError, apply, parse_flag

    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read --flags {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"--flags {path} is not JSON: {exc}") from None
    records = doc.get("flags", doc) if isinstance(doc, dict) else doc
    records = [records] if isinstance(records, dict) else records
    if not isinstance(records, list):
        raise UserError(f"--flags {path}: expected a list of RolloutFlag records")
    current: dict = {}
    for i, record in enumerate(records):
        try:
            apply(current, parse_flag(record))
        except FlagError as exc:
            raise UserError(f"--flags {path} record {i}: {exc}") from None
    return current


def load_flags_from_topic(timeout_s: float) -> dict:
    import asyncio
    import sys

    from connectors.kafka import read_topic
    from schemas.settings import load_settings
    from schemas.topics import ROLLOUT
    from streams.rollout.flags import fold_records

    settings = load_settings()
    topic = settings.topic(ROLLOUT)
    try:
        records = asyncio.run(read_topic(settings, topic, timeout_s=timeout_s))
    except Exception as exc:  # any client error is one line for the user (broker down, auth, ...)
        raise UserError(f"cannot read {topic} from {settings.kafka_bootstrap}: {exc}") from None
    current, skipped = fold_records(r.value for r in records)
    for reason in skipped:
        print(f"alignloop: skipped {topic} {reason}", file=sys.stderr)
    return current


def _current(flags: Path | None, timeout_s: float) -> dict:
    return load_flags(flags) if flags is not None else load_flags_from_topic(timeout_s)


def _select(current: dict, agents: list[str] | None) -> list:
    if not agents:
        return list(current.values())
    missing = [a for a in agents if a not in current]
    if missing:
        raise UserError(f"no flag for agent {', '.join(missing)} (known: {', '.join(sorted(current)) or 'none'})")
    return [current[a] for a in agents]


@rollout_app.command("export")
def export(
    agent: list[str] = typer.Option(None, "--agent", help="Agent id (repeatable); default every agent."),
    fmt: str = typer.Option("flagd", "--format", help="Output format: flagd."),
    out: Path = typer.Option(None, "--out", help="File to write; default stdout."),
    flags: Path = typer.Option(None, "--flags", help="JSON file of RolloutFlag records; default: the topic."),
    timeout_s: float = typer.Option(5.0, "--timeout", help="Seconds to wait for the topic."),
) -> None:
    """Write a flagd flag-definition file: OpenFeature flagd clients then pick the same variant as alignloop."""
    from streams.rollout.flagd import dumps, export_flagd

    if fmt != "flagd":
        raise UserError(f"--format {fmt!r} is not supported (supported: flagd)")
    text = dumps(export_flagd(_select(_current(flags, timeout_s), agent)))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}", err=True)


@rollout_app.command("assign")
def assign(
    agent: str = typer.Option(..., "--agent", help="Agent id."),
    keys: Path = typer.Option(..., "--keys", help="File with one conversation id per line ('-' for stdin)."),
    flags: Path = typer.Option(None, "--flags", help="JSON file of RolloutFlag records; default: the topic."),
    timeout_s: float = typer.Option(5.0, "--timeout", help="Seconds to wait for the topic."),
) -> None:
    """Print `key<TAB>variant` for each conversation id, from the current flags."""
    import sys

    from streams.rollout.bucketing import assign as assign_variant

    (flag,) = _select(_current(flags, timeout_s), [agent])
    try:
        lines = sys.stdin.read().splitlines() if str(keys) == "-" else keys.read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read --keys {keys}: {exc.strerror}") from None
    out = sys.stdout
    for key in lines:
        if key:
            out.write(f"{key}\t{assign_variant(flag, key)}\n")
