"""``configs/scrub.yaml``: which tier and entity kinds are on, which trace fields are scrubbed, score thresholds.

Path from ``ALIGNLOOP_SCRUB_CONFIG`` (default ``configs/scrub.yaml``); a missing file means the defaults below.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.settings import ConfigError, load_yaml_config

from streams.scrub.trace import ALL_FIELDS, DEFAULT_MAX_DEPTH

SCRUB_CONFIG_ENV = "ALIGNLOOP_SCRUB_CONFIG"  # Settings.scrub_config, named in messages
DEFAULT_SCRUB_CONFIG = "configs/scrub.yaml"
STRUCTURED = ("EMAIL", "PHONE", "CREDIT_CARD", "IP_ADDRESS", "IBAN", "US_SSN", "SECRET", "NATIONAL_ID", "PASSPORT")
UNSTRUCTURED = ("PERSON", "ADDRESS", "LOCATION", "ORGANIZATION", "DATE_OF_BIRTH")


class ScrubConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Literal["structured", "full"] = Field(
        "full", description="structured: regex/checksum kinds only; full: plus names, addresses, places, orgs, DOB.")
    kinds: list[str] | None = Field(None, description="Entity kinds to scrub; null = every kind of the tier.")
    fields: list[str] = Field(list(ALL_FIELDS), description="Trace fields to scrub.")
    thresholds: dict[str, float] = Field(default_factory=dict, description="Minimum score per kind (default 0.5).")
    default_threshold: float = Field(0.5, ge=0.0, le=1.0)
    surrogates: bool = Field(False, description="Realistic fictional values instead of <KIND_xxxxxxxx> tags.")
    max_depth: int = Field(DEFAULT_MAX_DEPTH, ge=1, le=1024, description="Deeper JSON is replaced by a marker.")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        v = [k.upper() for k in v]
        bad = sorted(set(v) - set(STRUCTURED) - set(UNSTRUCTURED))
        if bad:
            raise ValueError(f"unknown kinds {bad}; known: {list(STRUCTURED + UNSTRUCTURED)}")
        return v

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, v: list[str]) -> list[str]:
        bad = sorted(set(v) - set(ALL_FIELDS))
        if bad:
            raise ValueError(f"unknown fields {bad}; known: {list(ALL_FIELDS)}")
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        out = {k.upper(): float(x) for k, x in v.items()}
        if any(not 0.0 <= x <= 1.0 for x in out.values()):
            raise ValueError("thresholds must be between 0 and 1")
        return out

    def enabled(self) -> list[str]:
        tier = STRUCTURED + (UNSTRUCTURED if self.tier == "full" else ())
        return [k for k in tier if self.kinds is None or k in self.kinds]

    def threshold(self, kind: str) -> float:
        return self.thresholds.get(kind, self.default_threshold)


def load_scrub_config(path: str | Path | None = None) -> ScrubConfig:
    """The scrub config at ``path`` (``Settings.scrub_config``); None: configs/scrub.yaml, or the defaults when
    that file is absent. A named file that is missing, or a bad one, is a one-line ConfigError naming the fix."""
    p = Path(path) if path is not None else Path(DEFAULT_SCRUB_CONFIG)
    if not p.is_file():
        if path is not None:
            raise ConfigError(f"scrub config {p} not found; fix {SCRUB_CONFIG_ENV} or create the file")
        return ScrubConfig()
    return load_yaml_config(ScrubConfig, p, "scrub config", f"fix the file or {SCRUB_CONFIG_ENV}")
