"""The serving runtime: the base model loaded once, LoRA adapters attached in the background, LRU-evicted.

Every operation that touches the model (inject an adapter, generate, delete one) runs on one worker thread, so
requests and swaps never race on PEFT's active-adapter state; reading and checking an adapter's files (the slow
part of an attach) runs on a loader thread beside it, so serving goes on while an adapter loads. An adapter is
ready only after it answered the golden prompts (warm-up); requests for it wait until then.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trainers.serving.adapter_files import AdapterFiles, HASH_PREFIX, check_fits, peft_name, read_adapter
from trainers.serving.errors import ServingError

DEFAULT_GOLDEN = ("Explain the Lindy effect.", "Summarise why randomized controlled trials reduce confounding.",
                  "Write a one-line greeting.")


@dataclass
class Resident:
    """One adapter the runtime holds (loading or ready)."""

    content_hash: str
    path: str
    adapter_id: str | None
    name: str | None
    rank: int
    state: Literal["loading", "ready", "failed"] = "loading"
    attach_s: float | None = None
    warm_s: float | None = None
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    pins: int = 0
    ready: Future = field(default_factory=Future, repr=False)

    @property
    def peft_name(self) -> str:
        return peft_name(self.content_hash)

    @property
    def label(self) -> str:
        return self.adapter_id or self.name or self.content_hash[:19]

    def describe(self) -> dict[str, Any]:
        return {"content_hash": self.content_hash, "adapter_id": self.adapter_id, "name": self.name,
                "path": self.path, "rank": self.rank, "state": self.state, "attach_ms": _ms(self.attach_s),
                "warm_ms": _ms(self.warm_s), "loaded_at": int(self.loaded_at)}


def _ms(s: float | None) -> float | None:
    return None if s is None else round(s * 1000, 3)


class ServingRuntime:
    """Base model + resident adapters. ``max_resident`` ready adapters at most (least recently used go first)."""

    def __init__(self, base_model: str, *, max_resident: int = 8, golden_prompts: tuple[str, ...] = DEFAULT_GOLDEN,
                 warm_tokens: int = 4, allow_other_base: bool = False, metrics: Any = None,
                 bf16: bool | Literal["auto"] = "auto", device: str | None = None) -> None:
        if max_resident < 1:
            raise ValueError(f"max_resident must be at least 1, got {max_resident}")
        self.base_id, self.max_resident, self.golden = base_model, max_resident, tuple(golden_prompts)
        self.warm_tokens, self.allow_other_base, self.metrics = warm_tokens, allow_other_base, metrics
        self._bf16, self._device = bf16, device
        self.base: Any = None  # the transformers model, adapters injected into it
        self.model: Any = None  # the same model wrapped by PeftModel once the first adapter arrives
        self.tokenizer: Any = None
        self.adapters: OrderedDict[str, Resident] = OrderedDict()  # content hash -> resident, LRU order
        self.aliases: dict[str, str] = {}  # adapter id / name / path -> content hash (latest wins)
        self.known: dict[str, str] = {}  # adapter id / name -> directory (from the registry), attached on demand
        self._lock = threading.RLock()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="alignloop-model")
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="alignloop-attach")

    # -- lifecycle -------------------------------------------------------------------------------------------
    def load(self) -> "ServingRuntime":
        """Load the base model and tokenizer (once)."""
        from trainers.hf_common import quiet_hf
        from trainers.model_loading import load_base

        quiet_hf()
        model, tok = load_base(self.base_id, bf16=self._bf16)
        if self._device:
            model = model.to(self._device)
        elif _cuda():
            model = model.to("cuda")
        self.base = self.model = model.eval()
        self.tokenizer = tok
        return self

    def close(self) -> None:
        self._loader.shutdown(wait=False, cancel_futures=True)
        self._worker.shutdown(wait=True, cancel_futures=True)

    @property
    def context_length(self) -> int:
        cfg = self.base.config
        return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 2048))

    def run_on_model(self, fn: Any, *args: Any) -> Future:
        """Run ``fn(*args)`` on the model's worker thread (the only thread that touches the model)."""
        return self._worker.submit(fn, *args)

    # -- adapters --------------------------------------------------------------------------------------------
    def attach(self, adapter_dir: str | Path) -> Future:
        """Start attaching ``adapter_dir`` in the background; the future gives the ready `Resident` (or the
        `ServingError` that stopped it). An adapter already resident (same content hash) is returned as is."""
        out: Future = Future()

        def job() -> None:
            try:
                out.set_result(self._attach(Path(adapter_dir)))
            except BaseException as exc:  # the future carries it to whoever waits
                out.set_exception(exc)

        self._loader.submit(job)
        return out

    def attach_sync(self, adapter_dir: str | Path, timeout: float | None = None) -> Resident:
        return self.attach(adapter_dir).result(timeout)

    def begin(self, adapter_dir: str | Path) -> Resident:
        """Read and register the adapter now (its hash and ids become known, state ``loading``); inject and
        warm it in the background. ``resident.ready`` resolves when it is ready (or failed)."""
        res, files = self._register(Path(adapter_dir))
        if files is not None:
            self._loader.submit(self._complete_quietly, res, files)
        return res

    def _attach(self, path: Path) -> Resident:
        res, files = self._register(path)
        if files is None:
            return res.ready.result()  # loading by another caller, or ready: same weights, same adapter
        return self._complete(res, files)

    def _register(self, path: Path) -> tuple[Resident, AdapterFiles | None]:
        """(resident, files to load) — files None when these weights are already resident or loading."""
        files = self._read(path)
        with self._lock:
            held = self.adapters.get(files.content_hash)
            if held is not None and held.state != "failed":
                self._alias(files, held)
                return held, None
            res = Resident(files.content_hash, str(path), files.adapter_id, files.name, files.rank)
            self.adapters[files.content_hash] = res
            self._alias(files, res)  # requests naming it now wait for it to be ready
        return res, files

    def _complete_quietly(self, res: Resident, files: AdapterFiles) -> None:
        try:
            self._complete(res, files)
        except BaseException:  # carried by res.ready to whoever waits
            pass

    def _complete(self, res: Resident, files: AdapterFiles) -> Resident:
        try:
            check_fits(files, self.base, self.base_id, allow_other_base=self.allow_other_base)
            started = time.perf_counter()
            self._worker.submit(self._inject, files).result()
            res.attach_s = time.perf_counter() - started
            started = time.perf_counter()
            for prompt in self.golden:  # one job per prompt: requests already queued interleave with warm-up
                self._worker.submit(self._warm, res, prompt).result()
            res.warm_s = time.perf_counter() - started
        except BaseException as exc:
            with self._lock:
                self.adapters.pop(files.content_hash, None)
                self._drop_aliases(files.content_hash)
            res.state = "failed"
            res.ready.set_exception(exc)
            if self.metrics is not None:
                self.metrics.attach_failures.labels(getattr(exc, "code", None) or type(exc).__name__).inc()
            if self._peft_has(res):
                self._worker.submit(self._delete, res.peft_name).result()
            raise exc from None
        with self._lock:
            res.state = "ready"
        res.ready.set_result(res)
        if self.metrics is not None:
            self.metrics.attach.observe(res.attach_s)
            self.metrics.warm.observe(res.warm_s)
        self._evict_over_limit(keep=res.content_hash)
        return res

    def _read(self, path: Path) -> AdapterFiles:
        try:
            return read_adapter(path)
        except ServingError as exc:
            if self.metrics is not None:
                self.metrics.attach_failures.labels(exc.code or "invalid_adapter").inc()
            raise

    def _alias(self, files: AdapterFiles, res: Resident) -> None:
        for key in (files.adapter_id, files.name, str(files.path)):
            if key:
                self.aliases[key] = res.content_hash
        res.adapter_id = res.adapter_id or files.adapter_id
        res.name = res.name or files.name

    def _drop_aliases(self, content_hash: str) -> None:
        """Names that pointed at a departing adapter go back to the newest other resident of that name."""
        for key in [k for k, v in self.aliases.items() if v == content_hash]:
            del self.aliases[key]
            others = [r for r in self.adapters.values() if key in (r.adapter_id, r.name, r.path)]
            if others:
                self.aliases[key] = max(others, key=lambda r: r.loaded_at).content_hash

    def _inject(self, files: AdapterFiles) -> None:
        """Worker thread: add the adapter's LoRA layers to the model and load its weights."""
        from peft import PeftConfig, PeftModel, set_peft_model_state_dict

        cfg = PeftConfig.from_peft_type(**{k: v for k, v in files.config.items() if k != "peft_type"},
                                        peft_type=files.config["peft_type"])
        cfg.inference_mode = True
        name = peft_name(files.content_hash)
        if not isinstance(self.model, PeftModel):
            self.model = PeftModel(self.base, cfg, adapter_name=name)
        elif name not in self.model.peft_config:  # else: the last one, detached but left injected (see _delete)
            self.model.add_adapter(name, cfg)
        device = next(self.base.parameters()).device
        dtype = next(self.base.parameters()).dtype
        state = {k: v.to(device=device, dtype=dtype) for k, v in files.state_dict.items()}
        result = set_peft_model_state_dict(self.model, state, adapter_name=name)
        stray = [k for k in result.unexpected_keys if "lora_" in k]
        if stray:
            self._delete(name)
            raise ServingError(f"adapter {files.path} has weights this base cannot take: {stray[:3]}",
                               code="adapter_target_mismatch", param="adapter")
        self.model.eval()

    def _warm(self, res: Resident, prompt: str) -> None:
        from trainers.serving.generation import GenerationRequest, generate_on_model

        req = GenerationRequest(self.encode([{"role": "user", "content": prompt}]), max_new_tokens=self.warm_tokens)
        generate_on_model(self, req, res)

    def _peft_has(self, res: Resident) -> bool:
        return self.model is not self.base and res.peft_name in getattr(self.model, "peft_config", {})

    def _delete(self, name: str) -> None:
        """Worker thread: remove an adapter's layers. PEFT needs one adapter left, so the last one stays
        injected (inactive) until the next arrives — it costs memory, never a wrong answer: requests always
        name their adapter."""
        if len(self.model.peft_config) > 1:
            active = self.model.active_adapter
            if active == name:
                self.model.set_adapter(next(n for n in self.model.peft_config if n != name))
            self.model.delete_adapter(name)

    def _evict_over_limit(self, keep: str) -> None:
        while True:
            with self._lock:
                ready = [r for r in self.adapters.values() if r.state == "ready"]
                if len(ready) <= self.max_resident:
                    break
                victims = [r for r in ready if r.pins == 0 and r.content_hash != keep]
                if not victims:
                    break  # everything is in use; over the limit until a request finishes
                victim = min(victims, key=lambda r: r.last_used)
            self.evict(victim.content_hash)
        self._gauge()

    def evict(self, content_hash: str) -> Resident:
        """Detach an adapter (unknown: `ServingError` 404). In-flight requests keep it until they finish."""
        with self._lock:
            res = self.adapters.get(content_hash)
            if res is None:
                raise ServingError(f"adapter {content_hash} is not resident", status=404, code="adapter_not_found",
                                   param="model")
            del self.adapters[content_hash]
            self._drop_aliases(content_hash)
        started = time.perf_counter()
        self._worker.submit(self._delete, res.peft_name).result()
        if self.metrics is not None:
            self.metrics.detach.observe(time.perf_counter() - started)
        self._gauge()
        return res

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.resident.set(sum(r.state == "ready" for r in self.adapters.values()))

    def resident(self) -> list[Resident]:
        with self._lock:
            return list(self.adapters.values())

    def lookup(self, ref: str) -> tuple[Resident | None, str | None]:
        """(resident adapter, or None; directory to attach it from, or None) for a hash, a hash prefix of at
        least 12 hex digits, a registry id or a name. Both None: unknown."""
        with self._lock:
            h = self.aliases.get(ref) or ref
            if not h.startswith(HASH_PREFIX) and len(h) >= 12 and all(c in "0123456789abcdef" for c in h):
                h = HASH_PREFIX + h
            if h in self.adapters:
                return self.adapters[h], None
            if h.startswith(HASH_PREFIX) and len(h) >= len(HASH_PREFIX) + 12:
                hits = [r for k, r in self.adapters.items() if k.startswith(h)]
                if len(hits) == 1:
                    return hits[0], None
            return None, self.known.get(ref)

    def touch(self, res: Resident) -> None:
        with self._lock:
            res.last_used = time.monotonic()
            if res.content_hash in self.adapters:
                self.adapters.move_to_end(res.content_hash)

    def pin(self, res: Resident, delta: int) -> None:
        with self._lock:
            res.pins += delta
        if delta < 0:
            self._evict_over_limit(keep="")

    # -- prompts ---------------------------------------------------------------------------------------------
    def encode(self, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of the chat, rendered as the model was trained to see it."""
        return self.tokenizer(render_chat(self.tokenizer, messages), add_special_tokens=False)["input_ids"]


def render_chat(tok: Any, messages: list[dict[str, Any]]) -> str:
    """The tokenizer's chat template when it has one; else alignloop's training template ("User: ..." /
    "Assistant: "), so a single user turn renders exactly as `trainers.model_loading.render_prompt` does."""
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    lines = [f"{str(m['role']).capitalize()}: {str(m.get('content') or '').strip()}" for m in messages]
    return "\n".join(lines) + "\nAssistant: "


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
