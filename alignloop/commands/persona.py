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


RUNS_OPT = typer.Option(Path("runs"), "--runs-dir", help="Where the run directory runs/<ts>_<sha>_<kind>/ goes.")


def _synth_config(config: Optional[Path], endpoint: Optional[str], model: Optional[str], offline: bool):
    from schemas.llm_judge_config import LlmJudgeConfig
    from schemas.synth_config import load_synth_config

    default = Path("configs/synth.yaml")
    cfg = load_synth_config(config if config is not None else default if default.is_file() else None)
    if offline:
        return cfg.model_copy(update={"endpoint": None})
    if endpoint or model:
        base = cfg.endpoint or LlmJudgeConfig(api_key_env="ALIGNLOOP_SYNTH_API_KEY")
        upd = {k: v for k, v in (("base_url", endpoint), ("model", model)) if v}
        cfg = cfg.model_copy(update={"endpoint": base.model_copy(update=upd)})
    return cfg


@data_app.command("synth")
def synth_cmd(persona: Path = PERSONA_OPT,
              n: int = typer.Option(..., "--n", min=1, help="Rows to plan (accepted rows are fewer)."),
              out: Path = typer.Option(..., "--out", help="Output JSONL, e.g. data/sft/socratic_skeptical.v0.jsonl."),
              seed: int = SEED_OPT,
              strict: bool = typer.Option(False, "--strict", help="Exit 1 unless every row was generated, the "
                                          "rejection rate is under 20% and the refusal fraction is in band."),
              config: Optional[Path] = typer.Option(None, "--config", help="Synth settings [configs/synth.yaml]."),
              endpoint: Optional[str] = typer.Option(None, "--endpoint", help="OpenAI-compatible base URL (…/v1); "
                                                     "key from ALIGNLOOP_SYNTH_API_KEY (endpoint.api_key_env)."),
              model: Optional[str] = typer.Option(None, "--model", help="Model name the endpoint serves."),
              offline: bool = typer.Option(False, "--offline", help="Template generator even if an endpoint is set."),
              fresh: bool = typer.Option(False, "--fresh", help="Discard the raw rows of an earlier run."),
              no_style: bool = typer.Option(False, "--no-style", help="Skip the embedding style filter."),
              runs_dir: Path = RUNS_OPT) -> None:
    """Generate persona SFT rows (seed 003 §6), filter them, band refusals; resumes an interrupted run."""
    from schemas.settings import ConfigError
    from trainers.persona.pipeline import synthesize

    client = None
    try:
        cfg = _synth_config(config, endpoint, model, offline)
        if cfg.endpoint is not None:
            from alignloop.configs import llm_api_key
            from connectors.llm_chat import ChatClient

            client = ChatClient(cfg.endpoint, llm_api_key(cfg.endpoint), seed=seed)
        res = synthesize(persona, n, out, seed, cfg=cfg, client=client, runs_dir=runs_dir, fresh=fresh,
                         style=not no_style, progress=True)
    except (ValueError, ConfigError, ImportError) as exc:
        raise _user_error(str(exc)) from None
    r = res.report
    from alignloop.bench._results import print_table

    rows = [("generator", r["generator"]), ("planned", n), ("generated", r["n_generated"]),
            ("resumed", r["resumed_rows"]), ("rejection rate", r["rejection_rate"] or 0.0)]
    rows += [(f"rejected: {k}", v) for k, v in r["rejected_by_filter"].items() if v]
    rows += [("refusal before banding", r["banding"]["before"]), ("refusal after banding", r["banding"]["after"]),
             ("refusal band", str(r["banding"]["band"])), ("rows out", r["rows_out"])]
    if client is not None:
        rows += [(f"endpoint {k}", v) for k, v in r["endpoint_counts"].items() if v]
    print_table(f"data synth: {r['persona']}@{r['persona_version']}", rows)
    typer.echo(f"wrote {r['rows_out']} rows to {out}; report {res.run_dir / 'synth_report.json'}")
    for p in res.problems:
        typer.echo(f"warning: {p}", err=True)
    if strict and res.problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(persona_app, name="persona")
    app.add_typer(data_app, name="data")
