"""`alignloop rollout export` / `assign`: the CLI prints what the pure functions decide; bad files are one line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from alignloop.cli import app
from alignloop.errors import UserError
from schemas.rollout import RolloutFlag
from streams.rollout.bucketing import assign

REPO = Path(__file__).resolve().parent.parent.parent


def _rec(version: int, weight: int, agent: str = "support-bot") -> dict:
    return {"agent_id": agent, "rollout_id": "r1", "version": version, "stage": "canary",
            "baseline": {"policy_id": "base"},
            "candidate": {"policy_id": "p1", "adapter_id": "a1", "adapter_hash": "sha256:1"},
            "weights": {"candidate": weight, "baseline": 100 - weight}, "updated_at": "2026-12-01T00:00:00Z"}


def test_assign_prints_key_tab_variant_from_the_latest_version(tmp_path: Path) -> None:
    flags, keys = tmp_path / "flags.json", tmp_path / "keys.txt"
    flags.write_text(json.dumps([_rec(1, 5), _rec(2, 50), _rec(1, 10, agent="other")]))
    ids = [f"c{i}" for i in range(500)]
    keys.write_text("\n".join(ids) + "\n")
    res = CliRunner().invoke(app, ["rollout", "assign", "--agent", "support-bot", "--keys", str(keys),
                                   "--flags", str(flags)])
    assert res.exit_code == 0, res.output
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    latest = RolloutFlag.model_validate(_rec(2, 50))
    assert rows == [[c, assign(latest, c)] for c in ids]
    assert 200 < sum(v == "candidate" for _, v in rows) < 300


def test_export_writes_one_flag_per_selected_agent(tmp_path: Path) -> None:
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps({"flags": [_rec(1, 5), _rec(3, 25, agent="other")]}))
    res = CliRunner().invoke(app, ["rollout", "export", "--agent", "other", "--flags", str(flags)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert list(doc["flags"]) == ["other"]
    flag = doc["flags"]["other"]
    assert flag["targeting"] == {"fractional": [["candidate", 25], ["baseline", 75]]}
    assert flag["defaultVariant"] == "baseline" and flag["metadata"]["version"] == 3
    assert flag["variants"]["candidate"] == {"policy_id": "p1", "adapter_id": "a1", "adapter_hash": "sha256:1"}


def test_bad_inputs_are_user_errors(tmp_path: Path) -> None:
    flags, keys = tmp_path / "flags.json", tmp_path / "keys.txt"
    keys.write_text("c1\n")
    cases = {
        "sum to 100": [{**_rec(1, 5), "weights": {"candidate": 5, "baseline": 5}}],
        "version 1 is older than 2": [_rec(2, 5), _rec(1, 5)],
        "no flag for agent nobody": [_rec(1, 5)],
    }
    for reason, records in cases.items():
        flags.write_text(json.dumps(records))
        agent = "nobody" if "nobody" in reason else "support-bot"
        res = CliRunner().invoke(app, ["rollout", "assign", "--agent", agent, "--keys", str(keys),
                                       "--flags", str(flags)])
        assert isinstance(res.exception, UserError) and reason in str(res.exception), (reason, res.output)
    flags.write_text("{")
    res = CliRunner().invoke(app, ["rollout", "export", "--flags", str(flags)])
    assert isinstance(res.exception, UserError) and "is not JSON" in str(res.exception)
    res = CliRunner().invoke(app, ["rollout", "export", "--format", "unleash", "--flags", str(flags)])
    assert isinstance(res.exception, UserError) and "supported: flagd" in str(res.exception)


def test_main_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps([{**_rec(1, 5), "weights": {"candidate": 5, "baseline": 5}}]))
    proc = subprocess.run([sys.executable, "-m", "alignloop.cli", "rollout", "export", "--flags", str(flags)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "sum to 100" in proc.stderr
