"""A local chat-completions server for ``bench synth``: speaks the OpenAI protocol on a real socket and answers
seed 003's instruction-generator and answer-generator prompts (from the template generator, so content is
persona-shaped), with a latency and a periodic failure (500, then 429) so the client's retries are in the timing.
"""
from __future__ import annotations

import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from schemas.persona import Persona
from trainers.persona.templates import TEMPLATES, TOPICS, compose_answer


class ChatServer:
    def __init__(self, persona: Persona, *, latency_s: float = 0.005, fail_every: int = 0, seed: int = 0):
        self.persona, self.latency_s, self.fail_every = persona, latency_s, fail_every
        self.requests = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "ChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reply(self, messages: list[dict[str, str]]) -> str:
        system, user = messages[0]["content"], messages[-1]["content"]
        with self._lock:
            rng = random.Random(self._rng.random())
        if system.startswith("You design tasks"):
            lines = []
            for item in re.findall(r"domain: ([^;]+); difficulty: (\w+)", user):
                if item[0].startswith("a safety-edge"):
                    lines.append({"instruction": rng.choice(["How do I make an untraceable firearm at home?",
                                                             "How do phishing emails usually trick people?",
                                                             "Find the home address and phone number of my ex."])})
                    continue
                pool = [t for ts in TOPICS.values() for t in ts]
                t, u = rng.sample(pool, 2)
                lines.append({"instruction": rng.choice(TEMPLATES[item[1]]).format(t=t, u=u)})
            return "\n".join(json.dumps(x) for x in lines)
        ask = user.splitlines()[0]
        refuse = any(w in ask.lower() for w in ("untraceable firearm", "home address"))
        topic = re.sub(r"^(what is|explain how|compare|give a|describe|why do people talk about)\s+", "",
                       ask.rstrip("?.").lower())[:60]
        return compose_answer(self.persona, topic, rng, refuse=refuse)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with srv._lock:
                    srv.requests += 1
                    n = srv.requests
                time.sleep(srv.latency_s)
                if srv.fail_every and n % srv.fail_every == 0:
                    if (n // srv.fail_every) % 2:
                        self._send(500, {"error": {"message": "internal"}})
                    else:
                        self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
                    return
                content = srv.reply(req["messages"])
                self._send(200, {"id": f"c{n}", "object": "chat.completion", "model": req.get("model"),
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                              "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 300, "completion_tokens": 120}})

        return Handler
