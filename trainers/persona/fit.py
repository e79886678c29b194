"""``train_sft`` for a persona (seed 003 §7): synthetic JSONL -> 90/10 split -> the project's SFT trainer (TRL +
LoRA) -> adapter + manifest.json; and ``run_eval`` (seed 003 §8): base vs adapter on a frozen eval set.

The trainer, model loading, generation and the manifest are the project's own (``trainers.sft_trainer``,
``trainers.eval_gate.generate``, ``schemas.registry.AdapterManifest``); this module only maps persona data onto
them. Seed 003's manifest fields: adapter_id, version, base_model, lora, metrics (val_loss, and after eval style,
refusal, tox_p95), seed, created (``created_at``) and the code version (``versions['alignloop']``).
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from schemas.persona import Persona, load_persona
from trainers.config import TrainConfig
from trainers.dataset import DatasetBundle
from trainers.manifest import AdapterManifest, read_manifest


def read_rows(path: str | Path, persona: Persona) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"data {p} not found; make it with `alignloop data synth --persona ... --out {p}`")
    rows = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ins, out = row["instruction"], row["output"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"{p}:{n}: not a seed-003 SFT row (needs instruction and output)") from None
        if row.get("persona_id") not in (None, persona.id):
            raise ValueError(f"{p}:{n}: row is for persona {row['persona_id']!r}, not {persona.id!r}; pass the "
                             "persona the data was synthesised for")
        prompt = ins + (f"\n{row['input']}" if row.get("input") else "")
        rows.append({"id": row.get("id", f"row-{n}"), "conversation_id": row.get("id", f"row-{n}"),
                     "prompt": prompt, "completion": out})
    if len(rows) < 2:
        raise ValueError(f"{p} has {len(rows)} usable rows; synthesise more (--n)")
    return rows


def split(rows: list[dict[str, Any]], seed: int, val_fraction: float = 0.1) -> tuple[list, list]:
    order = list(range(len(rows)))
    random.Random(f"split:{seed}").shuffle(order)
    n_val = max(1, round(len(rows) * val_fraction))
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [rows[i] for i in train], [rows[i] for i in val]


def fit_persona(persona_path: str | Path, data_path: str | Path, base_model: str, out_dir: str | Path, seed: int,
                *, qlora: bool = False, overrides: dict[str, Any] | None = None) -> AdapterManifest:
    from trainers.model_loading import require_train_deps
    from trainers.sft_trainer import train_sft

    require_train_deps()
    persona = load_persona(persona_path)
    rows = read_rows(data_path, persona)
    cfg = TrainConfig(**{"kind": "sft", "base_model": base_model, "adapter_name": persona.id,
                         "version": persona.version, "seed": seed, "qlora": qlora, **(overrides or {})})
    train, val = split(rows, seed, cfg.data.val_fraction)
    content = hashlib.sha256(Path(data_path).read_bytes()).hexdigest()
    dataset = {"source": "jsonl", "path": str(Path(data_path).resolve()), "content_hash": content,
               "row_count": len(rows), "train": len(train), "val": len(val), "persona": persona.tag,
               "persona_hash": persona.content_hash(), "table": None, "delta_version": None}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = train_sft(cfg, DatasetBundle("sft", train, val, [], dataset), out)
    import torch

    manifest = AdapterManifest(
        adapter_id=f"{persona.id}@{persona.version}", name=persona.id, version=persona.version, kind="sft",
        base_model=base_model, path=str(out.resolve()),
        lora={"r": cfg.lora.r, "alpha": cfg.lora.alpha, "dropout": cfg.lora.dropout, "targets": cfg.lora.targets},
        qlora=qlora, seed=seed, dataset=dataset, config={**json.loads(cfg.model_dump_json()),
                                                          "persona": persona.model_dump(mode="json")},
        metrics=metrics, device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
    manifest.write(out)
    return manifest


def run_eval(adapter_dir: str | Path, evalset: list[dict[str, Any]], persona: Persona, *,
             max_new_tokens: int = 64, batch_size: int = 8, style_delta_min: float = 0.25,
             tox_p95_max: float = 0.15, style: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(decision, per-prompt samples): greedy generations of the adapter and of the base (adapter disabled)."""
    from peft import PeftModel

    from trainers.eval_gate import generate
    from trainers.hf_common import quiet_hf, seed_everything
    from trainers.model_loading import load_base
    from trainers.persona.metrics import decide, score_texts, summarise

    quiet_hf()
    manifest = read_manifest(adapter_dir)
    seed_everything(manifest.seed)
    model, tok = load_base(manifest.base_model)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    prompts = [e["prompt"] for e in evalset]
    adapted_text = generate(model, tok, prompts, max_new_tokens, batch_size)
    with model.disable_adapter():
        base_text = generate(model, tok, prompts, max_new_tokens, batch_size)
    if style is None:
        from trainers.persona.style import StyleScorer

        style = StyleScorer(persona)
    base = score_texts(prompts, base_text, persona, style)
    adapted = score_texts(prompts, adapted_text, persona, style)
    result = decide(summarise(evalset, base), summarise(evalset, adapted), persona,
                    style_delta_min=style_delta_min, tox_p95_max=tox_p95_max)
    result.update(persona=persona.tag, adapter_id=manifest.adapter_id, n_prompts=len(evalset))
    samples = [{"id": e["id"], "tags": e["tags"], "prompt": e["prompt"], "base": bt, "adapter": at,
                "base_scores": b, "adapter_scores": a}
               for e, bt, at, b, a in zip(evalset, base_text, adapted_text, base, adapted)]
    return result, samples
