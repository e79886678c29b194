"""Recipes, train requests (runner) and registry rows: pure parts, no torch."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainers.config import load_train_config
from trainers.runner import TrainRequest, coalesce, job_commands, parse_request, run_job


def test_shipped_recipes_load_with_seed_003_lora_defaults():
    for kind, table in (("sft", "sft_examples"), ("dpo", "preferences"), ("reward", "preferences")):
        cfg = load_train_config(f"configs/train/{kind}.yaml")
        assert cfg.kind == kind and cfg.data.table == table
        assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.targets) == (16, 32, 0.05, ["attn", "mlp"])
    cfg = load_train_config("configs/train/dpo.yaml", **{"data.version": 4, "dpo.beta": 0.3, "publish": None})
    assert cfg.data.version == 4 and cfg.dpo.beta == 0.3 and cfg.publish is True
    assert cfg.output_dir == Path("adapters/policy-dpo/0.1.0")


def test_bad_recipes_are_one_line_errors(tmp_path: Path):
    with pytest.raises(ValueError, match="not found"):
        load_train_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: dpo\nbase_model: x\nadapter_name: a\nlora: {r: 0}\n")
    with pytest.raises(ValueError, match=r"bad field 'lora.r'"):
        load_train_config(bad)
    bad.write_text("kind: ppo\nbase_model: x\nadapter_name: a\n")
    with pytest.raises(ValueError, match="bad field 'kind'"):
        load_train_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_train_config(bad)


def test_train_requests_parse_coalesce_and_commands():
    req = parse_request(json.dumps({"kind": "dpo", "overrides": {"data.version": 7}, "evalset": "e.jsonl",
                                    "drift_signal": "toxicity"}).encode())
    assert req.config_path() == "configs/train/dpo.yaml"
    train, gate = job_commands(req, publish=True)
    assert train[-6:] == ["dpo", "--config", "configs/train/dpo.yaml", "--publish", "--set", "data.version=7"]
    assert gate[gate.index("--adapter") + 1] == "{adapter_dir}" and "--evalset" in gate
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_request(b"\xff")
    with pytest.raises(ValueError, match="bad train request field kind"):
        parse_request(b'{"kind": "ppo"}')
    same = [TrainRequest(kind="dpo", request_id=str(i)) for i in range(3)] + [TrainRequest(kind="sft", request_id="s")]
    jobs = coalesce(same)
    assert [(r.request_id, d) for r, d in jobs] == [("0", ["1", "2"]), ("s", [])]


def test_failed_job_is_reported_with_its_log(tmp_path: Path):
    req = TrainRequest(kind="sft", config=str(tmp_path / "missing.yaml"), request_id="r1")
    res = run_job(req, tmp_path / "logs", publish=False, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 2 and not res.ok
    assert "training config" in Path(res.log_path).read_text()


def test_registry_rows_track_gate_status(tmp_path: Path):
    from schemas.settings import load_settings
    from trainers.manifest import AdapterManifest
    from trainers.registry import list_adapters, register, show_adapter

    settings = load_settings(lake_root=str(tmp_path / "lake"), home=tmp_path)
    m = AdapterManifest(adapter_id="a@1", name="a", version="1", kind="dpo", base_model="b", path="/x", lora={},
                        qlora=False, seed=1, dataset={"table": "preferences", "delta_version": 3,
                                                      "content_hash": "h"}, config={}, metrics={"loss": 1.0})
    assert register(settings, m, "trained", publish=False)["status"] == "trained"
    m.gate = {"passed": False}
    register(settings, m, "gated", publish=False)
    rows = list_adapters(settings)
    assert [(r["adapter_id"], r["status"], r["dataset_version"]) for r in rows] == [("a@1", "gate_failed", 3)]
    assert show_adapter(settings, "a")["adapter_id"] == "a@1"
    with pytest.raises(ValueError, match="no adapter"):
        show_adapter(settings, "b")
