"""`alignloop train sft|dpo|reward|dataset`, `alignloop eval`, `alignloop models list|show`, `alignloop trainer-runner`.

Commands parse, load settings once and call into ``trainers``; torch is imported only inside the commands that
train or generate, so CLI startup stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

train_app = typer.Typer(help="Train LoRA adapters from a pinned Delta snapshot.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry (Delta `adapters` + topic models.registry).", no_args_is_help=True)

CONFIG_OPT = typer.Option(..., "--config", "-c", help="Recipe YAML, e.g. configs/train/dpo.yaml.")
SET_OPT = typer.Option(None, "--set", help="Override a recipe field: data.version=3 (value parsed as JSON).")


def _user_error(msg: str) -> Exception:
    from alignloop.cli import UserError

    return UserError(msg)


def _overrides(sets: list[str] | None, **named: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in sets or []:
        if "=" not in item:
            raise _user_error(f"--set {item!r}: expected key=value, e.g. --set data.version=3")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    out.update({k: v for k, v in named.items() if v is not None})
    return out


def _train(kind: str, config: Path, sets: list[str] | None, qlora: bool, data_version: int | None,
           publish: bool | None, register: bool) -> None:
    from schemas.settings import load_settings
    from trainers.config import load_train_config

    settings = load_settings()
    try:
        cfg = load_train_config(config, **_overrides(sets, **{"data.version": data_version, "publish": publish,
                                                             "qlora": True if qlora else None}))
        if cfg.kind != kind:
            raise ValueError(f"{config} is a {cfg.kind!r} recipe; run `alignloop train {cfg.kind}` or fix kind:")
        from trainers.train_step import run_training

        manifest = run_training(cfg, settings, register=register)
    except (ValueError, ImportError) as exc:
        raise _user_error(str(exc)) from None
    m = manifest.metrics
    shown = {k: m[k] for k in ("train_loss_first", "train_loss_last", "val_loss", "test_loss", "heldout_reward_accuracies",
                               "accuracy", "ece_before", "ece_after", "max_param_change") if m.get(k) is not None}
    typer.echo(f"trained {manifest.adapter_id} on {manifest.dataset['table']}@{manifest.dataset['delta_version']} "
               f"({manifest.dataset['row_count']}) {json.dumps(shown)}")
    typer.echo(f"adapter: {manifest.path}")


def _kind_command(kind: str, doc: str) -> None:
    def command(config: Path = CONFIG_OPT, set_: Optional[list[str]] = SET_OPT,
                qlora: bool = typer.Option(False, "--qlora", help="4-bit NF4 base via bitsandbytes (CUDA only)."),
                data_version: Optional[int] = typer.Option(None, "--data-version", help="Pin the Delta version."),
                publish: Optional[bool] = typer.Option(None, "--publish/--no-publish",
                                                       help="Publish to models.registry (default: recipe)."),
                register: bool = typer.Option(True, "--register/--no-register", help="Write the registry row.")
                ) -> None:
        _train(kind, config, set_, qlora, data_version, publish, register)

    command.__doc__ = doc
    train_app.command(kind)(command)


_kind_command("sft", "Supervised fine-tuning (TRL SFTTrainer + LoRA) on sft_examples.")
_kind_command("dpo", "Direct preference optimisation (TRL DPOTrainer + LoRA) on preferences.")
_kind_command("reward", "Reward / vote-prediction model (TRL RewardTrainer + LoRA), temperature-calibrated.")


@train_app.command("dataset")
def dataset_cmd(config: Path = CONFIG_OPT, out: Path = typer.Option(..., "--out", help="Output directory."),
                set_: Optional[list[str]] = SET_OPT) -> None:
    """Build the dataset only: splits as JSONL + dataset_manifest.json (no torch needed)."""
    from schemas.settings import load_settings
    from trainers.config import load_train_config
    from trainers.train_step import build_for

    try:
        cfg = load_train_config(config, **_overrides(set_))
        bundle = build_for(cfg, load_settings())
    except ValueError as exc:
        raise _user_error(str(exc)) from None
    path = bundle.write(out)
    man = bundle.manifest
    typer.echo(f"{man['table']}@{man['delta_version']}: {man['row_count']} hash {man['content_hash'][:12]} -> {path}")


def eval_cmd(adapter: Path = typer.Option(..., "--adapter", help="Adapter directory written by `alignloop train`."),
             evalset: Path = typer.Option(..., "--evalset", help="Frozen eval set JSONL (id, prompt, tags)."),
             gate: Optional[Path] = typer.Option(None, "--gate", help="Gate thresholds YAML [configs/eval/gate.yaml]."),
             report: Optional[Path] = typer.Option(None, "--report", help="Report JSON (default <adapter>/eval.json)."),
             publish: bool = typer.Option(False, "--publish/--no-publish", help="Publish the gate event."),
             register: bool = typer.Option(True, "--register/--no-register", help="Write the gate row to `adapters`."),
             llm_judge: bool = typer.Option(False, "--llm-judge/--no-llm-judge", help="Also score with the LLM "
                                            "judge configured in configs/judges.yaml (llm.*; key from "
                                            "ALIGNLOOP_LLM_API_KEY)."),
             persona: Optional[Path] = typer.Option(None, "--persona", help="Persona YAML: seed 003's persona "
                                                    "eval (style, refusal band, toxicity, neutrality) instead."),
             ) -> None:
    """Generate with base and adapter on the eval set, judge both, apply the gate; exit 1 when it fails."""
    if persona is not None:
        from alignloop.commands.persona import persona_eval

        persona_eval(adapter, persona, evalset, report, gate, register, publish, Path("runs"), None)
        return
    from alignloop.bench._results import print_table
    from schemas.settings import load_settings
    from trainers.gate import load_evalset, load_gate
    from trainers.manifest import read_manifest

    settings = load_settings()
    try:
        default_gate = Path("configs/eval/gate.yaml")
        th = load_gate(gate if gate is not None else default_gate if default_gate.is_file() else None)
        rows = load_evalset(evalset)
        manifest = read_manifest(adapter)
        from alignloop.configs import llm_api_key, load_configs
        from trainers.eval_gate import judge_scorer, run_eval, write_report

        configs = load_configs(settings)
        scorer = judge_scorer(configs)
        if llm_judge:
            from connectors.llm_judge import LlmJudgeClient
            from trainers.eval_gate import llm_scorer

            scorer = llm_scorer(scorer, LlmJudgeClient(configs.judges.llm, llm_api_key(configs.judges.llm)))
        result, samples = run_eval(adapter, rows, th, scorer)
        path = write_report(report or adapter / "eval.json", adapter, evalset, result, samples)
        manifest.gate = {**result, "evalset": str(evalset), "report": str(path)}
        manifest.write(adapter)
        if register:
            from trainers.registry import register as register_adapter

            register_adapter(settings, manifest, "gated", publish=publish)
    except (ValueError, ImportError) as exc:
        raise _user_error(str(exc)) from None
    figures = [("prompts", result["n_prompts"]), ("win rate vs base", result["win_rate"]),
               ("style delta", result["style_delta"] if result["style_delta"] is not None else "n/a"),
               ("refusal rate", result["refusal_rate"] if result["refusal_rate"] is not None else "n/a"),
               ("toxicity p95", result["toxicity_p95"]), ("regressions", len(result["regressions"]))]
    figures += [(f"check {k}", "pass" if v else "FAIL") for k, v in result["checks"].items()]
    print_table(f"eval gate: {manifest.adapter_id}", figures)
    typer.echo(f"gate {'passed' if result['passed'] else 'FAILED'}; report: {path}")
    if not result["passed"]:
        raise typer.Exit(1)


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON lines.")) -> None:
    """Latest state of every registered adapter, newest first."""
    from schemas.settings import load_settings
    from trainers.registry import list_adapters

    rows = list_adapters(load_settings())
    if as_json:
        for r in rows:
            typer.echo(json.dumps({k: v for k, v in r.items() if not k.endswith("_json")}, default=str))
        return
    if not rows:
        typer.echo("no adapters registered yet (alignloop train ...)")
    for r in rows:
        typer.echo(f"{r['adapter_id']:<32} {r['kind']:<7} {r['status']:<12} {r['dataset_table']}@"
                   f"{r['dataset_version']} {r['created_at']:%Y-%m-%d %H:%M} {r['path']}")


@models_app.command("show")
def models_show(adapter_id: str = typer.Argument(..., help="<name>@<version> or <name>.")) -> None:
    """The adapter's manifest (dataset, config, metrics) and gate result as JSON."""
    from schemas.settings import load_settings
    from trainers.registry import show_adapter

    try:
        row = show_adapter(load_settings(), adapter_id)
    except ValueError as exc:
        raise _user_error(str(exc)) from None
    manifest = json.loads(row["manifest_json"])
    manifest["status"] = row["status"]
    manifest["gate"] = json.loads(row["gate_json"]) if row["gate_json"] else None
    typer.echo(json.dumps(manifest, indent=2, default=str))


def runner_cmd(max_jobs: Optional[int] = typer.Option(None, "--max-jobs", help="Stop after N jobs."),
               idle_timeout_s: Optional[float] = typer.Option(None, "--idle-timeout-s",
                                                              help="Stop after this long with no request."),
               publish: bool = typer.Option(True, "--publish/--no-publish", help="Jobs publish registry events."),
               ) -> None:
    """Consume train.requests and run each as a local `alignloop train` (+ `eval`) subprocess."""
    import asyncio

    from alignloop.preflight import require_broker
    from alignloop.runner import settings_env
    from schemas.settings import load_settings
    from trainers.runner import serve

    def show(res: Any) -> None:
        typer.echo(f"job {res.request_id} {res.kind}: rc={res.returncode} in {res.seconds:.1f}s log {res.log_path}"
                   + (f" (coalesced {res.coalesced})" if res.coalesced else ""))

    settings = load_settings()
    require_broker(settings)
    asyncio.run(serve(settings, settings_env(settings), max_jobs=max_jobs, idle_timeout_s=idle_timeout_s,
                      publish=publish, on_result=show))


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
    app.add_typer(models_app, name="models")
    app.command("eval")(eval_cmd)
    app.command("trainer-runner")(runner_cmd)
