"""Errors a user can fix: printed as one line (no traceback), exit code 2."""


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
