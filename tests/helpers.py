"""Helpers for integration tests: subprocess workers, settings as environment, waiting, reading tables."""
from __future__ import annotations

import time
from typing import Any, Callable

from alignloop.runner import WorkerProcess, settings_env
from schemas.settings import Settings

__all__ = ["WorkerProcess", "settings_env", "table_rows", "wait_for"]


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition",
             worker: WorkerProcess | None = None) -> Any:
    """Poll ``predicate`` until truthy; fail at once if ``worker`` died."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if worker is not None and not worker.alive():
            log = worker.log_path.read_text(errors="replace")[-3000:] if worker.log_path.exists() else ""
            raise AssertionError(f"the worker exited while waiting for {what}:\n{log}")
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def table_rows(settings: Settings, table: str = "traces", columns: list[str] | None = None) -> Any:
    from connectors.delta_sink import read_table

    return read_table(settings.table_uri(table), columns=columns)
