"""`alignloop completions generate` (seed 001): K completions per prompt from one or more backends, cached."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

completions_app = typer.Typer(help="Completion generation (seed 001): K samples per prompt, several backends.",
                              no_args_is_help=True)


def _config(backends_file: Optional[Path], quick: list[str]):
    from alignloop.errors import UserError
    from schemas.settings import read_yaml
    from trainers.completions import CompletionsConfig

    raw: dict = read_yaml(backends_file, "backends config", "fix the file") if backends_file else {}
    raw.setdefault("backends", [])
    for item in quick:
        if "=" not in item or "@" not in item:
            raise UserError(f"--backend {item!r}: expected NAME=BASE_URL@MODEL")
        name, rest = item.split("=", 1)
        url, model = rest.rsplit("@", 1)
        raw["backends"].append({"name": name, "client": {"base_url": url, "model": model,
                                                         "api_key_env": "ALIGNLOOP_SYNTH_API_KEY"}})
    try:
        return CompletionsConfig(**raw)
    except Exception as exc:  # pydantic ValidationError: one line naming the field
        raise UserError(f"bad backends config: {str(exc).splitlines()[0]} "
                        f"({str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else ''})") from None


@completions_app.command("generate")
def generate_cmd(prompts: Path = typer.Option(..., "--prompts", help="JSONL with a 'prompt' per line."),
                 out: Path = typer.Option(..., "--out", help="Output JSONL: one row per prompt."),
                 backends: Optional[Path] = typer.Option(None, "--backends", help="YAML: backends: [{name, client: "
                                                         "{base_url, model, api_key_env, concurrency, "
                                                         "max_cost_per_hour...}}], temperature, top_p."),
                 backend: Optional[list[str]] = typer.Option(None, "--backend", help="NAME=BASE_URL@MODEL "
                                                             "(repeatable; key from ALIGNLOOP_SYNTH_API_KEY)."),
                 k: int = typer.Option(2, "--k", min=1, help="Completions per prompt per backend."),
                 seed: int = typer.Option(42, "--seed"),
                 cache: Path = typer.Option(Path(".alignloop/completions_cache.sqlite"), "--cache",
                                            help="Content-fingerprint cache (SQLite).")) -> None:
    """K completions per prompt per backend, temperature/top-p varied per sample, cached by fingerprint."""
    from alignloop.configs import llm_api_key
    from alignloop.errors import UserError
    from connectors.llm_chat import ChatClient
    from trainers.completions import Cache, generate

    cfg = _config(backends, backend or [])
    if not prompts.is_file():
        raise UserError(f"prompts file {prompts} not found; make one with `alignloop prompts generate`")
    rows = [json.loads(x) for x in prompts.read_text().splitlines() if x.strip()]
    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("prompt"), str)]
    if not rows:
        raise UserError(f"{prompts} holds no {{\"prompt\": ...}} lines")
    clients = {b.name: ChatClient(b.client, llm_api_key(b.client), seed=seed) for b in cfg.backends}
    store = Cache(cache)
    try:
        out_rows, stats = generate(rows, cfg, k, seed, store, clients)
    finally:
        store.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out_rows))
    typer.echo(json.dumps(stats.as_dict()))
    typer.echo(f"wrote {sum(len(r['completions']) for r in out_rows)} completions for {len(out_rows)} prompts to "
               f"{out}")


@completions_app.command("pairs")
def pairs_cmd(completions: Path = typer.Option(..., "--completions", help="JSONL from `completions generate`."),
              out: Path = typer.Option(..., "--out", help="Preference JSONL (schemas/preference.py)."),
              publish: bool = typer.Option(False, "--publish/--no-publish", help="Also publish them to "
                                           "feedback.preferences (landed in Delta `preferences`, once per id).")
              ) -> None:
    """Judge each prompt's completions with the fast judges; a clear winner over the worst is a preference pair."""
    import asyncio

    from alignloop.configs import load_configs
    from alignloop.errors import UserError
    from schemas.settings import load_settings
    from streams.judges import build_fast_judges
    from trainers.completion_pairs import preference_pairs

    if not completions.is_file():
        raise UserError(f"completions file {completions} not found; make one with `alignloop completions generate`")
    try:
        rows = [json.loads(x) for x in completions.read_text().splitlines() if x.strip()]
    except json.JSONDecodeError as exc:
        raise UserError(f"{completions} is not JSONL: {exc}") from None
    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("prompt"), str)]
    settings = load_settings()
    configs = load_configs(settings)
    prefs, outcomes = preference_pairs(rows, build_fast_judges(configs.policy, configs.judges))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(p.model_dump_json() + "\n" for p in prefs))
    if publish and prefs:
        from alignloop.publish import publish as publish_records
        from schemas.topics import PREFERENCES

        records = [(p.pref_id.encode(), p.model_dump_json().encode()) for p in prefs]
        asyncio.run(publish_records(settings, settings.topic(PREFERENCES), records))
    typer.echo(json.dumps(dict(outcomes)))
    typer.echo(f"wrote {len(prefs)} preference pairs from {len(rows)} prompts to {out}"
               + (f" and published them to {settings.topic('feedback.preferences')}" if publish and prefs else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(completions_app, name="completions")
