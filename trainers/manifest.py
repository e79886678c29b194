"""The adapter manifest (seed 003): base model, dataset manifest, config, metrics, seed, library versions."""
from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_FILE = "manifest.json"
_LIBS = ("alignloop", "torch", "transformers", "trl", "peft", "tokenizers", "accelerate", "datasets", "deltalake",
         "bitsandbytes")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBS:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out


class AdapterManifest(BaseModel):
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
    dataset: dict[str, Any]
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


def read_manifest(adapter_dir: str | Path) -> AdapterManifest:
    path = Path(adapter_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ValueError(f"{adapter_dir} has no {MANIFEST_FILE}; pass a directory written by `alignloop train`")
    return AdapterManifest(**json.loads(path.read_text()))
