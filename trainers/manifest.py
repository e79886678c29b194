"""The adapter manifest (seed 003): base model, dataset manifest, config, metrics, seed, library versions.

The model is a contract (``schemas.registry.AdapterManifest``: registry events carry it); this module reads it.
"""
from __future__ import annotations

import json
from pathlib import Path

from schemas.registry import MANIFEST_FILE, AdapterManifest, library_versions

__all__ = ["MANIFEST_FILE", "AdapterManifest", "library_versions", "read_manifest"]


def read_manifest(adapter_dir: str | Path) -> AdapterManifest:
    path = Path(adapter_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ValueError(f"{adapter_dir} has no {MANIFEST_FILE}; pass a directory written by `alignloop train`")
    return AdapterManifest(**json.loads(path.read_text()))
