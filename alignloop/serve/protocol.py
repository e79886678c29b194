"""The OpenAI chat-completions request as this server accepts it, and the response bodies it sends.

Unknown fields of OpenAI's protocol are accepted and ignored (clients send many); fields whose meaning this
server cannot honour (``n`` > 1, tools) are rejected with a clear error instead of being silently dropped.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, description="Adapter registry id, name or content hash; the base model's "
                                                "name (or empty) for the base, subject to rollout routing.")
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1, description="One choice per request.")

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    def stops(self) -> list[str]:
        return [] if self.stop is None else [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def chat(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]

    @property
    def requested_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion_body(cid: str, model: str, adapter_hash: str | None, text: str, finish: str,
                    prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": adapter_hash or "base", "adapter_hash": adapter_hash,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def chunk_body(cid: str, model: str, adapter_hash: str | None, delta: dict[str, Any], finish: str | None,
               usage: dict[str, int] | None = None, choices: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model, "system_fingerprint": adapter_hash or "base",
                            "adapter_hash": adapter_hash,
                            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                            if choices else []}
    if usage is not None:
        body["usage"] = usage
    return body
