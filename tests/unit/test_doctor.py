"""`alignloop doctor`: every seed-003 check lands in runs/<ts>_<sha>_doctor/doctor.json; a missing broker is a
warning unless required; an unwritable lake fails the run (exit 1)."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _doctor(args: list[str]) -> tuple[int, dict]:
    from alignloop.cli import app

    res = CliRunner().invoke(app, ["doctor", *args])
    runs = Path(args[args.index("--runs-dir") + 1])
    report = json.loads(sorted(runs.glob("*_doctor/doctor.json"))[-1].read_text())
    return res.exit_code, report


def test_doctor_checks_and_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ALIGNLOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALIGNLOOP_KAFKA_BOOTSTRAP", _closed_port())
    monkeypatch.setenv("ALIGNLOOP_LAKE_ROOT", str(tmp_path / "lake"))
    code, rep = _doctor(["--runs-dir", str(tmp_path / "runs")])
    by = {c["name"]: c for c in rep["checks"]}
    assert code == 0 and rep["passed"]
    assert {"python", "libraries:core", "libraries:train", "embedder", "broker", "lake", "runs"} <= set(by)
    assert ("cuda" in by or "torch" in by) and by["broker"]["status"] == "warn"
    assert by["lake"]["status"] == "pass" and by["libraries:train"]["versions"]["torch"]
    assert rep["env"]["versions"]["python"] and "gpu" in rep["env"]
    code, rep = _doctor(["--runs-dir", str(tmp_path / "runs"), "--require-broker"])
    assert code == 1 and not rep["passed"]
    assert {c["name"]: c["status"] for c in rep["checks"]}["broker"] == "fail"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("ALIGNLOOP_LAKE_ROOT", str(blocker / "lake"))
    code, rep = _doctor(["--runs-dir", str(tmp_path / "runs")])
    lake = {c["name"]: c for c in rep["checks"]}["lake"]
    assert code == 1 and lake["status"] == "fail" and "not writable" in lake["detail"]
