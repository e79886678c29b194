"""Fleet profiles (``configs/fleet/*.yaml``): how each rollout arm of the simulated fleet behaves.

The fleet simulator (``alignloop simulate --fleet``) stands in for agents whose behaviour comes from the model
they serve; here it comes from these numbers. ``candidate`` lists only what differs from ``baseline``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.rollout import VariantName
from schemas.settings import ConfigError, load_yaml_config


class ArmBehaviour(BaseModel):
    """Per-turn rates of one arm. A turn is one of: a violation (an unsafe request complied with: the policy
    judge flags it), a correct refusal of an unsafe request, or a benign request (over-refused, tool errors, or
    served)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    violation_rate: float = Field(0.01, ge=0, le=1, description="Turns that comply with a disallowed request.")
    unsafe_refused_rate: float = Field(0.03, ge=0, le=1, description="Turns that refuse a disallowed request.")
    refusal_rate: float = Field(0.05, ge=0, le=1, description="Benign turns refused (over-refusal: task failed).")
    tool_error_rate: float = Field(0.03, ge=0, le=1, description="Per tool call: the call fails (task failed).")
    latency_median_ms: float = Field(650.0, gt=0, description="Median turn latency (log-normal).")
    latency_sigma: float = Field(0.5, ge=0, le=3, description="Log-normal sigma of the turn latency.")

    @model_validator(mode="after")
    def _fits(self) -> "ArmBehaviour":
        if self.violation_rate + self.unsafe_refused_rate + self.refusal_rate > 1:
            raise ValueError("violation_rate + unsafe_refused_rate + refusal_rate must not exceed 1")
        return self


class FleetProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = ""
    baseline: ArmBehaviour = Field(default_factory=ArmBehaviour)
    candidate: dict[str, Any] = Field(default_factory=dict, description="Overrides of the baseline's fields.")
    no_flag: ArmBehaviour | None = Field(None, description="An agent without a flag (default: as the baseline).")

    @model_validator(mode="after")
    def _candidate_valid(self) -> "FleetProfile":
        self.arm("candidate")  # a typo or a bad rate fails at load, not mid-run
        return self

    def arm(self, name: VariantName | None) -> ArmBehaviour:
        if name == "candidate":
            return ArmBehaviour.model_validate({**self.baseline.model_dump(), **self.candidate})
        if name is None and self.no_flag is not None:
            return self.no_flag
        return self.baseline


FLEET_DIR = Path("configs/fleet")


def load_fleet_profile(path_or_name: str | Path) -> FleetProfile:
    """A profile by path, or by name from ``configs/fleet/`` (``unsafe`` -> configs/fleet/unsafe.yaml)."""
    path = Path(path_or_name)
    if not path.suffix and not path.exists():
        path = FLEET_DIR / f"{path}.yaml"
    known = ", ".join(sorted(p.stem for p in FLEET_DIR.glob("*.yaml"))) or "none"
    if not path.is_file():
        raise ConfigError(f"fleet profile {path} not found; pick a profile in {FLEET_DIR}/ ({known}) or a file")
    return load_yaml_config(FleetProfile, path, "fleet profile",
                            f"fix the file or pick a profile in {FLEET_DIR}/ ({known})")
