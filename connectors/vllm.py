"""A client for vLLM's runtime LoRA endpoints: ``GET /v1/models``, ``POST /v1/load_lora_adapter``,
``POST /v1/unload_lora_adapter``.

vLLM serves these only when started with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (and ``--enable-lora``,
``--max-loras`` >= the adapters kept resident); without it the routes are 404, which this client reports as that
fix. Loading a name that is already loaded is a 400 ("has already been loaded"); unloading an unknown name is a
404. Both are idempotent outcomes for a syncer, reported as such (``already``) rather than as failures.
Adapters are named by content hash: a same-name reload with new weights would meet vLLM's stale prefix cache
(vllm-project/vllm#42125); a new hash is a new name, so it never can.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

RUNTIME_LORA_FIX = "start vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora"


class VllmError(Exception):
    """A vLLM call failed; ``status`` is the HTTP status (0: no answer), ``retryable`` whether to try again."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class LoraOutcome:
    name: str
    action: str  # loaded | unloaded
    already: bool  # vLLM already had it loaded (load) or did not have it (unload)
    seconds: float


def _message(resp: Any) -> str:
    """vLLM's error message: ``{"error": {"message"}}`` (newer) or ``{"message"}`` (older), else the text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return resp.text[:300]


class VllmClient:
    def __init__(self, base_url: str, *, api_key: SecretStr | None = None, timeout_s: float = 30.0,
                 retries: int = 2, backoff_s: float = 0.5) -> None:
        import httpx

        url = base_url.rstrip("/")
        self.base_url = url[:-3] if url.endswith("/v1") else url
        headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}
        self.retries, self.backoff_s = retries, backoff_s
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "VllmClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        import httpx

        for attempt in range(self.retries + 1):
            try:
                resp = self._http.request(method, path, json=json)
            except httpx.HTTPError as exc:
                err = VllmError(f"vLLM at {self.base_url} did not answer {method} {path}: "
                                f"{exc.__class__.__name__}: {exc}")
            else:
                if resp.status_code < 400:
                    return resp
                err = VllmError(f"vLLM {method} {path} -> {resp.status_code}: {_message(resp)}", resp.status_code)
                if resp.status_code == 404 and path.endswith("lora_adapter") and "adapter" not in _message(resp).lower():
                    raise VllmError(f"vLLM at {self.base_url} has no {path} endpoint; {RUNTIME_LORA_FIX}", 404)
                if not err.retryable:
                    raise err
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        raise err

    def models(self) -> list[dict[str, Any]]:
        """Every model card: the base model(s) and the loaded LoRA adapters (``parent`` set, ``root`` = path)."""
        return list(self._call("GET", "/v1/models").json().get("data", []))

    def loaded_loras(self) -> dict[str, str]:
        """Loaded LoRA adapters: name -> path."""
        return {m["id"]: m.get("root") or "" for m in self.models() if m.get("parent")}

    def load_lora(self, name: str, path: str) -> LoraOutcome:
        started = time.perf_counter()
        try:
            self._call("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
            already = False
        except VllmError as exc:
            if exc.status != 400 or "already been loaded" not in str(exc):
                raise
            already = True
        return LoraOutcome(name, "loaded", already, time.perf_counter() - started)

    def unload_lora(self, name: str) -> LoraOutcome:
        started = time.perf_counter()
        try:
            self._call("POST", "/v1/unload_lora_adapter", {"lora_name": name})
            already = False
        except VllmError as exc:
            if exc.status != 404 or "cannot be found" not in str(exc):
                raise
            already = True
        return LoraOutcome(name, "unloaded", already, time.perf_counter() - started)
