"""Configuration a process loads once, here in the composition root, and passes down.

``load_configs(settings)`` reads the policy and the judges, scrub and drift configs from the paths that
``settings`` name (``ALIGNLOOP_POLICY_PATH``, ``ALIGNLOOP_JUDGES_CONFIG``, ``ALIGNLOOP_SCRUB_CONFIG``,
``ALIGNLOOP_DRIFT_CONFIG``); every problem is a one-line ``ConfigError``. Secrets named by a config (the LLM
judge's API key variable) are read here too, never below.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from schemas.llm_judge_config import LlmJudgeConfig
    from schemas.settings import Settings
    from streams.rollout.config import RolloutControlConfig
    from streams.configs import AreaConfigs


def load_configs(settings: "Settings") -> "AreaConfigs":
    from streams.configs import AreaConfigs
    from streams.drift.config import load_drift_config
    from streams.judges.config import load_judges_config
    from streams.judges.policy_config import load_policy
    from streams.scrub.config import load_scrub_config

    return AreaConfigs(policy=load_policy(settings.policy_path), judges=load_judges_config(settings.judges_config),
                       scrub=load_scrub_config(settings.scrub_config), drift=load_drift_config(settings.drift_config))


def load_rollout_config(settings: "Settings") -> "RolloutControlConfig":
    from streams.rollout.config import load_rollout_config as load

    return load(settings.rollout_config)


def llm_api_key(cfg: "LlmJudgeConfig") -> SecretStr | None:
    """The LLM judge's key from the variable ``llm.api_key_env`` names (unset or empty: no key)."""
    value = os.environ.get(cfg.api_key_env)
    return SecretStr(value) if value else None
