"""`alignloop bench reward`: reward model on a synthetic preference set with a known ground truth.

Labels are drawn from a Bradley-Terry model over hidden word utilities (trainers/synthetic.py), so the best
possible accuracy (``bayes_accuracy``: the true model's own accuracy on the same test labels) is known. Targets:
accuracy >= 0.8 and ECE <= 0.05 after temperature scaling (fitted on validation, measured on test).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer


def run(pairs: int, scale: float, epochs: float, ensemble: int, seed: int, hidden: int) -> dict:
    import json

    import numpy as np

    from trainers.config import TrainConfig
    from trainers.dataset import build_dataset
    from trainers.reward_trainer import train_reward
    from trainers.synthetic import corpus, preference_rows, write_rows
    from trainers.tiny import build_tiny_model

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alignloop-bench-rm-") as tmp:
        root = Path(tmp)
        rows = preference_rows(pairs, seed=seed, scale=scale)
        write_rows(str(root / "lake" / "preferences"), "preferences", rows)
        base = build_tiny_model(root / "base", corpus(), hidden=hidden, layers=2, seed=seed)
        cfg = TrainConfig(kind="reward", base_model=str(base), adapter_name="bench-rm", output_root=root / "out",
                          seed=seed, learning_rate=1e-2, epochs=epochs, batch_size=32, max_length=64, eval_steps=50,
                          early_stopping_patience=3, logging_steps=10, warmup_ratio=0.0, weight_decay=0.0,
                          gradient_checkpointing=False, lora={"r": 8, "alpha": 16, "dropout": 0.0},
                          data={"val_fraction": 0.2, "test_fraction": 0.3, "dedup": False},
                          reward={"ensemble_size": ensemble})
        bundle = build_dataset("reward", cfg.data, str(root / "lake"), seed)
        metrics = train_reward(cfg, bundle, cfg.output_dir)
        p_true = {r["pref_id"]: json.loads(r["metadata_json"])["p_true"] for r in rows}
        bayes = float(np.mean([p_true[r["id"]] > 0.5 for r in bundle.test]))
    return {
        "accuracy": metrics["accuracy"], "ece_before": metrics["ece_before"], "ece_after": metrics["ece_after"],
        "temperature": metrics["temperature"], "bayes_accuracy": bayes, "test_pairs": metrics["test_pairs"],
        "train_pairs": len(bundle.train), "ensemble_size": ensemble, "label_scale": scale, "hidden": hidden,
        "reliability_after": metrics["reliability_after"], "seconds": time.perf_counter() - started,
        "targets": {"accuracy_min": 0.8, "ece_after_max": 0.05},
        "targets_met": metrics["accuracy"] >= 0.8 and metrics["ece_after"] <= 0.05,
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("reward")
    def reward(pairs: int = typer.Option(3000, help="Synthetic preference pairs (train/val/test 50/20/30)."),
               scale: float = typer.Option(3.0, help="Bradley-Terry scale of the true reward (higher = less noise)."),
               epochs: float = typer.Option(3.0, help="Training epochs."),
               ensemble: int = typer.Option(1, help="Ensemble members."),
               seed: int = typer.Option(7), hidden: int = typer.Option(32, help="Tiny model width.")) -> None:
        """Reward-model accuracy and calibration (ECE before/after temperature scaling) vs a known truth."""
        from alignloop.bench._results import print_table, write_result

        figures = run(pairs, scale, epochs, ensemble, seed, hidden)
        print_table("reward model (synthetic, known ground truth)", [
            (k, figures[k]) for k in ("accuracy", "bayes_accuracy", "ece_before", "ece_after", "temperature",
                                      "test_pairs", "train_pairs", "seconds", "targets_met")])
        typer.echo(f"wrote {write_result('reward', figures)}")
