"""`alignloop scrub`: scrub a text or a trace file the way the stream does (same key, same config)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("scrub")
    def scrub(
        text: str = typer.Argument(None, help="Text to scrub; '-' reads stdin. Omit with --trace."),
        trace: Path = typer.Option(None, "--trace", help="A Trace JSON file: scrub every field with scrub_trace."),
        tier: str = typer.Option(None, "--tier", help="structured | full (default: configs/scrub.yaml)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result and findings as JSON."),
    ) -> None:
        """Print the scrubbed text (typed pseudonyms) and what was found; nothing leaves the process."""
        from alignloop.errors import UserError
        from schemas.settings import ConfigError, load_settings
        from streams.scrub import build_scrubber, load_scrub_config, scrub_trace

        try:
            settings = load_settings()
            cfg = load_scrub_config(settings.scrub_config)
            if tier is not None:
                if tier not in ("structured", "full"):
                    raise ValueError(f"--tier must be structured or full, not {tier!r}")
                cfg = cfg.model_copy(update={"tier": tier})
            scrubber = build_scrubber(settings, cfg)
        except (ValueError, ConfigError) as exc:
            raise UserError(str(exc)) from None
        if trace is not None:
            from pydantic import ValidationError

            from schemas.trace import Trace

            try:
                t = Trace.model_validate_json(trace.read_bytes())
            except (OSError, ValidationError) as exc:
                raise UserError(f"cannot read a Trace from {trace}: {str(exc).splitlines()[0]}") from None
            clean, findings = scrub_trace(t, scrubber)
            typer.echo(json.dumps({"trace": clean.model_dump(mode="json"),
                                   "findings": [f.model_dump() for f in findings]}, indent=2))
            return
        if text is None:
            raise UserError('give a text to scrub (alignloop scrub "call me at 555-123-4567"), "-" for stdin, '
                            "or --trace FILE")
        src = sys.stdin.read() if text == "-" else text
        res = scrubber.scrub(src)
        if as_json:
            typer.echo(json.dumps({"text": res.text, "findings": [
                {"kind": f.kind, "start": f.start, "end": f.end, "score": f.score, "replacement": f.replacement}
                for f in res.findings]}, indent=2))
            return
        typer.echo(res.text)
        for kind, n in sorted(res.counts().items()):
            typer.echo(f"  {kind}: {n}", err=True)
