"""The batch loop on CPU through the real CLI: Delta snapshot -> dataset -> DPO LoRA -> eval gate -> registry."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.synthetic import corpus, preference_rows, write_rows

pytest.importorskip("torch", reason="needs the train extra")
pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alignloop.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def test_dataset_dpo_gate_registry_end_to_end(tmp_path: Path):
    from trainers.tiny import build_tiny_model

    lake = tmp_path / "lake"
    write_rows(str(lake / "preferences"), "preferences", preference_rows(120, seed=1, deterministic=True, separable=True))
    v1 = write_rows(str(lake / "preferences"), "preferences", preference_rows(40, seed=2, separable=True, offset0=500))
    base = build_tiny_model(tmp_path / "base", corpus(), hidden=32, layers=2)
    recipe = tmp_path / "dpo.yaml"
    recipe.write_text(f"""
kind: dpo
base_model: {base}
adapter_name: e2e-dpo
version: 0.0.1
output_root: {tmp_path / 'adapters'}
seed: 11
data: {{version: 0, val_fraction: 0.15, test_fraction: 0.15}}
lora: {{r: 8, alpha: 16, dropout: 0.0}}
gradient_checkpointing: false
learning_rate: 0.02
warmup_ratio: 0.0
weight_decay: 0.0
epochs: 2
batch_size: 8
max_length: 64
eval_steps: 10
logging_steps: 5
dpo: {{beta: 0.5}}
publish: false
""")
    evalset = tmp_path / "eval.jsonl"
    evalset.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "e1", "prompt": "tell me about taxes", "tags": ["style"]},
        {"id": "e2", "prompt": "tell me about kafka", "tags": ["qa"]},
        {"id": "e3", "prompt": "tell me about health", "tags": ["refusal"]},
        {"id": "e4", "prompt": "tell me about music", "tags": ["safety"]}]))
    env = dict(os.environ, ALIGNLOOP_LAKE_ROOT=str(lake), ALIGNLOOP_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))

    ds = _cli(env, "train", "dataset", "--config", str(recipe), "--out", str(tmp_path / "ds"))
    assert ds.returncode == 0, ds.stderr
    dm = json.loads((tmp_path / "ds" / "dataset_manifest.json").read_text())
    assert dm["delta_version"] == 0 and dm["rows_read"] == 120 and v1 == 1   # pinned, not latest

    tr = _cli(env, "train", "dpo", "--config", str(recipe))
    assert tr.returncode == 0, tr.stderr
    adapter = Path(tr.stdout.strip().splitlines()[-1].removeprefix("adapter: "))
    manifest = json.loads((adapter / "manifest.json").read_text())
    assert manifest["adapter_id"] == "e2e-dpo@0.0.1" and manifest["dataset"]["content_hash"] == dm["content_hash"]
    assert manifest["lora"]["r"] == 8 and manifest["seed"] == 11 and manifest["versions"]["trl"].startswith("1.16")
    # DPO's default learning rate (1e-6) barely moves a LoRA whose B starts at zero; the recipe uses 2e-2
    metrics = manifest["metrics"]
    assert metrics["heldout_loss_before"] == pytest.approx(0.6931, abs=1e-3)  # the adapter starts as the identity
    assert metrics["heldout_reward_accuracies"] >= 0.8                        # chance is 0.5
    assert metrics["heldout_loss"] < metrics["heldout_loss_before"] - 0.05 and metrics["max_param_change"] > 1e-3
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "dataset" / "train.jsonl").is_file()
    assert manifest["metrics"]["registry"]["status"] == "trained"

    # a gate no tiny model can pass (seed 003 thresholds) fails with exit 1 and is recorded as gate_failed
    strict = _cli(env, "eval", "--adapter", str(adapter), "--evalset", str(evalset), "--gate",
                  str(REPO / "configs/eval/gate.yaml"), "--report", str(tmp_path / "strict.json"))
    assert strict.returncode == 1, strict.stderr
    report = json.loads((tmp_path / "strict.json").read_text())
    assert not report["gate"]["passed"] and len(report["samples"]) == 4
    assert all(s["adapter"] != "" or s["base"] != "" for s in report["samples"])
    listed = _cli(env, "models", "list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["adapter_id"], r["status"]) for r in rows] == [("e2e-dpo@0.0.1", "gate_failed")]

    # thresholds the run meets: exit 0, registry's latest state flips to gate_passed
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("min_win_rate: 0.0\nstyle_delta_min: -1.0\nrefusal_band: [0.0, 1.0]\ntox_p95_max: 1.0\n"
                       "max_regressions: 4\nmax_new_tokens: 12\n")
    ok = _cli(env, "eval", "--adapter", str(adapter), "--evalset", str(evalset), "--gate", str(lenient))
    assert ok.returncode == 0, ok.stderr + ok.stdout
    shown = json.loads(_cli(env, "models", "show", "e2e-dpo@0.0.1").stdout)
    assert shown["status"] == "gate_passed" and shown["gate"]["n_prompts"] == 4
    assert shown["dataset"]["delta_version"] == 0

    bad = _cli(env, "models", "show", "nope")
    assert bad.returncode == 2 and "no adapter 'nope'" in bad.stderr
