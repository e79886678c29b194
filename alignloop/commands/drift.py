"""`alignloop drift ...`: look at drift events and check the drift config."""
from __future__ import annotations

import typer

drift_app = typer.Typer(help="Drift monitoring: events, config.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(drift_app, name="drift")


@drift_app.command("events")
def events(
    since: str = typer.Option(None, "--since", help="ISO date/time (UTC); default 24 h ago."),
    limit: int = typer.Option(50, "--limit", min=1),
) -> None:
    """List drift events from the `drift_events` Delta table, newest first."""
    from datetime import datetime, timedelta, timezone

    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from alignloop.commands.report import parse_time
    from schemas.settings import load_settings
    from connectors.delta_sink import read_table
    from schemas.tables import DRIFT_EVENTS_TABLE

    s = load_settings()
    start = parse_time(since, datetime.now(timezone.utc) - timedelta(days=1))
    t = read_table(s.table_uri(DRIFT_EVENTS_TABLE), storage_options=s.lake_storage_options or None)
    table = Table(title=f"drift events since {start.isoformat()}")
    for col in ("detected_at", "since", "policy", "signal", "magnitude", "z", "examples"):
        table.add_column(col)
    if t.num_rows:
        df = t.to_pandas()
        df = df[df["detected_at"] >= pd.Timestamp(start)].sort_values("detected_at", ascending=False).head(limit)
        for _, r in df.iterrows():
            table.add_row(str(r["detected_at"]), str(r["since"]), r["policy_id"], r["signal"],
                          f"{r['magnitude']:+.4f}", f"{r['z']:.1f}", ", ".join(list(r["example_trace_ids"])[:2]))
    Console().print(table)


@drift_app.command("config")
def config() -> None:
    """Validate configs/drift.yaml (or $ALIGNLOOP_DRIFT_CONFIG) and print the effective settings."""
    import json

    from alignloop.errors import UserError
    from schemas.settings import load_settings
    from streams.drift.config import load_drift_config

    try:
        cfg = load_drift_config(load_settings().drift_config)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(json.dumps(cfg.model_dump(mode="json"), indent=2))
