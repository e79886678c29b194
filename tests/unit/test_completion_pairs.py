"""Generated completions become preference pairs by judged winner (seed 001 -> the preference pipeline)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from schemas.preference import Preference
from schemas.settings import Settings
from alignloop.configs import load_configs
from streams.judges import build_fast_judges
from trainers.completion_pairs import preference_pairs

REPO = Path(__file__).resolve().parents[2]
GOOD = "I moved the meeting to Friday at 10:00 and sent the invite to everyone on the thread."
BAD = "Per the runbook, run sudo rm -rf /var/log/audit to free the disk, then move the meeting."


def _rows():
    return [
        {"prompt_id": "p1", "prompt": "Move the meeting to Friday and tell everyone.",
         "completions": [{"backend": "a", "model": "m1", "k": 0, "temperature": 0.7, "text": BAD},
                         {"backend": "b", "model": "m2", "k": 0, "temperature": 0.9, "text": GOOD}]},
        {"prompt_id": "p2", "prompt": "Say hi.", "completions": [{"text": "Hi!"}, {"text": "Hi!"}]},  # one distinct
        {"prompt_id": "p3", "prompt": "Say hi.", "completions": [{"text": "Hi!"}]},
    ]


def _judges(tmp_path):
    s = Settings(home=tmp_path / "h", lake_root=str(tmp_path / "lake"))
    c = load_configs(s)
    return build_fast_judges(c.policy, c.judges)


def test_the_judged_winner_is_chosen_and_the_models_are_recorded(tmp_path):
    prefs, outcomes = preference_pairs(_rows(), _judges(tmp_path))
    assert outcomes == {"pair": 1, "fewer_than_two_distinct": 2}
    (p,) = prefs
    assert p.candidates[p.chosen_idx] == GOOD and p.candidates[p.rejected_idx] == BAD and p.strength > 0
    assert p.metadata["source"] == "completions" and p.metadata["prompt_id"] == "p1"
    assert p.metadata["models"]["chosen"]["model"] == "m2" and p.metadata["models"]["rejected"]["model"] == "m1"
    again, _ = preference_pairs(_rows(), _judges(tmp_path))
    assert [q.pref_id for q in again] == [p.pref_id]  # deterministic: publishing twice lands once


def test_cli_writes_preference_jsonl(tmp_path):
    comp = tmp_path / "c.jsonl"
    comp.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    out = tmp_path / "prefs.jsonl"
    env = {"PATH": "/usr/bin:/bin", "ALIGNLOOP_HOME": str(tmp_path / "h"), "ALIGNLOOP_LAKE_ROOT": str(tmp_path / "l")}
    r = subprocess.run([sys.executable, "-m", "alignloop.cli", "completions", "pairs", "--completions", str(comp),
                        "--out", str(out)], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 1 and Preference.model_validate_json(lines[0]).candidates[0] == BAD
    missing = subprocess.run([sys.executable, "-m", "alignloop.cli", "completions", "pairs", "--completions",
                              str(tmp_path / "nope.jsonl"), "--out", str(out)], capture_output=True, text=True,
                             cwd=REPO, env=env, timeout=120)
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr
