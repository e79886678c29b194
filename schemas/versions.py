"""Contract versions: every topic model bounds ``schema_version`` by the newest version this code understands
(``Field(N, ge=1, le=N)``, or ``Literal[N]``), so a record from a newer producer fails validation; consumers tell
that case apart to say "upgrade me"."""
from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError


def current_schema_version(model: type[BaseModel]) -> int:
    """The newest ``schema_version`` ``model`` accepts."""
    field = model.model_fields["schema_version"]
    if isinstance(field.default, int):
        return field.default
    return max(a for a in typing.get_args(field.annotation) if isinstance(a, int))


def newer_schema_version(exc: ValidationError) -> Any | None:
    """The record's ``schema_version`` when validation failed because it is newer than the model's, else None."""
    for err in exc.errors():
        if err["loc"] != ("schema_version",) or isinstance(err["input"], bool) or not isinstance(err["input"], int):
            continue
        if err["type"] == "less_than_equal":
            return err["input"]
        if err["type"] == "literal_error":  # Literal[N]: newer than every version it lists
            known = [int(v) for v in str(err.get("ctx", {}).get("expected", "")).replace(" or ", ",").split(",")
                     if v.strip().lstrip("-").isdigit()]
            if known and err["input"] > max(known):
                return err["input"]
    return None
