"""A chat-completions client for generation (synthetic data, completions) with the LLM judge's discipline.

It *is* ``LlmJudgeClient`` — per-request deadline, retries with backoff on timeouts / connection errors / 429 /
5xx / unparseable replies, a concurrency limit, a rolling spend cap, counters — without a rubric: callers send
their own messages and parse the text they get back. ``complete_text`` returns a non-empty reply's text;
``complete(messages, parse)`` lets the caller reject a reply (it is then counted as malformed and re-asked).
"""
from __future__ import annotations

from typing import Any

from connectors.llm_judge import BudgetExceeded, LlmJudgeClient, LlmJudgeError, Unjudgeable

__all__ = ["BudgetExceeded", "ChatClient", "EndpointError", "LlmJudgeError", "Unjudgeable"]

# What a generation caller catches: the endpoint failed past its retries, or never gave a usable reply.
EndpointError = (LlmJudgeError, Unjudgeable)


def _non_empty(content: str) -> str:
    text = content.strip()
    if not text:
        raise ValueError("empty reply")
    return text


class ChatClient(LlmJudgeClient):
    @staticmethod
    def _load(path: str) -> str:  # no rubric: generation callers bring their own prompts
        return ""

    async def complete_text(self, messages: list[dict[str, str]], **sampling: Any) -> str:
        return await self.complete(messages, _non_empty, json_mode=False, **sampling)
