"""Errors a user can fix: printed as one line (no traceback), exit code 2."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class UserError(Exception):
    """An error the user can fix; the message names the fix."""


def exit_now(code: int) -> None:
    """Flush and leave without interpreter teardown. Native threads of deltalake / pyarrow still alive at exit can
    abort the teardown ("terminate called without an active exception", SIGABRT) and turn a finished command's
    exit 0 into -6 (seen on `alignloop replay` after a kill -9 resume); the error path of the CLI does the same."""
    import logging
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def exits_now(command: Callable[..., None]) -> Callable[..., None]:
    """A one-shot command over Delta tables: once it returns, it leaves through ``exit_now(0)``. Seen on
    `alignloop lineage conversation`: the full report printed, then SIGABRT in teardown (pyarrow / deltalake native
    thread pools; apache/arrow#34314, delta-io/delta-rs#2184)."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        command(*args, **kwargs)
        exit_now(0)

    return run
