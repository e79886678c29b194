"""A local HTTP server speaking vLLM's runtime-LoRA endpoints, with their documented behaviour and failure modes.

As vLLM's ``OpenAIServingModels`` (``vllm/entrypoints/openai/serving_models.py``) answers them:
``POST /v1/load_lora_adapter {"lora_name", "lora_path"}`` -> 200 "Success: LoRA adapter 'x' added
successfully."; 400 InvalidUserInput when a field is missing or the name "has already been loaded"; 404
NotFoundError "No adapter found for <path>" when the path does not exist; 400 BadRequestError when it exists but
is no adapter. ``POST /v1/unload_lora_adapter {"lora_name"}`` -> 200, or 404 "The lora adapter 'x' cannot be
found.". ``GET /v1/models`` lists the base and each LoRA (``parent`` = base, ``root`` = path).
``/v1/chat/completions`` answers for a loaded name (404 otherwise), naming the adapter that answered.
With ``runtime_updates=False`` the LoRA routes do not exist (vLLM without VLLM_ALLOW_RUNTIME_LORA_UPDATING).
Failure modes, queued per LoRA call with ``script([...])``: ``500``, ``slow`` (sleeps ``slow_s`` then answers).
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class FakeVllmServer:
    def __init__(self, *, base_model: str = "base-model", runtime_updates: bool = True, slow_s: float = 1.0,
                 max_loras: int = 8) -> None:
        self.base_model, self.runtime_updates, self.slow_s, self.max_loras = base_model, runtime_updates, slow_s, max_loras
        self.loras: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, Any], int]] = []  # (path, body, status)
        self.modes: deque[str] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeVllmServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, modes: list[str]) -> None:
        with self._lock:
            self.modes.extend(modes)

    def _mode(self) -> str:
        with self._lock:
            return self.modes.popleft() if self.modes else "ok"

    # -- endpoint behaviour -------------------------------------------------------------------------------
    def load(self, body: dict[str, Any]) -> tuple[int, Any]:
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return 400, _err("Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput", 400)
        with self._lock:
            if name in self.loras:
                return 400, _err(f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput", 400)
        p = Path(path)
        if not p.exists():
            return 404, _err(f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError", 404)
        if not (p / "adapter_config.json").is_file():
            return 400, _err(f"Loading lora {name} failed: {path} has no adapter_config.json", "BadRequestError", 400)
        with self._lock:
            if len(self.loras) >= self.max_loras:
                return 400, _err(f"cannot load {name}: max_loras={self.max_loras} reached", "BadRequestError", 400)
            self.loras[name] = path
        return 200, f"Success: LoRA adapter '{name}' added successfully."

    def unload(self, body: dict[str, Any]) -> tuple[int, Any]:
        name = body.get("lora_name")
        if not name and not body.get("lora_int_id"):
            return 400, _err("either 'lora_name' and 'lora_int_id' needs to be provided.", "InvalidUserInput", 400)
        with self._lock:
            if name not in self.loras:
                return 404, _err(f"The lora adapter '{name}' cannot be found.", "NotFoundError", 404)
            del self.loras[name]
        return 200, f"Success: LoRA adapter '{name}' removed successfully."

    def models(self) -> dict[str, Any]:
        with self._lock:
            cards = [{"id": self.base_model, "object": "model", "root": self.base_model, "parent": None}]
            cards += [{"id": n, "object": "model", "root": p, "parent": self.base_model} for n, p in self.loras.items()]
        return {"object": "list", "data": cards}

    def chat(self, body: dict[str, Any]) -> tuple[int, Any]:
        model = body.get("model")
        with self._lock:
            known = model == self.base_model or model in self.loras
        if not known:
            return 404, _err(f"The model `{model}` does not exist.", "NotFoundError", 404)
        return 200, {"object": "chat.completion", "model": model,
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answered by {model}"},
                                  "finish_reason": "stop"}]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any) -> None:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                data = text.encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain" if isinstance(payload, str) else "application/json")
                self.send_header("content-length", str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timed out) first
                    pass

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send(200, fake.models())
                else:
                    self._send(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                routes = {"/v1/chat/completions": fake.chat}
                if fake.runtime_updates:
                    routes.update({"/v1/load_lora_adapter": fake.load, "/v1/unload_lora_adapter": fake.unload})
                fn = routes.get(self.path)
                if fn is None:
                    return self._send(404, {"detail": "Not Found"})
                if fn is not fake.chat:
                    mode = fake._mode()
                    if mode == "500":
                        fake.calls.append((self.path, body, 500))
                        return self._send(500, _err("EngineCore died", "InternalServerError", 500))
                    if mode == "slow":
                        time.sleep(fake.slow_s)
                status, payload = fn(body)
                if fn is not fake.chat:
                    fake.calls.append((self.path, body, status))
                self._send(status, payload)

        return Handler


def _err(message: str, type_: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}
