"""An adapter directory as the runtime sees it: its content hash, its LoRA config and weights, checked.

The content hash is sha256 over the adapter's config and weight files (name and bytes, in name order), so the
same name with new weights is a new adapter, and every response can name exactly which weights produced it.
It does not cover ``manifest.json`` (metadata, rewritten by the eval gate) or tokenizer files.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainers.serving.errors import bad_adapter

CONFIG_FILE = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
HASH_PREFIX = "sha256:"


def _weight_file(path: Path) -> Path | None:
    return next((path / n for n in WEIGHT_FILES if (path / n).is_file()), None)


def adapter_content_hash(adapter_dir: str | Path) -> str:
    """``sha256:<hex>`` over adapter_config.json and the weight file; ValueError when either is missing."""
    path = Path(adapter_dir).expanduser()
    weights = _weight_file(path)
    if not (path / CONFIG_FILE).is_file() or weights is None:
        raise ValueError(f"{adapter_dir} is not a PEFT adapter directory (needs {CONFIG_FILE} and "
                         f"{' or '.join(WEIGHT_FILES)})")
    h = hashlib.sha256()
    for f in sorted([path / CONFIG_FILE, weights], key=lambda p: p.name):
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return HASH_PREFIX + h.hexdigest()


def peft_name(content_hash: str) -> str:
    """The adapter's name inside PEFT (a module key: no ':' or '.')."""
    return "a" + content_hash.removeprefix(HASH_PREFIX)[:24]


@dataclass
class AdapterFiles:
    """A checked adapter directory: hash, LoRA config, weights on CPU, and the manifest's ids when present."""

    path: Path
    content_hash: str
    config: dict[str, Any]
    state_dict: dict[str, Any] = field(repr=False)
    adapter_id: str | None = None
    name: str | None = None
    base_model: str | None = None

    @property
    def rank(self) -> int:
        return int(self.config.get("r", 0))


def read_adapter(adapter_dir: str | Path) -> AdapterFiles:
    """Read and check an adapter directory; a `ServingError` (code ``invalid_adapter``) says what is wrong."""
    path = Path(adapter_dir).expanduser()
    if not path.is_dir():
        raise bad_adapter(f"adapter directory {adapter_dir} does not exist", code="adapter_not_found")
    try:
        content_hash = adapter_content_hash(path)
        config = json.loads((path / CONFIG_FILE).read_text())
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise bad_adapter(f"adapter {adapter_dir} is corrupt: {exc}") from None
    if not isinstance(config, dict) or str(config.get("peft_type", "")).upper() != "LORA":
        raise bad_adapter(f"adapter {adapter_dir} is not a LoRA adapter (peft_type "
                          f"{config.get('peft_type') if isinstance(config, dict) else None!r})")
    state = _load_weights(path, _weight_file(path))  # type: ignore[arg-type]
    files = AdapterFiles(path=path, content_hash=content_hash, config=config, state_dict=state,
                         base_model=config.get("base_model_name_or_path"))
    _read_manifest_ids(files)
    return files


def _load_weights(path: Path, weights: Path) -> dict[str, Any]:
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights), device="cpu")
        else:
            import torch

            state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors/torch raise several types for truncated or garbled files
        raise bad_adapter(f"adapter {path} is corrupt: cannot read {weights.name} "
                          f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not state or not any(".lora_A." in k for k in state):
        raise bad_adapter(f"adapter {path} is corrupt: {weights.name} holds no LoRA weights")
    return state


def _read_manifest_ids(files: AdapterFiles) -> None:
    """The registry id and the base model from alignloop's manifest.json, when the adapter has one."""
    from schemas.registry import MANIFEST_FILE

    p = files.path / MANIFEST_FILE
    if not p.is_file():
        return
    try:
        doc = json.loads(p.read_text())
    except ValueError:
        raise bad_adapter(f"adapter {files.path} is corrupt: {MANIFEST_FILE} is not JSON") from None
    files.adapter_id, files.name = doc.get("adapter_id"), doc.get("name")
    files.base_model = doc.get("base_model") or files.base_model


def check_fits(files: AdapterFiles, base: Any, base_id: str, *, allow_other_base: bool = False) -> None:
    """The adapter fits this base model: same base, its target modules exist, ranks and shapes agree."""
    if not allow_other_base and files.base_model and not same_base(files.base_model, base_id):
        raise bad_adapter(f"adapter {files.path} was trained for base model {files.base_model!r}, this server "
                          f"serves {base_id!r}", code="adapter_base_mismatch")
    r = files.rank
    for key, tensor in files.state_dict.items():
        if ".lora_A." not in key and ".lora_B." not in key:
            continue
        module_path = key.removeprefix("base_model.model.").split(".lora_")[0]
        try:
            module = base.get_submodule(module_path)
        except AttributeError:
            raise bad_adapter(f"adapter {files.path} targets {module_path}, which this base model "
                              f"({base_id}) does not have (target_modules {files.config.get('target_modules')})",
                              code="adapter_target_mismatch") from None
        in_f, out_f = getattr(module, "in_features", None), getattr(module, "out_features", None)
        if in_f is None or out_f is None:
            raise bad_adapter(f"adapter {files.path} targets {module_path}, which is not a linear layer here",
                              code="adapter_target_mismatch")
        rank_pattern = files.config.get("rank_pattern") or {}
        want = (tensor.shape[0], in_f) if ".lora_A." in key else (out_f, tensor.shape[1])
        if tuple(tensor.shape) != want or (not rank_pattern and r and r not in tuple(tensor.shape)):
            raise bad_adapter(f"adapter {files.path} does not fit {base_id}: {key.split('base_model.model.')[-1]} "
                              f"is {list(tensor.shape)}, the base layer is {in_f}->{out_f} with rank {r} "
                              f"(an adapter for another base model or rank?)", code="adapter_shape_mismatch")


def same_base(a: str, b: str) -> bool:
    """Whether two base model references name the same model (local paths compared resolved)."""
    def norm(s: str) -> str:
        p = Path(s).expanduser()
        return str(p.resolve()) if p.exists() else s.rstrip("/")

    return norm(a) == norm(b)
