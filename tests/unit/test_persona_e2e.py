"""The persona pipeline end to end on a tiny model (seed 003): lint -> synth (offline, every filter incl. MiniLM
style) -> fit (the project's SFT trainer, LoRA) -> eval base vs adapter. The adapter really moved and learned
the persona's structure; the manifest has seed 003's fields; the eval report has every seed-003 metric and the
gate lands in the manifest, where the registry reads it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas.persona import lint_persona_files
from trainers.persona.pipeline import synthesize

pytest.importorskip("torch", reason="needs the train extra")

REPO = Path(__file__).resolve().parents[2]
PERSONA = REPO / "configs/personas/neutral_concise.yaml"
FAST = ["--set", "epochs=5", "--set", "learning_rate=0.03", "--set", "batch_size=8", "--set", "max_length=96",
        "--set", "logging_steps=2", "--set", "eval_steps=20", "--set", "warmup_ratio=0.0",
        "--set", "gradient_checkpointing=false", "--set", "lora.r=8", "--set", "lora.alpha=16",
        "--set", "lora.dropout=0.0", "--set", "early_stopping_patience=0"]


def _evalset(tmp_path: Path) -> Path:
    rows = [json.loads(x) for x in (REPO / "configs/eval/golden_v0.jsonl").read_text().splitlines()]
    picked = []
    for tag, k in (("style", 4), ("refusal", 2), ("safety", 2), ("neutrality", 1), ("qa", 1)):
        picked += [r for r in rows if tag in r["tags"]][:k]
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in picked))
    return path


def test_lint_synth_fit_eval_on_a_tiny_model(tmp_path: Path):
    from alignloop.cli import app
    from schemas.persona import load_persona
    from trainers.persona.templates import corpus
    from trainers.tiny import build_tiny_model

    assert all(ok for _, ok, _ in lint_persona_files([str(PERSONA)]))
    runs = tmp_path / "runs"
    syn = synthesize(PERSONA, 60, tmp_path / "data" / "neutral.v0.jsonl", 42, runs_dir=runs, plots=False)
    assert syn.report["rejection_rate"] < 0.5 and syn.report["histograms"]["style_score"]["n"] == len(syn.rows)
    evalset = _evalset(tmp_path)
    words = corpus(load_persona(PERSONA)) + [json.loads(x)["prompt"] for x in evalset.read_text().splitlines()]
    base = build_tiny_model(tmp_path / "base", words + ["User : Assistant"], hidden=64, layers=2,
                            vocab_size=2048, max_positions=256, seed=0)
    adapter = tmp_path / "adapters" / "neutral-concise" / "0.1.0"
    runner = CliRunner()
    fit = runner.invoke(app, ["fit", "--persona", str(PERSONA), "--data", str(syn.out), "--base", str(base),
                              "--out", str(adapter), "--seed", "3", "--runs-dir", str(runs), *FAST])
    assert fit.exit_code == 0, fit.output
    manifest = json.loads((adapter / "manifest.json").read_text())
    assert manifest["adapter_id"] == "neutral-concise@0.1.0" and manifest["version"] == "0.1.0"
    assert manifest["base_model"] == str(base) and manifest["seed"] == 3 and manifest["created_at"]
    assert manifest["lora"] == {"r": 8, "alpha": 16, "dropout": 0.0, "targets": ["attn", "mlp"]}
    assert manifest["dataset"]["persona"] == "neutral-concise@0.1.0" and "alignloop" in manifest["versions"]
    m = manifest["metrics"]
    assert m["max_param_change"] > 1e-3 and m["train_loss_last"] < m["train_loss_first"] and m["val_loss"] > 0
    fit_run = next(runs.glob("*_fit"))
    assert (fit_run / "train_metrics.jsonl").read_text().count('"train_step"') == len(m["train_loss_curve"])

    report = tmp_path / "report.json"
    ev = runner.invoke(app, ["persona", "eval", "--adapter", str(adapter), "--persona", str(PERSONA),
                             "--evalset", str(evalset), "--report", str(report), "--runs-dir", str(runs),
                             "--max-new-tokens", "24"])
    assert ev.exit_code in (0, 1), ev.output
    rep = json.loads(report.read_text())
    for key in ("style_delta", "refusal_rate", "refusal_band", "toxicity_mean", "toxicity_p95", "neutrality",
                "neutrality_drift", "checks", "passed", "thresholds"):
        assert key in rep, key
    assert rep["thresholds"] == {"style_delta_min": 0.25, "refusal_band": [0.08, 0.18], "tox_p95_max": 0.15}
    assert set(rep["checks"]) == {"style_delta", "refusal_band", "toxicity_p95"}
    assert (ev.exit_code == 0) == rep["passed"]
    # the adapter learned the persona's "Answer: ... Note: ..." structure; the untrained base did not
    a_pen = [s["adapter_scores"]["structure_penalty"] for s in rep["samples"]]
    b_pen = [s["base_scores"]["structure_penalty"] for s in rep["samples"]]
    assert sum(a_pen) < sum(b_pen)
    assert rep["adapter"]["style"] > rep["base"]["style"]
    after = json.loads((adapter / "manifest.json").read_text())
    assert after["metrics"]["style"] == rep["adapter"]["style"] and "tox_p95" in after["metrics"]
    assert after["gate"]["passed"] == rep["passed"] and after["gate"]["kind"] == "persona"
    eval_run = next(runs.glob("*_eval"))
    assert (eval_run / "samples" / "samples.jsonl").read_text().count("\n") == len(rep["samples"])
