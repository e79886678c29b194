"""The high-fidelity LLM judge's settings (the ``llm:`` section of configs/judges.yaml).

A contract at the bottom layer: ``connectors/llm_judge.py`` (the client) and ``streams/judges/config.py`` (the
judges config that embeds it) both import it from here.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LlmJudgeConfig(BaseModel):
    """The high-fidelity LLM judge (connectors/llm_judge.py). The key comes from ALIGNLOOP_LLM_API_KEY."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field("http://localhost:11434/v1", description="OpenAI-compatible API root (…/v1).")
    model: str = Field("llama3.1:8b", description="Model name the endpoint serves.")
    api_key_env: str = Field("ALIGNLOOP_LLM_API_KEY", description="Env var holding the API key (may be unset).")
    rubric: str = Field("configs/rubrics/trace_judge.md", description="Rubric prompt for single-trace judging.")
    pairwise_rubric: str = Field("configs/rubrics/pairwise.md", description="Rubric prompt for pairwise judging.")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=16)
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_base_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    concurrency: int = Field(4, ge=1, description="Requests in flight at once.")
    max_cost_per_hour: float = Field(5.0, ge=0, description="Spend cap (USD) per rolling hour; 0 = no LLM calls.")
    price_per_1k_input: float = Field(0.0005, ge=0)
    price_per_1k_output: float = Field(0.0015, ge=0)
    cache_size: int = Field(10_000, ge=0, description="Cached verdicts by content fingerprint.")
    max_trace_chars: int = Field(12_000, ge=500, description="Trace text beyond this is truncated in the prompt.")
    min_confidence: float = Field(0.5, ge=0, le=1, description="Less confident LLM verdicts go to the human queue.")
    judge_version: str = Field("llm-1", description="Recorded on labels; bump with rubric/model changes.")
