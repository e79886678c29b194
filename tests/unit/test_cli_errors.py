"""Bad invocations and bad configuration end in ONE line on stderr that names the fix, exit code 2, and no
traceback (issue 13, item 10). Each case runs the real CLI as a subprocess."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> str:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _run(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("ALIGNLOOP_")}
    base.update(ALIGNLOOP_HOME=str(tmp_path / "home"), ALIGNLOOP_LAKE_ROOT=str(tmp_path / "lake"),
                PYTHONPATH=str(REPO))
    base.update(env)
    return subprocess.run([sys.executable, "-m", "alignloop.cli", *args], cwd=REPO, env=base, capture_output=True,
                          text=True, timeout=60)


def _one_line(proc: subprocess.CompletedProcess[str], fix: str) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alignloop: "), proc.stderr[-2000:]
    assert re.search(fix, lines[0]), lines[0]
    return lines[0]


def _files(tmp_path: Path) -> dict[str, str]:
    broken = tmp_path / "broken.yaml"
    broken.write_text("partitions: [1\n")
    (tmp_path / "a-file").write_text("not a directory")
    return {"broken": str(broken), "missing": str(tmp_path / "missing.yaml"), "file": str(tmp_path / "a-file")}


CASES = [
    ("metrics-port", ["worker", "--metrics-port", "-1"], {}, r"--metrics-port must be between 0 and 65535"),
    ("judge-metrics-port", ["judge", "--metrics-port", "70000"], {}, r"--metrics-port must be between"),
    ("loglevel", ["worker", "--loglevel", "loud"], {}, r"--loglevel must be one of debug, info"),
    ("config-broken-yaml", ["worker"], {"ALIGNLOOP_CONFIG": "{broken}"}, r"not valid YAML.*ALIGNLOOP_CONFIG"),
    ("config-missing", ["worker"], {"ALIGNLOOP_CONFIG": "{missing}"}, r"not found; fix ALIGNLOOP_CONFIG"),
    ("storage-options-json", ["worker"], {"ALIGNLOOP_LAKE_STORAGE_OPTIONS": "key=value"},
     r"ALIGNLOOP_LAKE_STORAGE_OPTIONS is not valid JSON"),
    ("tls-cafile", ["worker"], {"ALIGNLOOP_KAFKA_SECURITY_PROTOCOL": "SSL", "ALIGNLOOP_KAFKA_SSL_CAFILE": "{missing}"},
     r"kafka_ssl_cafile.*fix ALIGNLOOP_KAFKA_SSL_CAFILE"),
    ("tls-certfile", ["trainer-runner"], {"ALIGNLOOP_KAFKA_SSL_CERTFILE": "{missing}"},
     r"fix ALIGNLOOP_KAFKA_SSL_CERTFILE"),
    ("schema-export-target", ["schema", "export", "--out", "{file}/json"], {}, r"cannot write JSON Schemas.*--out"),
    ("scrub-config-missing", ["scrub", "call me at 555-123-4567"], {"ALIGNLOOP_SCRUB_CONFIG": "{missing}"},
     r"scrub config .* not found; fix ALIGNLOOP_SCRUB_CONFIG"),
    ("worker-scrub-config-missing", ["worker"], {"ALIGNLOOP_SCRUB_CONFIG": "{missing}"},
     r"fix ALIGNLOOP_SCRUB_CONFIG"),
    ("judges-config-missing", ["judge"], {"ALIGNLOOP_JUDGES_CONFIG": "{missing}"}, r"fix ALIGNLOOP_JUDGES_CONFIG"),
    ("drift-config-missing", ["drift", "config"], {"ALIGNLOOP_DRIFT_CONFIG": "{missing}"},
     r"fix ALIGNLOOP_DRIFT_CONFIG"),
    ("unknown-variable", ["schema", "export", "--out", "{file}.d"], {"ALIGNLOOP_KAFKA_BOOTSTRP": "k:9092"},
     r"unknown environment variable ALIGNLOOP_KAFKA_BOOTSTRP; did you mean ALIGNLOOP_KAFKA_BOOTSTRAP\?"),
    ("unknown-variable-settings", ["worker"], {"ALIGNLOOP_PARTITONS": "8"}, r"did you mean ALIGNLOOP_PARTITIONS\?"),
    ("rollout-config-missing", ["rollout", "controller"], {"ALIGNLOOP_ROLLOUT_CONFIG": "{missing}"},
     r"rollout config .* not found; fix ALIGNLOOP_ROLLOUT_CONFIG"),
    ("rollout-unknown-adapter", ["rollout", "start", "--agent", "bot", "--adapter", "nope@1"], {},
     r"no adapter 'nope@1' in the registry"),
    ("rollout-bad-steps", ["rollout", "start", "--agent", "bot", "--adapter", "x", "--steps", "5,lots"], {},
     r"--steps must be comma-separated integers"),
    ("rollout-steps-order", ["rollout", "start", "--agent", "bot", "--adapter", "x", "--steps", "50,5,100"], {},
     r"steps must increase from > 0 to 100"),
]


@pytest.mark.parametrize("name,args,env,fix", CASES, ids=[c[0] for c in CASES])
def test_bad_invocation_is_one_line_and_exit_2(tmp_path: Path, name: str, args: list[str], env: dict[str, str],
                                               fix: str) -> None:
    files = _files(tmp_path)
    args = [a.format(**files) for a in args]
    env = {k: v.format(**files) for k, v in env.items()}
    _one_line(_run(tmp_path, args, **env), fix)


@pytest.mark.parametrize("command", [["worker"], ["judge"], ["trainer-runner"], ["rollout", "controller"]])
def test_broker_down_fails_fast_with_one_line(tmp_path: Path, command: list[str]) -> None:
    bootstrap = _closed_port()
    started = time.monotonic()
    proc = _run(tmp_path, command, ALIGNLOOP_KAFKA_BOOTSTRAP=bootstrap, ALIGNLOOP_METRICS_PORT="0")
    elapsed = time.monotonic() - started
    line = _one_line(proc, r"cannot reach the Kafka broker at .*fix ALIGNLOOP_KAFKA_BOOTSTRAP")
    assert bootstrap in line and elapsed < 30


def test_metrics_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _run(tmp_path, ["worker", "--metrics-port", str(port)], ALIGNLOOP_KAFKA_BOOTSTRAP=_closed_port())
    _one_line(proc, rf"cannot serve /metrics on port {port} .*--metrics-port or ALIGNLOOP_METRICS_PORT")


def test_every_alignloop_variable_the_project_names_is_known(tmp_path: Path) -> None:
    """The explicit list of known variables covers every ALIGNLOOP_* name in code, configs, compose and docs (so
    the unknown-variable check never rejects a real one), and a known extra passes through."""
    from schemas.settings import known_env

    tracked = subprocess.run(["git", "ls-files", "*.py", "*.yaml", "*.yml", "*.md", "Makefile", "*.toml"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    names: set[str] = set()
    for rel in tracked:
        if rel != "tests/unit/test_cli_errors.py" and (REPO / rel).is_file():  # this file spells typos on purpose
            text = (REPO / rel).read_text(errors="replace")
            names |= set(re.findall(r"\bALIGNLOOP_[A-Z][A-Z0-9_]*[A-Z0-9]\b", text))
    names.discard("ALIGNLOOP_TO_EVAL")  # a Python constant in alignloop/bench/_pii_eval.py, not a variable
    assert len(names) > 15  # the scan found the project's variables
    assert names - known_env() == set()
    ok = _run(tmp_path, ["scrub", "call me at 555-123-4567"], ALIGNLOOP_TEST_BOOTSTRAP="k:9092",
              ALIGNLOOP_LLM_API_KEY="sk-x", ALIGNLOOP_SCRUB_CONFIG=str(REPO / "configs" / "scrub.yaml"))
    assert ok.returncode == 0 and "555-123-4567" not in ok.stdout, ok.stderr[-2000:]
