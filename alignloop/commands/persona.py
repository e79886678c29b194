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
                                          "hard-filter (v0) rejection rate is under 20% and the refusal fraction "
                                          "is in the persona's band."),
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
            ("resumed", r["resumed_rows"]), ("rejection rate", r["rejection_rate"] or 0.0),
            ("  hard filters (v0)", r["rejection_rate_v0"] or 0.0), ("  smart filters (v1)", r["rejection_rate_v1"] or 0.0)]
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


def _overrides(config: Optional[Path], sets: Optional[list[str]]) -> dict:
    from alignloop.commands.train import _overrides as parse_sets
    from schemas.settings import read_yaml

    raw: dict = {}
    if config is not None:
        if not config.is_file():
            raise _user_error(f"training config {config} not found; pass --config configs/train/sft.yaml")
        raw = {k: v for k, v in read_yaml(config, "training config", "fix the recipe").items()
               if k not in ("kind", "base_model", "adapter_name", "version", "seed", "qlora", "output_root")}
    for key, value in parse_sets(sets).items():
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return raw


def fit_cmd(persona: Path = PERSONA_OPT,
            data: Path = typer.Option(..., "--data", help="Synthetic SFT JSONL from `alignloop data synth`."),
            base: str = typer.Option(..., "--base", help="Base model: local directory or hub id."),
            out: Optional[Path] = typer.Option(None, "--out", help="Adapter dir [adapters/<persona>/<version>]."),
            seed: int = SEED_OPT,
            qlora: bool = typer.Option(False, "--qlora", help="4-bit NF4 base via bitsandbytes (CUDA only)."),
            config: Optional[Path] = typer.Option(None, "--config", help="Recipe YAML for the hyperparameters "
                                                  "(configs/train/sft.yaml; seed 003's defaults otherwise)."),
            set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a field: epochs=2 (JSON value)."),
            register: bool = typer.Option(False, "--register/--no-register", help="Write the registry row."),
            runs_dir: Path = RUNS_OPT) -> None:
    """Train the persona's LoRA/QLoRA SFT adapter with the project's SFT trainer; writes manifest.json."""
    from schemas.persona import load_persona
    from schemas.settings import ConfigError
    from trainers.persona.rundir import new_run_dir, write_run

    try:
        p = load_persona(persona)
        out = out or Path("adapters") / p.id / p.version
        from trainers.persona.fit import fit_persona

        manifest = fit_persona(persona, data, base, out, seed, qlora=qlora, overrides=_overrides(config, set_))
        if register:
            from schemas.settings import load_settings
            from trainers.registry import register as register_adapter

            manifest.metrics["registry"] = register_adapter(load_settings(), manifest, "trained", publish=False)
            manifest.write(out)
    except (ValueError, ImportError, ConfigError) as exc:
        raise _user_error(str(exc)) from None
    m = manifest.metrics
    run = new_run_dir(runs_dir, "fit")
    step = manifest.config.get("logging_steps", 1)
    with open(run / "train_metrics.jsonl", "w") as fh:
        for k, loss in enumerate(m.get("train_loss_curve", []), 1):
            fh.write(json.dumps({"event": "train_step", "step": k * step, "loss": loss}) + "\n")
    write_run(run, config={"command": "fit", "persona_file": str(persona), "data": str(data), "base": base,
                           "out": str(out), "seed": seed, "train": manifest.config},
              files={"manifest.json": json.loads(manifest.model_dump_json())})
    shown = {k: m[k] for k in ("train_loss_first", "train_loss_last", "val_loss", "max_param_change", "steps")
             if m.get(k) is not None}
    typer.echo(f"trained {manifest.adapter_id} on {manifest.dataset['row_count']} rows {json.dumps(shown)}")
    typer.echo(f"adapter: {manifest.path}")
    typer.echo(f"run: {run}")


def persona_eval(adapter: Path, persona: Path, evalset: Path, report: Optional[Path], gate: Optional[Path],
                 register: bool, publish: bool, runs_dir: Path, max_new_tokens: Optional[int]) -> None:
    from alignloop.bench._results import print_table
    from schemas.persona import load_persona
    from schemas.settings import ConfigError
    from trainers.gate import load_evalset, load_gate
    from trainers.manifest import read_manifest
    from trainers.persona.rundir import new_run_dir, write_run

    try:
        p = load_persona(persona)
        default_gate = Path("configs/eval/gate.yaml")
        th = load_gate(gate if gate is not None else default_gate if default_gate.is_file() else None)
        rows = load_evalset(evalset)
        manifest = read_manifest(adapter)
        from trainers.persona.fit import run_eval

        result, samples = run_eval(adapter, rows, p, max_new_tokens=max_new_tokens or th.max_new_tokens,
                                   batch_size=th.batch_size, style_delta_min=th.style_delta_min,
                                   tox_p95_max=th.tox_p95_max)
        run = new_run_dir(runs_dir, "eval")
        path = report or run / "eval_report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"adapter": str(adapter), "evalset": str(evalset), **result, "samples": samples}
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        write_run(run, config={"command": "persona eval", "adapter": str(adapter), "persona": p.tag,
                               "evalset": str(evalset), "thresholds": result["thresholds"]},
                  files={} if path == run / "eval_report.json" else {"eval_report.json": payload},
                  samples=samples[:50])
        # seed 003's manifest metrics, and the gate the registry / rollout read
        a = result["adapter"]
        manifest.metrics.update(style=a["style"], refusal=a["refusal_rate"], tox_p95=a["toxicity_p95"],
                                style_delta=result["style_delta"])
        manifest.gate = {k: v for k, v in result.items() if k not in ("base", "adapter")} | {
            "kind": "persona", "evalset": str(evalset), "report": str(path)}
        manifest.write(adapter)
        if register:
            from schemas.settings import load_settings
            from trainers.registry import register as register_adapter

            register_adapter(load_settings(), manifest, "gated", publish=publish)
    except (ValueError, ImportError, ConfigError) as exc:
        raise _user_error(str(exc)) from None
    b, a = result["base"], result["adapter"]

    def fmt(x: object) -> object:
        return "n/a" if x is None else x
    figures = [("prompts", result["n_prompts"]), ("style base", fmt(b["style"])), ("style adapter", fmt(a["style"])),
               ("style delta", fmt(result["style_delta"])), ("refusal rate", fmt(result["refusal_rate"])),
               ("refusal band", str(result["refusal_band"])), ("toxicity mean", fmt(result["toxicity_mean"])),
               ("toxicity p95", fmt(result["toxicity_p95"])), ("neutrality", fmt(result["neutrality"])),
               ("neutrality drift", fmt(result["neutrality_drift"]))]
    figures += [(f"check {k}", "pass" if v else "FAIL") for k, v in result["checks"].items()]
    print_table(f"persona eval: {manifest.adapter_id} ({p.tag})", figures)
    typer.echo(f"gate {'passed' if result['passed'] else 'FAILED'}; report: {path}")
    if not result["passed"]:
        raise typer.Exit(1)


@persona_app.command("eval")
def persona_eval_cmd(adapter: Path = typer.Option(..., "--adapter", help="Adapter dir written by `alignloop fit`."),
                     persona: Path = PERSONA_OPT,
                     evalset: Path = typer.Option(Path("configs/eval/golden_v0.jsonl"), "--evalset",
                                                  help="Frozen eval set JSONL (id, prompt, tags)."),
                     report: Optional[Path] = typer.Option(None, "--report", help="Report JSON [run dir]."),
                     gate: Optional[Path] = typer.Option(None, "--gate", help="Thresholds [configs/eval/gate.yaml]."),
                     register: bool = typer.Option(False, "--register/--no-register",
                                                   help="Write the gate row to `adapters` (rollouts read it)."),
                     publish: bool = typer.Option(False, "--publish/--no-publish", help="Publish the gate event."),
                     max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1),
                     runs_dir: Path = RUNS_OPT) -> None:
    """Base vs adapter: style adherence, refusal rate vs the persona's band, toxicity, neutrality; exit 1 on fail."""
    persona_eval(adapter, persona, evalset, report, gate, register, publish, runs_dir, max_new_tokens)


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_cmd)
    app.add_typer(persona_app, name="persona")
    app.add_typer(data_app, name="data")
