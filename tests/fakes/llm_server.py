"""A local HTTP server speaking the OpenAI chat-completions protocol, with failure modes, for LLM-judge tests.

It is a real server on a real socket (stdlib ``ThreadingHTTPServer``), so the client's timeouts, retries, headers
and JSON handling are exercised end to end. Queue failure modes with ``script([...])``; when the script is empty
every request succeeds. Modes: ``ok``, ``timeout`` (sleeps past the client timeout), ``429`` (Retry-After),
``500``, ``malformed`` (content is not JSON), ``bad_schema`` (JSON missing required keys), ``garbage`` (the HTTP
body itself is not JSON), ``unjudgeable``; and the failures of a hung or sloppy endpoint: ``hang`` (accepts the
request, says nothing for ``hang_s``), ``trickle`` (sends the headers, then one body byte every 0.1 s for
``hang_s``: no read ever times out), ``contradictory`` (passed=true with a safety score of 0.1, all in range),
``string_numbers`` (scores and confidence as strings such as "0.95", passed as "yes").

Successful judgements are deterministic: a trace whose text contains ``BAD`` fails, otherwise it passes; in
pairwise mode the answer containing ``GOOD`` wins, or — with ``position_bias=True`` — always answer A.
A ``responder(messages) -> str | None`` answers other protocols (synthetic data, completions): a string is the
reply's content, None falls through to the judge.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLlmServer:
    def __init__(self, *, latency_s: float = 0.0, timeout_sleep_s: float = 2.0, retry_after: str = "0",
                 hang_s: float = 30.0):
        self.latency_s, self.timeout_sleep_s, self.retry_after = latency_s, timeout_sleep_s, retry_after
        self.hang_s = hang_s
        self._stopping = threading.Event()  # ends hanging handlers when the server closes
        self.modes: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.position_bias = False
        self.responder: Any = None
        self.confidence = 0.9
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeLlmServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def script(self, modes: list[str]) -> None:
        with self._lock:
            self.modes.extend(modes)

    def _next_mode(self) -> str:
        with self._lock:
            return self.modes.popleft() if self.modes else "ok"

    # -- replies -------------------------------------------------------------------------------------------
    def judgement(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        system, user = messages[0]["content"], messages[-1]["content"]
        if '"result"' in system:  # an RFT score_model grader asking for {"result": <score>}
            return {"result": 0.1 if "BAD" in user else 0.9}
        if "Answer A" in user:  # pairwise rubric
            a = user.split("## Answer A", 1)[1].split("## Answer B", 1)[0]
            b = user.split("## Answer B", 1)[1]
            if self.position_bias:
                winner = "A"
            else:
                winner = "A" if "GOOD" in a and "GOOD" not in b else "B" if "GOOD" in b and "GOOD" not in a else "tie"
            return {"winner": winner, "strength": 0.8, "rationale": f"picked {winner}", "safety_tags": []}
        bad = "BAD" in user
        s = 0.2 if bad else 0.9
        assert "task_success" in system  # the rubric prompt was sent
        return {"scores": {d: s for d in ("task_success", "helpfulness", "safety", "policy_compliance",
                                          "tool_correctness")},
                "passed": not bad, "confidence": self.confidence, "rationale": "bad turn" if bad else "fine",
                "safety_tags": ["hidden_tool_failure"] if bad else [], "unjudgeable": False}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with fake._lock:
                    fake.requests.append(req)
                    fake.headers.append(dict(self.headers))
                mode = fake._next_mode()
                with fake._lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._reply(mode, req)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _reply(self, mode: str, req: dict[str, Any]) -> None:
                if fake.latency_s:
                    time.sleep(fake.latency_s)
                if mode == "timeout":
                    time.sleep(fake.timeout_sleep_s)
                    self._send(200, b"{}")
                    return
                if mode == "hang":
                    fake._stopping.wait(fake.hang_s)
                    return
                if mode == "trickle":
                    self._trickle()
                    return
                if mode == "429":
                    self._send(429, b'{"error": {"message": "rate limited"}}', {"Retry-After": fake.retry_after})
                    return
                if mode == "500":
                    self._send(500, b'{"error": {"message": "internal"}}')
                    return
                if mode == "garbage":
                    self._send(200, b"<html>proxy error</html>")
                    return
                if mode == "malformed":
                    content = "Sure! The answer passes, I think. {scores: maybe}"
                elif mode == "bad_schema":
                    content = json.dumps({"passed": True})
                elif mode == "contradictory":
                    verdict = fake.judgement(req["messages"])
                    verdict["scores"]["safety"], verdict["passed"] = 0.1, True
                    content = json.dumps(verdict)
                elif mode == "string_numbers":
                    verdict = fake.judgement(req["messages"])
                    verdict["scores"] = {d: str(v) for d, v in verdict["scores"].items()}
                    verdict["confidence"], verdict["passed"] = "0.95", "yes" if verdict["passed"] else "no"
                    content = json.dumps(verdict)
                elif mode == "unjudgeable":
                    content = json.dumps({"scores": {}, "passed": False, "confidence": 0.0,
                                          "rationale": "unreadable", "unjudgeable": True})
                elif fake.responder is not None and (own := fake.responder(req["messages"])) is not None:
                    content = own
                else:
                    content = "```json\n" + json.dumps(fake.judgement(req["messages"])) + "\n```"
                body = {"id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion", "created": int(time.time()),
                        "model": req.get("model", "fake"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}}
                self._send(200, json.dumps(body).encode())

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                deadline = time.monotonic() + fake.hang_s
                try:
                    while time.monotonic() < deadline and not fake._stopping.wait(0.1):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
