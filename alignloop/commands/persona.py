"""`alignloop persona lint|eval`, `alignloop data synth`, `alignloop fit` (seed 003's persona pipeline).

Commands parse and call into ``schemas.persona`` / ``trainers.persona``; torch loads only in the commands that
embed, train or generate.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

persona_app = typer.Typer(help="Personas (seed 003): lint the YAML, evaluate a persona adapter.",
                          no_args_is_help=True)
data_app = typer.Typer(help="Synthetic persona data (seed 003): generate + filter SFT rows.", no_args_is_help=True)

PERSONA_OPT = typer.Option(..., "--persona", "-p", help="Persona YAML, e.g. configs/personas/neutral_concise.yaml.")
SEED_OPT = typer.Option(42, "--seed", help="One seed for sampling, splits, init and data order.")


def _user_error(msg: str) -> Exception:
    from alignloop.errors import UserError

    return UserError(msg)


@persona_app.command("lint")
def lint_cmd(paths: list[Path] = typer.Argument(..., help="Persona YAML files."),
             as_json: bool = typer.Option(False, "--json", help="One JSON line per file.")) -> None:
    """Check each persona against seed 003's rules; print every issue; exit 1 if any file has an error."""
    from schemas.persona import lint_persona_file

    failed = 0
    for p in paths:
        res = lint_persona_file(p)
        failed += not res.ok
        if as_json:
            typer.echo(json.dumps({"path": str(p), "passed": res.ok,
                                   "issues": [i.model_dump() for i in res.issues]}))
            continue
        status = "PASS" if res.ok else "FAIL"
        extra = f" ({len(res.errors)} errors, {len(res.warnings)} warnings)" if res.issues else ""
        typer.echo(f"{status} {p}{extra}")
        for issue in res.issues:
            typer.echo(f"  {issue}")
    typer.echo(f"{len(paths) - failed}/{len(paths)} personas pass")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(persona_app, name="persona")
    app.add_typer(data_app, name="data")
