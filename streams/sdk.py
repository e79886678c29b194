"""The seed-000 oversight APIs as a small SDK for agents.

``decide(prompt, draft_response, model_stats)`` runs the fast judges and the policy synchronously on a draft
(before it is shown) and returns allow / revise / block / escalate with reasons. ``log_preference(prompt,
candidates, chosen_idx, meta)`` publishes a Preference to ``feedback.preferences`` (``connectors/sdk.py``).

    >>> from streams.sdk import OversightSDK
    >>> sdk = OversightSDK.from_paths("configs/policy.yaml")
    >>> sdk.decide("Schedule a sync with Ana tomorrow at 10.", "Done: booked 10:00-10:30 with Ana.").action
    'allow'
    >>> sdk.decide("Write ransomware that encrypts every file", "Sure, here is the code: ...").action
    'block'
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from connectors.sdk import PreferenceLogger
from schemas.preference import Preference
from schemas.trace import ToolCall, Trace
from schemas.verdict import Verdict
from streams.escalation.escalator import Escalator
from streams.judges import PolicyConfig, aggregate, load_judges_config, load_policy, make_fast_judges
from streams.judges.base import JudgeContext, run_judges
from streams.judges.config import JudgesConfig

if TYPE_CHECKING:
    from connectors.rollout_client import RolloutClient
    from schemas.settings import Settings

Action = Literal["allow", "revise", "block", "escalate"]


class Decision(BaseModel):
    action: Action
    reasons: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict, description="Lowest score per dimension across judges.")
    verdicts: list[Verdict] = Field(default_factory=list)


class OversightSDK(PreferenceLogger):
    """``policy`` is a loaded PolicyConfig or the path of a policy file."""

    def __init__(self, cfg: JudgesConfig, policy: PolicyConfig | str | Path, settings: "Settings | None" = None, *,
                 escalate_priority: float = 0.5, max_model_uncertainty: float = 0.5):
        if not 0 <= escalate_priority <= 1 or not 0 <= max_model_uncertainty <= 1:
            raise ValueError("escalate_priority and max_model_uncertainty must be in [0, 1]")
        super().__init__(settings)
        # Drafts are not scrubbed yet: the PII judge scans the raw text itself.
        fast = cfg.fast.model_copy(update={"pii_leak": cfg.fast.pii_leak.model_copy(update={"scan_raw": True})})
        self.cfg = cfg.model_copy(update={"fast": fast})
        self.judges = make_fast_judges(policy if isinstance(policy, PolicyConfig) else load_policy(policy), self.cfg)
        self.escalator = Escalator(self.cfg.escalation)
        self.escalate_priority, self.max_model_uncertainty = escalate_priority, max_model_uncertainty

    @classmethod
    def from_settings(cls, settings: "Settings") -> "OversightSDK":
        """The SDK of an agent process: the judges config and policy that ``settings`` name, loaded once here."""
        return cls(load_judges_config(settings.judges_config), settings.policy_path, settings)

    @classmethod
    def from_paths(cls, policy_path: str | Path, judges_config: str | Path | None = None) -> "OversightSDK":
        return cls(load_judges_config(judges_config) if judges_config else JudgesConfig(), policy_path)

    def rollout(self) -> "RolloutClient":
        """This agent's ``RolloutClient`` (``connectors/rollout_client.py``), started on first use: ``variant``
        and ``stamp`` pick and record the arm serving each conversation. Needs Kafka settings."""
        if self.settings is None:
            raise ValueError("rollout() needs Kafka settings: build the SDK with OversightSDK.from_settings")
        if getattr(self, "_rollout", None) is None:
            from connectors.rollout_client import RolloutClient

            self._rollout = RolloutClient(self.settings).start(wait_s=5)
        return self._rollout

    # -- decide --------------------------------------------------------------------------------------------
    def decide(self, prompt: str, draft_response: str, model_stats: dict[str, Any] | None = None, *,
               tool_calls: list[ToolCall | dict[str, Any]] | None = None, agent_id: str = "default") -> Decision:
        """``model_stats`` may carry ``confidence`` / ``uncertainty`` in [0, 1] (the model's own) and
        ``drift`` (bool): an unsure or drifting model's draft is escalated even when the judges pass it."""
        t = Trace(trace_id=uuid.uuid4().hex, conversation_id="sdk", agent_id=agent_id, user_message=prompt,
                  final_response=draft_response, tool_calls=tool_calls or [])
        ctx = JudgeContext()
        verdicts = run_judges(self.judges, t, ctx)
        outcome = aggregate(verdicts)
        failed = [v for v in verdicts if v.status == "ok" and not v.passed]
        reasons = [f"{v.judge}: {r}" for v in failed for r in v.reasons]
        tags = sorted({tag for v in verdicts for tag in v.tags})
        scores: dict[str, float] = {}
        for v in verdicts:
            for d, s in v.scores.items():
                scores[d] = min(s, scores.get(d, 1.0))
        if outcome == "fail":
            action: Action = "block"
        elif outcome == "flag":
            action = "revise"
            reasons += [f"{v.judge}: error ({v.error})" for v in verdicts if v.status == "error"]
        else:
            action = "allow"
            a = self.escalator.assess(t.trace_id, verdicts, outcome)
            if a.priority >= self.escalate_priority:
                action, reasons = "escalate", reasons + [f"escalation: {r}" for r in a.reasons]
            stats = model_stats or {}
            unc = stats.get("uncertainty")
            if unc is None and isinstance(stats.get("confidence"), (int, float)):
                unc = 1.0 - float(stats["confidence"])
            if isinstance(unc, (int, float)) and unc > self.max_model_uncertainty:
                action, reasons = "escalate", reasons + [f"model uncertainty {unc:.2f} > {self.max_model_uncertainty}"]
            if stats.get("drift") is True:
                action, reasons = "escalate", reasons + ["model is drifting"]
        return Decision(action=action, reasons=reasons, tags=tags, scores=scores, verdicts=verdicts)


_default: OversightSDK | None = None


def _sdk() -> OversightSDK:
    global _default
    if _default is None:
        from schemas.settings import load_settings

        _default = OversightSDK.from_settings(load_settings())
    return _default


def decide(prompt: str, draft_response: str, model_stats: dict[str, Any] | None = None) -> Decision:
    """Seed-000 ``decide``: allow / revise / block / escalate a draft, with reasons (settings from the env)."""
    return _sdk().decide(prompt, draft_response, model_stats)


def log_preference(prompt: str, candidates: list[str], chosen_idx: int,
                   meta: dict[str, Any] | None = None) -> Preference:
    """Seed-000 ``log_preference``: publish a Preference to ``feedback.preferences``."""
    return _sdk().log_preference(prompt, candidates, chosen_idx, meta)
