"""Contract versions: every topic model bounds ``schema_version`` by the newest version this code understands, so
a record from a newer producer fails validation; consumers tell that case apart to say "upgrade me"."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def newer_schema_version(exc: ValidationError) -> Any | None:
    """The record's ``schema_version`` when validation failed because it is newer than the model's, else None."""
    for err in exc.errors():
        if err["loc"] == ("schema_version",) and err["type"] == "less_than_equal":
            return err["input"]
    return None
