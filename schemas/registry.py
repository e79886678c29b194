"""The adapter manifest (seed 003) and registry events (``models.registry``, compacted, keyed by adapter id).

A registry event is one row of the Delta table ``adapters`` as it goes out on the topic, with the manifest and
the gate result as objects, so the topic alone holds every adapter's latest state.
"""
from __future__ import annotations

import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

REGISTRY_SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
_LIBS = ("alignloop", "torch", "transformers", "trl", "peft", "tokenizers", "accelerate", "datasets", "deltalake",
         "bitsandbytes")


def library_versions() -> dict[str, str]:
    """Versions of Python and the training libraries installed here (recorded in every manifest)."""
    out = {"python": platform.python_version()}
    for lib in _LIBS:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out


class AdapterManifest(BaseModel):
    """What an adapter was trained from and how: written next to the adapter and carried in registry events."""

    model_config = ConfigDict(extra="forbid")
    adapter_id: str = Field(..., description="<name>@<version>")
    name: str
    version: str
    kind: str
    base_model: str
    path: str
    lora: dict[str, Any]
    qlora: bool
    seed: int
    dataset: dict[str, Any] = Field(..., description="Dataset manifest: table, delta_version, content_hash, filters…")
    config: dict[str, Any]
    metrics: dict[str, Any]
    versions: dict[str, str] = Field(default_factory=library_versions)
    device: str = "cpu"
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    gate: dict[str, Any] | None = None

    def write(self, out_dir: Path) -> Path:
        path = out_dir / MANIFEST_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path


class RegistryEvent(BaseModel):
    """A record on ``models.registry``: an adapter was trained or gated."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(REGISTRY_SCHEMA_VERSION, ge=1, le=REGISTRY_SCHEMA_VERSION,
                                description="Contract version; consumers reject newer ones.")
    adapter_id: str
    name: str
    version: str
    kind: str
    event: Literal["trained", "gated", "promoted", "erasure"]  # erasure: trained on rows since erased (issue 17)
    status: Literal["trained", "gate_passed", "gate_failed", "promoted", "trained_on_erased_data"]
    base_model: str
    path: str
    dataset_table: str | None = None
    dataset_version: int | None = None
    dataset_hash: str | None = None
    seed: int
    date: str = Field(..., description="YYYY-MM-DD (the Delta partition).")
    created_at: datetime
    manifest: AdapterManifest
    gate: dict[str, Any] | None = None
