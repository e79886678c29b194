"""Contract suite over every registered trainer (``trainers.TRAINERS``): registering a trainer gets it tested.

For each kind: its recipe validates at construction (bad values raise; the loader's message is one line naming
the field); a few steps on a tiny local model move its LoRA weights; the manifest and the ``adapters`` row pin the
dataset's Delta version and content hash; the same seed gives the same adapter, bit for bit.

The base is a 2-layer LlamaForCausalLM (hidden 16) with a word-level tokenizer built on the fly; nothing is
downloaded. Each kind trains twice (3 steps each).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from schemas.settings import Settings
from trainers import TRAINERS
from trainers.config import TABLE_FOR_KIND, Kind, load_train_config
from trainers.dataset import content_hash
from trainers.synthetic import corpus, preference_rows, sft_rows, write_rows

REPO = Path(__file__).resolve().parents[2]
KINDS = sorted(TRAINERS)

# Synthetic rows per source table; a trainer reading a new table adds its generator here.
ROWS = {
    "sft_examples": lambda n, seed, offset0: sft_rows(n, seed=seed, offset0=offset0),
    "preferences": lambda n, seed, offset0: preference_rows(n, seed=seed, deterministic=True, separable=True,
                                                            offset0=offset0),
}

BAD_VALUES = [("lora.r", 0), ("lora.dropout", 1.0), ("learning_rate", -1.0), ("batch_size", 0), ("epochs", 0),
              ("adapter_name", "has space"), ("data.val_fraction", 0.7), ("max_length", 2), ("lerning_rate", 0.1)]


def test_every_kind_is_registered_once_with_its_table():
    assert sorted(get_args(Kind)) == KINDS
    for kind, entry in TRAINERS.items():
        assert entry.kind == kind and entry.table == TABLE_FOR_KIND[kind]
        assert entry.table in ROWS, f"add a synthetic row generator for {entry.table!r} to ROWS"
        assert callable(entry.load())


@pytest.mark.parametrize("kind", KINDS)
def test_default_recipe_validates(kind: str):
    entry = TRAINERS[kind]
    cfg = load_train_config(REPO / entry.recipe)
    assert isinstance(cfg, entry.config) and cfg.kind == kind and cfg.data.table == entry.table


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_bad_values_fail_at_construction_in_one_line(kind: str, field: str, value: Any, tmp_path: Path):
    entry = TRAINERS[kind]
    raw: dict[str, Any] = {"kind": kind, "base_model": "tiny", "adapter_name": "ok"}
    node = raw
    *parents, leaf = field.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    with pytest.raises(ValidationError):
        entry.config(**raw)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"kind: {kind}\nbase_model: tiny\nadapter_name: ok\n")
    with pytest.raises(ValueError) as err:
        load_train_config(recipe, **{field: value})
    message = str(err.value)
    assert "\n" not in message and repr(field) in message, message


# --- training: tiny model, a few steps ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("torch", reason="needs the train extra")  # the project's CI installs it (Makefile EXTRAS)
    from trainers.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("base"), corpus(), hidden=16, layers=2, heads=2))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each source table at two versions: training pins version 0, so the rows appended at 1 must stay out."""
    root = tmp_path_factory.mktemp("lake")
    counts = {}
    for table, make in ROWS.items():
        uri = str(root / table)
        assert write_rows(uri, table, make(40, 1, 0)) == 0
        assert write_rows(uri, table, make(20, 2, 1000)) == 1
        counts[table] = 40
    return {"root": str(root), "v0_rows": counts}


def _config(kind: str, base: str, lake_root: str, out: Path, seed: int):  # noqa: ANN202 - the kind's config
    return TRAINERS[kind].config(
        kind=kind, base_model=base, adapter_name=f"contract-{kind}", output_root=out, seed=seed,
        data={"lake_root": lake_root, "version": 0, "val_fraction": 0.2, "test_fraction": 0.2, "dedup": False},
        lora={"r": 4, "alpha": 8, "dropout": 0.1}, max_steps=3, learning_rate=2e-2, batch_size=8, max_length=48,
        warmup_ratio=0.0, weight_decay=0.0, logging_steps=1, eval_steps=50, early_stopping_patience=0,
        gradient_checkpointing=False, publish=False)


def _train(kind: str, base: str, lake: dict[str, Any], out: Path, seed: int = 7, register: bool = False):  # noqa: ANN202
    from trainers.train_step import run_training

    settings = Settings(home=out / "home", lake_root=lake["root"])
    return run_training(_config(kind, base, lake["root"], out, seed), settings, register=register), settings


def _adapter_tensors(adapter_dir: str) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def trained(tiny_base: str, lake: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One registered run per kind, shared by the checks below."""
    return {kind: _train(kind, tiny_base, lake, tmp_path_factory.mktemp(kind), register=True) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_training_moves_the_lora_weights(kind: str, trained: dict[str, Any]):
    manifest, _ = trained[kind]
    tensors = _adapter_tensors(manifest.path)
    lora_b = {n: t for n, t in tensors.items() if "lora_B" in n}
    assert lora_b, f"no LoRA weights in {sorted(tensors)[:5]}"
    # PEFT starts every lora_B at zero: any non-zero entry was put there by training
    assert max(float(t.abs().max()) for t in lora_b.values()) > 0
    assert manifest.metrics["max_param_change"] > 0


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_and_registry_row_pin_the_dataset(kind: str, trained: dict[str, Any], lake: dict[str, Any]):
    from trainers.registry import list_adapters

    manifest, settings = trained[kind]
    entry = TRAINERS[kind]
    ds = manifest.dataset
    assert manifest.kind == kind and ds["table"] == entry.table and ds["delta_version"] == 0
    assert sum(ds["row_count"].values()) == lake["v0_rows"][entry.table]  # version 1's rows stayed out
    splits = {}
    for name in ("train", "val", "test"):
        lines = (Path(manifest.path) / "dataset" / f"{name}.jsonl").read_text().splitlines()
        splits[name] = [json.loads(line) for line in lines]
    assert content_hash(splits) == ds["content_hash"]
    assert json.loads((Path(manifest.path) / "manifest.json").read_text())["dataset"] == ds
    (row,) = [r for r in list_adapters(settings) if r["adapter_id"] == manifest.adapter_id]
    assert (row["kind"], row["dataset_table"], row["dataset_version"], row["dataset_hash"]) == \
        (kind, entry.table, 0, ds["content_hash"])


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_adapter(kind: str, trained: dict[str, Any], tiny_base: str, lake: dict[str, Any],
                                tmp_path: Path):
    import torch

    first, _ = trained[kind]
    again, _ = _train(kind, tiny_base, lake, tmp_path)
    assert again.dataset["content_hash"] == first.dataset["content_hash"]
    same = {k: v for k, v in first.metrics.items() if k != "registry"}  # losses, accuracies, parameter change
    assert json.dumps(again.metrics, sort_keys=True) == json.dumps(same, sort_keys=True)  # NaN-safe comparison
    a, b = _adapter_tensors(first.path), _adapter_tensors(again.path)
    assert sorted(a) == sorted(b) and all(torch.equal(a[n], b[n]) for n in a)
