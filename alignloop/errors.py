"""Errors a user can fix: printed as one line (no traceback), exit code 2."""


class UserError(Exception):
    """An error the user can fix; the message names the fix."""
