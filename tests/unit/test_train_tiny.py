"""Tiny-model training: SFT and reward LoRA adapters really learn (parameters move, loss falls, accuracy rises).

The base is a 2-layer LlamaForCausalLM (hidden 32) with a word-level tokenizer trained on the fly; nothing is
downloaded. DPO is covered end to end through the CLI in tests/e2e/test_train_e2e.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.config import TrainConfig
from trainers.dataset import build_dataset
from trainers.synthetic import corpus, preference_rows, sft_rows, write_rows

pytest.importorskip("torch", reason="needs the train extra")  # the project's CI installs it (Makefile EXTRAS)

FAST = dict(seed=3, batch_size=8, max_length=64, logging_steps=2, eval_steps=10, warmup_ratio=0.0, weight_decay=0.0,
            gradient_checkpointing=False, lora={"r": 8, "alpha": 16, "dropout": 0.0})


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    from trainers.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("base"), corpus(), hidden=32, layers=2))


def test_sft_adapter_learns_the_responses(tiny_base: str, tmp_path: Path):
    from trainers.sft_trainer import train_sft

    write_rows(str(tmp_path / "sft_examples"), "sft_examples", sft_rows(48, seed=1))
    cfg = TrainConfig(kind="sft", base_model=tiny_base, adapter_name="sft", output_root=tmp_path / "out",
                      learning_rate=3e-2, epochs=4, **FAST)
    bundle = build_dataset("sft", cfg.data, str(tmp_path), cfg.seed)
    metrics = train_sft(cfg, bundle, cfg.output_dir)
    assert metrics["max_param_change"] > 1e-3
    assert metrics["train_loss_last"] < metrics["train_loss_first"] - 0.3
    assert metrics["val_loss"] < metrics["val_loss_curve"][0] + 1e-6 and metrics["test_loss"] > 0
    saved = json.loads((cfg.output_dir / "adapter_config.json").read_text())
    assert saved["r"] == 8 and {"q_proj", "v_proj", "gate_proj", "down_proj"} <= set(saved["target_modules"])


def test_reward_model_learns_and_writes_calibration(tiny_base: str, tmp_path: Path):
    from trainers.reward_trainer import train_reward

    write_rows(str(tmp_path / "preferences"), "preferences",
               preference_rows(200, seed=5, deterministic=True, separable=True))
    cfg = TrainConfig(kind="reward", base_model=tiny_base, adapter_name="rm", output_root=tmp_path / "out",
                      learning_rate=1e-2, epochs=2, data={"val_fraction": 0.2, "test_fraction": 0.2},
                      reward={"ensemble_size": 2}, **FAST)
    bundle = build_dataset("reward", cfg.data, str(tmp_path), cfg.seed)
    metrics = train_reward(cfg, bundle, cfg.output_dir)
    assert metrics["accuracy"] >= 0.8
    assert metrics["train_loss_last"] < metrics["train_loss_first"]
    assert sum(b["count"] for b in metrics["reliability_after"]) == len(bundle.test) == metrics["test_pairs"]
    calib = json.loads((cfg.output_dir / "calibration.json").read_text())
    assert calib["members"] == ["member-0", "member-1"] and calib["temperature"] > 0
    assert [m["seed"] for m in metrics["members"]] == [3, 4]
    # the ensemble scores rows for information-gain selection: [members, rows] probabilities
    from trainers.manifest import AdapterManifest
    from trainers.reward_trainer import load_ensemble_scorer

    AdapterManifest(adapter_id="rm@0", name="rm", version="0", kind="reward", base_model=tiny_base,
                    path=str(cfg.output_dir), lora={}, qlora=False, seed=3, dataset={}, config={},
                    metrics={}).write(cfg.output_dir)
    probs = load_ensemble_scorer(cfg.output_dir)(bundle.test[:5])
    assert probs.shape == (2, 5) and ((probs > 0.5) & (probs <= 1)).all()  # chosen wins, calibrated


def test_qlora_without_cuda_is_one_clear_line(tmp_path: Path):
    cfg = tmp_path / "r.yaml"
    cfg.write_text(f"kind: dpo\nbase_model: {tmp_path}\nadapter_name: q\ndata: {{lake_root: {tmp_path}}}\n")
    proc = subprocess.run([sys.executable, "-m", "alignloop.cli", "train", "dpo", "--config", str(cfg), "--qlora"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("alignloop: --qlora needs a CUDA GPU (4-bit NF4 via bitsandbytes); drop --qlora "
                                   "to train LoRA in bf16/fp32 on this machine")


def test_cli_startup_does_not_import_torch():
    code = "import sys, alignloop.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False False"
