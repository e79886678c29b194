"""`alignloop serve` as a process: ready only after its preloaded adapter is warm; a client that disconnects
mid-stream cancels its own generation and nobody else's; `alignloop swap` / `infer` against it (--url) and
in-process give the same answer."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.serving_helpers import adapter, tiny_base

pytestmark = pytest.mark.integration
httpx = pytest.importorskip("httpx")
pytest.importorskip("torch", reason="needs the train extra")

CLI = [sys.executable, "-m", "alignloop.cli"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("serve-http")
    base = tiny_base(root / "base", max_positions=512)
    a, b = adapter(base, root / "a", seed=1, name="alpha"), adapter(base, root / "b", seed=2, name="beta")
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIGNLOOP_")}
    proc = subprocess.Popen([*CLI, "serve", "--base", base, "--adapter", str(a), "--port", str(port),
                             "--warm-prompts", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.stdout.read()}")
        try:
            return httpx.get(f"{url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 300, interval=0.3, what="serve ready")
        yield {"url": url, "base": base, "a": a, "b": b, "env": env}
    finally:
        proc.terminate()
        proc.wait(20)


def test_ready_means_the_preloaded_adapter_is_warm(served):
    adapters = httpx.get(f"{served['url']}/v1/adapters").json()["adapters"]
    assert [(x["adapter_id"], x["state"]) for x in adapters] == [("alpha@0.0.1", "ready")]
    assert adapters[0]["warm_ms"] > 0


def test_a_client_disconnecting_mid_stream_does_not_hurt_others(served):
    url = served["url"]
    body = {"model": "alpha", "messages": [{"role": "user", "content": "tell me about python"}], "max_tokens": 400,
            "temperature": 0, "stream": True}
    got: list[str] = []

    def leaver() -> None:
        with httpx.Client(timeout=60) as c, c.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got.append(line)
                if len(got) >= 3:
                    return  # closes the connection mid-stream

    t = threading.Thread(target=leaver)
    t.start()
    other = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                       json={"model": "alpha", "messages": [{"role": "user", "content": "explain kafka"}],
                             "max_tokens": 6, "temperature": 0})
    t.join(60)
    assert len(got) == 3
    assert other.status_code == 200 and 1 <= other.json()["usage"]["completion_tokens"] <= 6
    again = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                       json={"model": "alpha", "messages": [{"role": "user", "content": "explain kafka"}],
                             "max_tokens": 6, "temperature": 0}).json()
    assert again["choices"] == other.json()["choices"]  # the server is unharmed, and deterministic

    def cancelled() -> float:
        text = httpx.get(f"{url}/metrics").text
        return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
                   if ln.startswith("alignloop_serve_requests_total") and 'status="cancelled"' in ln)

    wait_for(lambda: cancelled() == 1, 30, interval=0.3, what="the stream's generation cancelled")
    tokens = [ln for ln in httpx.get(f"{url}/metrics").text.splitlines()
              if ln.startswith("alignloop_serve_client_disconnects_total")]
    assert tokens and float(tokens[0].rsplit(" ", 1)[1]) == 1


def test_swap_and_infer_against_the_server_match_in_process(served):
    from typer.testing import CliRunner

    from alignloop.cli import app
    from alignloop.errors import UserError
    from trainers.serving.adapter_files import adapter_content_hash

    url, b, cli = served["url"], served["b"], CliRunner()
    swap = cli.invoke(app, ["swap", "--url", url, "--adapter", str(b)])
    assert swap.exit_code == 0, swap.output
    h = adapter_content_hash(b)
    assert h in swap.stdout and "beta@0.0.1" in swap.stdout
    args = ["infer", "--adapter", str(b), "-p", "tell me about music", "--max-new-tokens", "6"]
    remote, local = cli.invoke(app, [*args, "--url", url]), cli.invoke(app, args)  # local: in this process
    assert remote.exit_code == 0 and local.exit_code == 0, (remote.output, local.output)
    assert remote.stdout.strip() and remote.stdout == local.stdout
    assert f"[adapter {h}]" in remote.stderr and f"[adapter {h}]" in local.stderr
    bad = cli.invoke(app, ["swap", "--url", url, "--adapter", str(Path(b).parent / "missing")])
    assert isinstance(bad.exception, UserError) and "does not exist" in str(bad.exception)
    models = json.loads(httpx.get(f"{url}/v1/models").text)["data"]
    assert {m["adapter_hash"] for m in models} >= {h}
