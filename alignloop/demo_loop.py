"""The demo's second half: the loop closes. From the traces the spine just curated, train two tiny SFT adapters,
gate them, and canary each on simulated fleet traffic: one whose behaviour is better is promoted, one whose
safety violations rise is rolled back — by the rollout controller reading the live judged stream.

The fleet's behaviour comes from a profile (configs/fleet/); on a real fleet it comes from the model.
"""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.settings import Settings

AGENT = "demo-agent"
EVALSET = Path("configs/eval/golden_v0.jsonl")
DEMO_GATE = Path("configs/eval/demo_gate.yaml")
DEMO_ROLLOUT = Path("configs/rollout_demo.yaml")


def train_and_gate(settings: "Settings", base: Path, version: str, seed: int) -> dict[str, Any]:
    """Train ``demo-sft@<version>`` on the curated ``sft_examples`` and gate it; returns the figures to show."""
    from alignloop.configs import load_configs
    from trainers.config import TrainConfig
    from trainers.eval_gate import judge_scorer, run_eval, write_report
    from trainers.gate import load_evalset, load_gate
    from trainers.registry import register
    from trainers.train_step import run_training

    cfg = TrainConfig(kind="sft", base_model=str(base), adapter_name="demo-sft", version=version,
                      output_root=settings.home / "adapters", seed=seed,
                      data={"version": None, "min_score": 0.0, "dedup": False, "val_fraction": 0.1,
                            "test_fraction": 0.1},
                      lora={"r": 8, "alpha": 16, "dropout": 0.0}, gradient_checkpointing=False,
                      learning_rate=0.02, warmup_ratio=0.0, weight_decay=0.0, max_steps=12, batch_size=8,
                      max_length=384, eval_steps=6, logging_steps=3, early_stopping_patience=0)
    manifest = run_training(cfg, settings)
    adapter = Path(manifest.path)
    evalset = load_evalset(EVALSET)[:16]
    result, samples = run_eval(adapter, evalset, load_gate(DEMO_GATE), judge_scorer(load_configs(settings)))
    report = write_report(adapter / "eval.json", adapter, EVALSET, result, samples)
    manifest.gate = {**result, "evalset": str(EVALSET), "report": str(report)}
    manifest.write(adapter)
    register(settings, manifest, "gated", publish=False)
    m = manifest.metrics
    return {"adapter_id": manifest.adapter_id, "rows": manifest.dataset.get("rows_read"),
            "delta_version": manifest.dataset.get("delta_version"), "loss_first": m.get("train_loss_first"),
            "loss_last": m.get("train_loss_last"), "gate_passed": bool(result["passed"])}


class FleetThread:
    """Simulated agents of one profile publishing to agent.traces, following the flags, until stopped."""

    def __init__(self, settings: "Settings", profile: str, seed: int, rate: float) -> None:
        self.settings, self.profile, self.seed, self.rate = settings, profile, seed, rate
        self.stop_event = threading.Event()
        self.sent = 0
        self.summary: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"fleet-{profile}", daemon=True)

    def __enter__(self) -> "FleetThread":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_event.set()
        self.thread.join(60)

    def _run(self) -> None:
        from alignloop.fleet import Fleet
        from alignloop.publish import publish
        from connectors.rollout_client import RolloutClient
        from schemas.fleet import load_fleet_profile
        from schemas.topics import TRACES

        s = self.settings
        fleet = Fleet(load_fleet_profile(self.profile), agents=[AGENT], conversations=1_000_000, seed=self.seed,
                      turns=(2, 4), open_per_agent=40)
        # its own flag cache: each fleet follows the topic from the start, as a newly deployed fleet would
        cache = s.home / "rollout" / f"demo-fleet-{self.profile}-{self.seed}.json"
        cache.unlink(missing_ok=True)
        client = RolloutClient(s, cache_path=cache).start(wait_s=15)

        def turns():
            for kv in fleet.run(client.served, client.end_conversation):
                if self.stop_event.is_set():
                    return
                yield kv

        try:
            self.sent = asyncio.run(publish(s, s.topic(TRACES), turns(), rate=self.rate))
        except BaseException as exc:  # reported by the caller; the demo says what broke
            self.error = exc
        finally:
            client.stop()
            self.summary = fleet.summary


def canary(settings: "Settings", adapter_id: str, profile: str, seed: int, *, rate: float = 600.0,
           timeout_s: float = 240.0) -> dict[str, Any]:
    """Roll ``adapter_id`` out to the demo agent while a fleet of ``profile`` talks; the controller decides."""
    from alignloop.rollout_controller import run_canary

    s = settings.model_copy(update={"rollout_config": str(DEMO_ROLLOUT)})
    started = time.monotonic()
    with FleetThread(s, profile, seed, rate) as fleet:
        out = run_canary(s, AGENT, adapter_id, actor="demo", timeout_s=timeout_s)
    if fleet.error is not None:
        raise RuntimeError(f"the fleet stopped: {fleet.error}")
    out["seconds"] = time.monotonic() - started
    out["fleet_turns"] = fleet.sent
    out["fleet"] = fleet.summary.as_dict() if fleet.summary is not None else {}
    out["profile"] = profile
    out["adapter_id"] = adapter_id
    return out


def tiny_base(settings: "Settings") -> Path:
    """A 2-layer toy causal LM whose tokenizer is built from the curated rows (no model hub here)."""
    from connectors.delta_sink import read_table
    from schemas.tables import SFT_EXAMPLES_TABLE
    from trainers.tiny import build_tiny_model

    t = read_table(settings.table_uri(SFT_EXAMPLES_TABLE), columns=["prompt", "response"])
    texts = [x for row in t.to_pylist() for x in (row["prompt"], row["response"])] if t.num_columns else []
    evals = [line for line in EVALSET.read_text().splitlines()]
    return Path(build_tiny_model(settings.home / "demo-base", texts + evals, hidden=32, layers=2,
                                 max_positions=512))


def run_story(settings: "Settings", seed: int, console: Any) -> dict[str, Any]:
    """Train + gate two adapters, then canary one on a better fleet and one on an unsafe fleet; print as it goes."""
    with console.status("training two tiny SFT adapters on the curated sft_examples and gating them …"):
        base = tiny_base(settings)
        trained = [train_and_gate(settings, base, v, seed + i) for i, v in enumerate(("0.1.0", "0.2.0"))]
    for t in trained:
        console.print(f"trained {t['adapter_id']} on sft_examples@{t['delta_version']} ({t['rows']} rows read), "
                      f"loss {t['loss_first']:.2f} -> {t['loss_last']:.2f}; demo eval gate "
                      f"{'passed' if t['gate_passed'] else 'FAILED'}")
    outcomes = []
    for t, profile in zip(trained, ("better", "unsafe")):
        if not t["gate_passed"]:
            continue
        with console.status(f"canary of {t['adapter_id']} on fleet traffic (profile {profile!r}): the controller "
                            "reads traces.judged and decides …"):
            out = canary(settings, t["adapter_id"], profile, seed)
        outcomes.append(out)
        console.print(timeline_table(settings, out))
    return {"trained": trained, "rollouts": outcomes}


def timeline_table(settings: "Settings", out: dict[str, Any]) -> Any:
    """One rollout's decisions from the Delta table ``rollouts``: weight before -> after, conversations per arm,
    and why."""
    from rich.table import Table

    from alignloop.rollout_store import read_rollouts

    end = "timed out" if out.get("timed_out") else out["stage"]
    cand = out["adapter_id"]
    t = Table(title=f"rollout {out['rollout_id']} of {cand} (fleet profile {out['profile']!r}): {end} after "
                    f"{out['seconds']:.0f} s and {out['fleet_turns']:,} fleet turns")
    for col in ("decision", "weight", "baseline conv.", "candidate conv.", "why"):
        t.add_column(col, justify="left" if col in ("decision", "why") else "right", overflow="fold")
    for r in sorted(read_rollouts(settings, out["rollout_id"]), key=lambda r: r["flag_version"]):
        t.add_row(r["action"], f"{r['weight_before']} -> {r['weight_after']}", str(r["baseline_conversations"] or 0),
                  str(r["candidate_conversations"] or 0), (r["reason"] or "")[:200])
    return t
