"""A local webhook receiver that verifies Standard Webhooks signatures and fails on purpose.

Modes, queued with ``script([...])`` (when empty: ``default``): ``ok`` (204), ``500``, ``400``, ``429``, ``hang``
(accepts, says nothing for ``hang_s``). Every request is recorded with its headers, body and whether the signature
verified (``standardwebhooks.Webhook.verify``, the receiver side of the spec).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    def __init__(self, secret: str, *, default: str = "ok", hang_s: float = 10.0) -> None:
        from standardwebhooks import Webhook

        self.webhook = Webhook(secret)
        self.default, self.hang_s = default, hang_s
        self.modes: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def script(self, modes: list[str]) -> None:
        self.modes.extend(modes)

    def verified(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["verified"]]

    def close(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    data = outer.webhook.verify(body, headers)
                    ok = True
                except Exception:
                    data, ok = None, False
                with outer._lock:
                    mode = outer.modes.popleft() if outer.modes else outer.default
                    outer.requests.append({"headers": headers, "body": body, "data": data, "verified": ok,
                                           "mode": mode, "at": time.monotonic()})
                if mode == "hang":
                    outer._stopping.wait(outer.hang_s)
                    return
                code = 401 if not ok else {"ok": 204, "500": 500, "400": 400, "429": 429}[mode]
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

        return Handler
