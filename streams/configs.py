"""The area configs a stream process runs with, as one bundle.

The composition root (``alignloop.configs.load_configs``) reads each file once per process, from the paths in
``Settings``, and passes this object down to ``create_app``, the pipeline, the hooks and the trainers' eval gate,
so every part of a process sees the same configuration and nothing below ``alignloop/`` reads files or the
environment to find it.
"""
from __future__ import annotations

from dataclasses import dataclass

from streams.drift.config import DriftConfig
from streams.judges.config import JudgesConfig
from streams.judges.policy_config import PolicyConfig
from streams.scrub.config import ScrubConfig


@dataclass(frozen=True)
class AreaConfigs:
    policy: PolicyConfig
    judges: JudgesConfig
    scrub: ScrubConfig
    drift: DriftConfig
