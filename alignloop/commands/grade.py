"""`alignloop grade --graders FILE --data FILE`: OpenAI-style RFT graders, run locally over generations."""
from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("grade")
    def grade(
        graders: Path = typer.Option(..., "--graders", help="JSON or YAML: one grader object or a list of them."),
        data: Path = typer.Option(..., "--data", help="JSONL: {item, sample} per line, or items with output_text."),
        base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for score_model graders."),
        api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Variable holding its API key."),
        out: Path = typer.Option(None, "--out", help="Write one JSON line of scores per data line here."),
    ) -> None:
        """Print each grader's mean score (and write per-line scores with --out)."""
        import os

        import yaml

        from alignloop.errors import UserError
        from trainers.grading import Grader, GraderError, pair_of

        try:
            spec = yaml.safe_load(graders.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"cannot read graders {graders}: {str(exc).splitlines()[0]}") from None
        specs = spec if isinstance(spec, list) else [spec]
        try:
            built = [Grader(s, base_url=base_url, api_key=os.environ.get(api_key_env)) for s in specs]
        except GraderError as exc:
            raise UserError(f"{graders}: {exc}") from None
        if not data.is_file():
            raise UserError(f"no such data file: {data}")
        items, samples, bad = [], [], 0
        for n, line in enumerate(data.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                item, sample = pair_of(json.loads(line))
            except (json.JSONDecodeError, AttributeError, TypeError):
                bad += 1
                typer.echo(f"line {n}: not a JSON object, skipped", err=True)
                continue
            items.append(item)
            samples.append(sample)
        results = {g.name: g.grade(items, samples) for g in built}
        if out is not None:
            with open(out, "w") as fh:
                for i in range(len(items)):
                    fh.write(json.dumps({name: {"score": r[i].score, **r[i].detail}
                                         for name, r in results.items()}) + "\n")
        for name, r in results.items():
            errors = sum("error" in g.detail for g in r)
            mean = sum(g.score for g in r) / len(r) if r else 0.0
            typer.echo(f"{name}: mean {mean:.4f} over {len(r)} samples" + (f", {errors} errors" if errors else ""))
        if bad:
            typer.echo(f"{bad} data line(s) skipped (not JSON)", err=True)
