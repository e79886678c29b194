"""Errors the runtime raises for one request or one adapter; the HTTP layer turns them into OpenAI error bodies."""
from __future__ import annotations


class ServingError(Exception):
    """One request or adapter failed; the server keeps serving everyone else.

    ``status``/``type``/``code``/``param`` follow OpenAI's error body: ``{"error": {"message", "type", "param",
    "code"}}``.
    """

    def __init__(self, message: str, *, status: int = 400, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.type, self.code, self.param = message, status, type, code, param

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_adapter(message: str, code: str = "invalid_adapter") -> ServingError:
    return ServingError(message, status=400, code=code, param="adapter")
