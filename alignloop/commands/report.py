"""`alignloop report`: HTML + PNG report of pipeline health, judge scores, drift, calibration and label flow."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import typer


def parse_time(value: str | None, default: datetime) -> datetime:
    """ISO date or datetime (UTC if no zone), or 'now'."""
    from alignloop.errors import UserError

    if value is None:
        return default
    if value == "now":
        return datetime.now(timezone.utc)
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"bad time {value!r}: use ISO format, e.g. 2026-11-01 or 2026-11-01T12:00:00Z") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        since: str = typer.Option(None, "--since", help="Start (ISO date/time, UTC); default 24 h before --until."),
        until: str = typer.Option(None, "--until", help="End (ISO date/time, UTC, or 'now'); default now."),
        out: Path = typer.Option(Path("report"), "--out", help="Directory for index.html and the PNGs."),
        replay: list[str] = typer.Option([], "--replay", help="Add a 'replay vs live' section for this replay "
                                                              "(repeatable; see alignloop replay diff)."),
    ) -> None:
        """Write an HTML report (matplotlib PNGs) of the Grafana views, read from the Delta tables."""
        from rich.console import Console

        from alignloop.errors import UserError
        from alignloop.report import build_report
        from schemas.settings import load_settings

        s = load_settings()
        end = parse_time(until, datetime.now(timezone.utc))
        start = parse_time(since, end - timedelta(days=1))
        if start >= end:
            raise UserError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
        from alignloop.replay_views import diff_replay

        diffs = [diff_replay(s, name) for name in replay]  # an unknown replay fails here, before writing
        result = build_report(s.table_uri, start, end, out, s.lake_storage_options or None, replay_diffs=diffs)
        c = result["counts"]
        Console().print(f"wrote {result['index']} ({len(result['figures'])} figures; {c['traces']} traces, "
                        f"{c['drift_events']} drift events, {c['calibration_rows']} calibration rows, "
                        f"{c['labels']} labels)")
