"""Running the pieces as processes: the local broker when the default bootstrap is used, and worker
subprocesses (used by `demo`, benchmarks and tests)."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.settings import Settings

REPO = Path(__file__).resolve().parent.parent

# The stream allocates a few hundred short-lived, acyclic objects per trace (freed by reference counting); with
# the default thresholds the cyclic collector would still run every 700 allocations and re-scan a heap of
# Faust/pydantic/pyarrow objects that never die. Frozen start-up objects and rarer collections make the
# in-process step ~15% faster (measured A/B on the pipeline step); cycles are still collected.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """For stream processes and benchmarks of their step functions."""
    gc.collect()
    gc.freeze()  # start-up objects (modules, configs, compiled regexes) move out of every later collection
    gc.set_threshold(*GC_THRESHOLDS)


def ensure_local_broker(settings: "Settings") -> str | None:
    """Start the local broker if the settings point at it and it is not running. Returns a note or None."""
    from connectors.broker import LocalBroker

    broker = LocalBroker(settings.home, port=settings.broker_port, controller_port=settings.broker_controller_port,
                         heap=settings.broker_heap)
    if settings.kafka_bootstrap not in (broker.bootstrap, f"127.0.0.1:{broker.port}"):
        return None  # an external cluster: not ours to start
    if broker.running() or broker.port_open():
        return None
    pid = broker.start()
    return f"started the local broker (pid {pid}, {broker.bootstrap}); stop it with `alignloop broker stop`"


def settings_env(s: "Settings") -> dict[str, str]:
    """This process's environment with ``s`` written over it (``schemas.settings.settings_env``), and this
    repository on PYTHONPATH, so a subprocess loads exactly these settings and this code."""
    from schemas.settings import settings_env as write_settings

    env = write_settings(s, os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


class WorkerProcess:
    """`alignloop worker` as a real subprocess, killable with SIGKILL."""

    def __init__(self, settings: "Settings", log_path: Path, role: str = "all", metrics_port: int | None = None,
                 env: dict[str, str] | None = None):
        self.settings = settings
        self.env = env or {}  # extra variables, e.g. another scrub or judges config
        self.log_path = log_path
        self.role = role
        self.metrics_port = metrics_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        args = [sys.executable, "-m", "alignloop.cli", "worker", "--loglevel", "warning", "--role", self.role]
        if self.metrics_port is not None:
            args += ["--metrics-port", str(self.metrics_port)]
        self.proc = subprocess.Popen(args,
                                     cwd=REPO, env={**settings_env(self.settings), **self.env}, stdout=log, stderr=log,
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
