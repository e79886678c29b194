"""`alignloop prompts generate` (seed 001): templated (offline), evolutionary or free-form prompts as JSONL."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

prompts_app = typer.Typer(help="Prompt generation (seed 001): templated, evolutionary, free-form.",
                          no_args_is_help=True)


def _split(value: str, known: tuple[str, ...], what: str) -> list[str]:
    from alignloop.errors import UserError

    items = [v.strip() for v in value.split(",") if v.strip()]
    if bad := [v for v in items if v not in known]:
        raise UserError(f"--{what}: unknown {bad}; known: {','.join(known)}")
    return items


@prompts_app.command("generate")
def generate_cmd(
        out: Path = typer.Option(..., "--out", help="Output JSONL."),
        n: int = typer.Option(100, "--n", min=1, help="Prompts to generate (before constraints and dedup)."),
        seed: int = typer.Option(42, "--seed"),
        categories: str = typer.Option("general,reasoning,social,code-lite", "--categories"),
        difficulty: str = typer.Option("easy,medium,hard", "--difficulty"),
        mode: str = typer.Option("templated", "--mode", help="templated | evolve | free-form."),
        seeds: Optional[Path] = typer.Option(None, "--seeds", help="evolve: seed prompts JSONL [templated ones]."),
        instruction: Optional[str] = typer.Option(None, "--instruction", help="free-form: what prompts to write."),
        endpoint: Optional[str] = typer.Option(None, "--endpoint", help="OpenAI-compatible base URL (…/v1); key "
                                               "from ALIGNLOOP_SYNTH_API_KEY."),
        model: str = typer.Option("llama3.1:8b", "--model"),
        constraints: Optional[Path] = typer.Option(None, "--constraints", help="YAML: max_chars, forbid, "
                                                   "require_any: {category: [terms]}."),
) -> None:
    """Generate prompts by category and difficulty; constraints and SimHash dedup applied; JSONL out."""
    from alignloop.errors import UserError
    from trainers import promptgen as pg

    cats = _split(categories, pg.CATEGORIES, "categories")
    levels = _split(difficulty, pg.DIFFICULTIES, "difficulty")
    if mode not in ("templated", "evolve", "free-form"):
        raise UserError(f"--mode {mode!r}: one of templated, evolve, free-form")
    try:
        cons = pg.Constraints.load(constraints)
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    client = None
    if endpoint:
        from alignloop.configs import llm_api_key
        from connectors.llm_chat import ChatClient
        from schemas.llm_judge_config import LlmJudgeConfig

        cfg = LlmJudgeConfig(base_url=endpoint, model=model, api_key_env="ALIGNLOOP_SYNTH_API_KEY")
        client = ChatClient(cfg, llm_api_key(cfg), seed=seed)
    counts: dict[str, int] = {}
    if mode == "templated":
        rows = pg.templated(cats, levels, n, seed)
    elif mode == "evolve":
        base = ([json.loads(x) for x in seeds.read_text().splitlines() if x.strip()] if seeds
                else pg.templated(cats, levels, max(10, n // 4), seed))
        base = [{"category": cats[0], "difficulty": "medium", **b} for b in base if b.get("prompt")]
        if not base:
            raise UserError("--seeds holds no {\"prompt\": ...} lines")
        rows = pg.evolve(base, n, seed, client, counts)
    else:
        if client is None or not instruction:
            raise UserError("--mode free-form needs --endpoint URL and --instruction TEXT")
        rows = pg.free_form(instruction, n, client, cats[0], counts)
    kept, rejected = pg.finish(rows, cons, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    typer.echo(json.dumps({"mode": mode, "generated": len(rows), "written": len(kept), "rejected": rejected,
                           **({"endpoint": {**counts, **client.counts}} if client else {})}))
    typer.echo(f"wrote {len(kept)} prompts to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")
