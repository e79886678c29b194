"""`alignloop schema export`."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    schema = typer.Typer(help="Event contracts.", no_args_is_help=True)
    app.add_typer(schema, name="schema")

    @schema.command("export")
    def export(out: Path = typer.Option(Path("schemas/json"), help="Directory for the JSON Schema files.")) -> None:
        """Write a JSON Schema file per event model, for agents in other languages."""
        from alignloop.errors import UserError
        from schemas.export import export_json_schemas

        try:
            paths = list(export_json_schemas(out))
        except OSError as exc:
            raise UserError(f"cannot write JSON Schemas to {out} ({exc.strerror or exc}); pick a writable --out "
                            "directory") from None
        for path in paths:
            typer.echo(str(path))
