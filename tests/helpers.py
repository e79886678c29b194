"""Helpers for integration tests: subprocess workers, settings as environment, waiting, reading tables."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from alignloop.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def settings_env(s: Settings) -> dict[str, str]:
    """Environment that makes a subprocess load exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIGNLOOP_")}
    for name, value in s.model_dump().items():
        if value is None or name in ("lake_storage_options",):
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"ALIGNLOOP_{name.upper()}"] = str(value)
    env["ALIGNLOOP_CONFIG"] = "/nonexistent"
    env["PYTHONPATH"] = str(REPO)
    return env


class WorkerProcess:
    """`alignloop worker` as a real subprocess, killable with SIGKILL."""

    def __init__(self, settings: Settings, log_path: Path):
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "alignloop.cli", "worker", "--loglevel", "warning"],
                                     cwd=REPO, env=settings_env(self.settings), stdout=log, stderr=log,
                                     start_new_session=True)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def table_rows(settings: Settings, table: str = "traces", columns: list[str] | None = None) -> Any:
    from connectors.delta_sink import read_table

    return read_table(settings.table_uri(table), columns=columns)
