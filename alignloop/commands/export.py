"""`alignloop export FORMAT --table T`: a pinned Delta snapshot to TRL, HF datasets, OpenAI or Argilla files."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        fmt: str = typer.Argument(..., metavar="FORMAT",
                                  help="trl-sft | trl-preference | hf | openai-sft | openai-dpo | openai-rft | argilla"),
        table: str = typer.Option(..., "--table", help="Delta table: traces, sft_examples or preferences."),
        out: Path = typer.Option(..., "--out", help="Output: a .jsonl file, or a directory (hf and argilla: always)."),
        version: int = typer.Option(None, "--version", min=0, help="Delta version to read (default: the latest)."),
        where: list[str] = typer.Option(None, "--where", help="SQL condition on the table's columns; repeat to AND "
                                                              "them, e.g. --where \"outcome = 'pass'\"."),
        min_alpha: float = typer.Option(None, "--min-alpha",
                                        help="Agreement gate for human labels (default: settings export_min_alpha)."),
        rescrub: bool = typer.Option(True, "--rescrub/--no-rescrub",
                                     help="Pass every text through the strict scrub tier again (defence in depth; "
                                          "about 85% of the export time)."),
    ) -> None:
        """Export rows with a lineage sidecar (table, version, offsets, filters, row count, content hash)."""
        from alignloop.errors import UserError
        from schemas.settings import ConfigError, load_settings
        from trainers.export.run import ExportError, run_export

        try:
            settings = load_settings()
            res = run_export(settings, fmt, table, out=out, version=version, where=where or [],
                             min_alpha=settings.export_min_alpha if min_alpha is None else min_alpha,
                             rescrub=rescrub)
        except (ConfigError, ExportError) as exc:
            raise UserError(str(exc)) from None
        lin = res.lineage
        typer.echo(f"{lin['row_count']} of {lin['rows_read']} rows of {table}@{lin['delta_version']} -> {fmt}: "
                   + ", ".join(str(p) for p in res.files[:3]) + (" ..." if len(res.files) > 3 else "")
                   + f" (lineage: {res.sidecar}, content {lin['content_hash'][:12]})")
