"""The serving runtime behind its OpenAI-compatible HTTP app, on a tiny local model (a real uvicorn socket).

What a client sees: greedy output equal to plain PEFT token for token, the adapter's content hash on every
response, adapters by id / name / hash, same name + new weights = a new adapter, background attach with warm-up,
LRU eviction, OpenAI error bodies, SSE streaming, rollout routing by headers, Prometheus metrics.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="needs the train extra")
httpx = pytest.importorskip("httpx")

from tests.serving_helpers import ThreadServer, adapter, peft_greedy, runtime, tiny_base  # noqa: E402

PROMPTS = ["tell me about python", "explain kafka", "what is music", "tell me about taxes", "explain history",
           "what is travel", "tell me about gardens", "explain cooking", "what is health", "tell me about weather"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("serving")
    base = tiny_base(root / "base")
    return {"root": root, "base": base, "a": adapter(base, root / "a", seed=1, name="alpha"),
            "b": adapter(base, root / "b", seed=2, name="beta")}


@pytest.fixture(scope="module")
def server(world: dict[str, Any]) -> Any:
    from alignloop.serve.app import create_app

    rt = runtime(world["base"], max_resident=4)
    app = create_app(rt, metrics=rt.metrics, served_name="tiny")
    with ThreadServer(app) as srv:
        srv.runtime = rt
        srv.http = httpx.Client(base_url=srv.url, timeout=60)
        for name in ("a", "b"):
            srv.http.post("/v1/adapters", json={"path": str(world[name])}).raise_for_status()
        yield srv
        srv.http.close()
    rt.close()


def chat(srv: Any, prompt: str, model: str | None = None, **kw: Any) -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8, "temperature": 0,
            **kw}
    return srv.http.post("/v1/chat/completions", json=body, headers=kw.pop("headers", None) or {})


def test_content_hash_names_the_weights_not_the_name(world: dict[str, Any], tmp_path: Path):
    from trainers.serving.adapter_files import adapter_content_hash

    h = adapter_content_hash(world["a"])
    assert h.startswith("sha256:") and len(h) == 7 + 64
    same = adapter(world["base"], tmp_path / "same", seed=1, name="alpha")
    assert adapter_content_hash(same) == h  # same weights, same hash, whatever the directory
    (same / "manifest.json").write_text((same / "manifest.json").read_text().replace("0.0.1", "0.0.2"))
    assert adapter_content_hash(same) == h  # metadata is not the weights
    assert adapter_content_hash(adapter(world["base"], tmp_path / "new", seed=9, name="alpha")) != h


def test_server_output_equals_peft_in_process_token_for_token(server: Any, world: dict[str, Any]):
    want = peft_greedy(world["base"], world["a"], PROMPTS[0], 12)
    r = chat(server, PROMPTS[0], "alpha@0.0.1", max_tokens=12)
    assert r.status_code == 200
    tok = server.runtime.tokenizer
    assert r.json()["choices"][0]["message"]["content"] == tok.decode(want, skip_special_tokens=True)
    assert r.json()["usage"]["completion_tokens"] == len(want)


def test_two_adapters_answer_visibly_differently_on_ten_prompts(server: Any):
    outs = {m: [chat(server, p, m).json()["choices"][0]["message"]["content"] for p in PROMPTS]
            for m in ("alpha", "beta", "tiny")}
    differ = sum(a != b for a, b in zip(outs["alpha"], outs["beta"]))
    assert differ >= 9, outs
    assert sum(a != b for a, b in zip(outs["alpha"], outs["tiny"])) >= 9  # and differ from the base


def test_every_response_names_the_adapter_content_hash(server: Any, world: dict[str, Any]):
    from trainers.serving.adapter_files import adapter_content_hash

    h = adapter_content_hash(world["b"])
    for ref in ("beta", "beta@0.0.1", h, h.removeprefix("sha256:")[:16]):
        r = chat(server, "explain kafka", ref)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["adapter_hash"] == body["system_fingerprint"] == r.headers["x-alignloop-adapter-hash"] == h
        assert body["model"] == "beta@0.0.1"
    base = chat(server, "explain kafka", "tiny")
    assert base.json()["adapter_hash"] is None and base.headers["x-alignloop-adapter-hash"] == "base"


def test_same_name_with_new_weights_is_a_new_adapter(server: Any, world: dict[str, Any]):
    old = chat(server, "explain kafka", "alpha").json()
    newer = adapter(world["base"], world["root"] / "a2", seed=11, name="alpha")
    info = server.http.post("/v1/adapters", json={"path": str(newer)}).json()
    assert info["content_hash"] != old["adapter_hash"] and info["adapter_id"] == "alpha@0.0.1"
    now = chat(server, "explain kafka", "alpha").json()
    assert now["adapter_hash"] == info["content_hash"]  # the name follows the newest weights...
    again = chat(server, "explain kafka", old["adapter_hash"]).json()
    assert again["adapter_hash"] == old["adapter_hash"]  # ...and the old weights stay addressable by hash
    assert again["choices"][0]["message"]["content"] == old["choices"][0]["message"]["content"]
    hashes = [m["adapter_hash"] for m in server.http.get("/v1/models").json()["data"]]
    assert old["adapter_hash"] in hashes and info["content_hash"] in hashes
    server.http.delete(f"/v1/adapters/{info['content_hash']}").raise_for_status()


def test_background_attach_warms_before_ready_and_requests_wait(server: Any, world: dict[str, Any]):
    c = adapter(world["base"], world["root"] / "c", seed=3, name="gamma")
    r = server.http.post("/v1/adapters", json={"path": str(c), "wait": False})
    assert r.status_code == 202 and r.json()["state"] == "loading" and r.json()["warm_ms"] is None
    resp = chat(server, "explain kafka", "gamma")  # known at once; the request waits for the warm-up
    assert resp.status_code == 200, resp.text
    assert resp.json()["adapter_hash"] == r.json()["content_hash"]
    info = {a["content_hash"]: a for a in server.http.get("/v1/adapters").json()["adapters"]}
    got = info[resp.json()["adapter_hash"]]
    assert got["state"] == "ready" and got["warm_ms"] > 0 and got["attach_ms"] > 0
    warm = server.runtime.metrics.warm.collect()[0].samples
    assert any(s.name.endswith("_count") and s.value >= 3 for s in warm)
    server.http.delete(f"/v1/adapters/{got['content_hash']}").raise_for_status()


def test_lru_eviction_at_the_configured_count(world: dict[str, Any]):
    from trainers.serving.adapter_files import adapter_content_hash

    rt = runtime(world["base"], max_resident=2, golden_prompts=())
    try:
        dirs = [world["a"], world["b"], adapter(world["base"], world["root"] / "d", seed=4, name="delta")]
        ra, rb = rt.attach_sync(dirs[0]), rt.attach_sync(dirs[1])
        rt.touch(ra)  # b is now least recently used
        rt.attach_sync(dirs[2])
        held = {r.content_hash for r in rt.resident()}
        assert held == {adapter_content_hash(dirs[0]), adapter_content_hash(dirs[2])}
        assert rb.content_hash not in held and rt.lookup("beta") == (None, None)
        assert rt.metrics.resident._value.get() == 2
        detach = rt.metrics.detach.collect()[0].samples
        assert any(s.name.endswith("_count") and s.value == 1 for s in detach)
    finally:
        rt.close()


def _corrupt(world: dict[str, Any], tmp: Path) -> Path:
    d = adapter(world["base"], tmp / "corrupt", seed=5)
    (d / "adapter_model.safetensors").write_bytes(b"\x00garbage" * 10)
    return d


def _wrong_targets(world: dict[str, Any], tmp: Path) -> Path:
    from safetensors.torch import load_file, save_file

    d = adapter(world["base"], tmp / "targets", seed=6, targets=("q_proj",))
    f = d / "adapter_model.safetensors"
    save_file({k.replace("q_proj", "qkv_fused"): v for k, v in load_file(str(f)).items()}, str(f))
    return d


@pytest.mark.parametrize("case, code", [("missing", "adapter_not_found"), ("corrupt", "invalid_adapter"),
                                        ("other_base", "adapter_base_mismatch"),
                                        ("other_base_allowed", "adapter_shape_mismatch"),
                                        ("targets", "adapter_target_mismatch")])
def test_bad_adapters_are_clear_errors_and_the_server_keeps_serving(server: Any, world: dict[str, Any],
                                                                    tmp_path: Path, case: str, code: str):
    if case == "missing":
        d = tmp_path / "nope"
    elif case == "corrupt":
        d = _corrupt(world, tmp_path)
    elif case == "targets":
        d = _wrong_targets(world, tmp_path)
    else:
        other = tiny_base(tmp_path / "other", hidden=48)
        d = adapter(other, tmp_path / "foreign", seed=7)
    server.runtime.allow_other_base = case == "other_base_allowed"
    try:
        r = server.http.post("/v1/adapters", json={"path": str(d)})
    finally:
        server.runtime.allow_other_base = False
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["type"] == "invalid_request_error" and str(d) in err["message"]
    assert chat(server, "explain kafka", "alpha").status_code == 200


@pytest.mark.parametrize("body, status, code, param", [
    (b"{not json", 400, "invalid_request_body", None),
    (json.dumps({"model": "alpha"}).encode(), 400, "invalid_request_body", "messages"),
    (json.dumps({"messages": [{"role": "wizard", "content": "x"}]}).encode(), 400, "invalid_request_body",
     "messages.0.role"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "n": 2}).encode(), 400, "invalid_request_body",
     "n"),
    (json.dumps({"model": "no-such", "messages": [{"role": "user", "content": "x"}]}).encode(), 404,
     "model_not_found", "model"),
    (json.dumps({"messages": [{"role": "user", "content": "python " * 300}]}).encode(), 400,
     "context_length_exceeded", "messages"),
    (json.dumps({"messages": [{"role": "user", "content": "python"}], "max_tokens": 500}).encode(), 400,
     "context_length_exceeded", "messages"),
])
def test_bad_requests_get_openai_error_bodies(server: Any, body: bytes, status: int, code: str, param: str | None):
    r = server.http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["code"], err["param"]) == (code, param) and err["message"]
    assert chat(server, "explain kafka", "beta").status_code == 200


def test_streaming_sends_the_same_text_as_a_plain_request(server: Any):
    plain = chat(server, "tell me about music", "beta", max_tokens=10).json()
    body = {"model": "beta", "messages": [{"role": "user", "content": "tell me about music"}], "max_tokens": 10,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    with server.http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-alignloop-adapter-hash"] == plain["adapter_hash"]
        lines = [ln[len("data: "):] for ln in r.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(x) for x in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == plain["choices"][0]["message"]["content"]
    assert {c["adapter_hash"] for c in chunks} == {plain["adapter_hash"]}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 10


def _streamed_text(server: Any, body: dict[str, Any]) -> tuple[str, str]:
    with server.http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        chunks = [json.loads(ln[len("data: "):]) for ln in r.iter_lines()
                  if ln.startswith("data: ") and ln != "data: [DONE]"]
    deltas = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    return "".join(deltas), [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1]


def test_streaming_never_sends_a_stop_sequence_even_in_part(server: Any):
    from alignloop.serve.app import streamable

    assert streamable("the END", ["END"]) == "the " and streamable("the EN", ["END"]) == "the "
    assert streamable("the E", ["END", "Ex"]) == "the " and streamable("the Ez", ["END"]) == "the Ez"
    body = {"model": "beta", "messages": [{"role": "user", "content": "tell me about music"}], "max_tokens": 12,
            "temperature": 0}
    full = chat(server, "tell me about music", "beta", max_tokens=12).json()["choices"][0]["message"]["content"]
    assert len(full) >= 8, full
    stop = full[4:8]  # a stop sequence the greedy output reaches mid-way
    plain = server.http.post("/v1/chat/completions", json={**body, "stop": stop}).json()["choices"][0]
    text, finish = _streamed_text(server, {**body, "stop": stop})
    assert text == plain["message"]["content"] == full[: full.find(stop)]
    assert stop not in text and finish == plain["finish_reason"] == "stop"


def test_rollout_headers_route_conversations_by_flagd_bucketing(world: dict[str, Any]):
    from alignloop.serve.app import create_app
    from alignloop.serve.routing import StaticRolloutSource
    from schemas.rollout import RolloutFlag
    from streams.rollout.bucketing import assign
    from trainers.serving.adapter_files import adapter_content_hash

    ha, hb = adapter_content_hash(world["a"]), adapter_content_hash(world["b"])
    flag = RolloutFlag(agent_id="bot", version=3, rollout_id="r1", stage="canary",
                       baseline={"policy_id": "p-base", "adapter_id": "alpha@0.0.1", "adapter_hash": ha},
                       candidate={"policy_id": "p-cand", "adapter_id": "beta@0.0.1", "adapter_hash": hb},
                       weights={"baseline": 50, "candidate": 50})
    rt = runtime(world["base"], max_resident=4, golden_prompts=())
    rt.known.update({"alpha@0.0.1": str(world["a"]), "beta@0.0.1": str(world["b"])})  # attached on demand
    with ThreadServer(create_app(rt, rollout=StaticRolloutSource({"bot": flag}))) as srv:
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            seen = set()
            for i in range(12):
                conv = f"conv-{i}"
                r = http.post("/v1/chat/completions", headers={"x-agent-id": "bot", "x-conversation-id": conv},
                              json={"messages": [{"role": "user", "content": "explain kafka"}], "max_tokens": 2})
                assert r.status_code == 200, r.text
                want = assign(flag, conv)
                assert r.headers["x-alignloop-variant"] == want
                assert r.json()["adapter_hash"] == (hb if want == "candidate" else ha)
                assert r.headers["x-alignloop-policy-id"] == ("p-cand" if want == "candidate" else "p-base")
                seen.add(want)
            assert seen == {"baseline", "candidate"}
            other = http.post("/v1/chat/completions", headers={"x-agent-id": "unknown-agent"},
                              json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 2})
            assert other.json()["adapter_hash"] is None  # no flag: the base model
    rt.close()


def test_metrics_count_requests_tokens_and_latency_per_adapter(server: Any):
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[tuple[str, tuple], float]:
        text = server.http.get("/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}

    before = scrape()
    r = chat(server, "explain kafka", "beta", max_tokens=5).json()
    label = r["adapter_hash"][:19]
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("alignloop_serve_requests_total", adapter=label, status="ok") == 1
    assert delta("alignloop_serve_tokens_total", adapter=label, kind="completion") == 5
    assert delta("alignloop_serve_request_latency_seconds_count", adapter=label) == 1
    assert after[("alignloop_serve_resident_adapters", ())] >= 2
    assert after[("alignloop_serve_attach_seconds_count", ())] >= 2


def test_the_last_adapter_detached_and_attached_again(world: dict[str, Any]):
    rt = runtime(world["base"], max_resident=2, golden_prompts=())
    try:
        res = rt.attach_sync(world["a"])
        rt.evict(res.content_hash)
        assert rt.resident() == [] and rt.lookup("alpha") == (None, None)
        again = rt.attach_sync(world["a"])
        assert again.content_hash == res.content_hash and again.state == "ready"
    finally:
        rt.close()


def test_the_gpu_benchmark_path_runs_on_a_small_shape(tmp_path: Path):
    """`bench swap`'s ~1B GPU case is the same code as this small bf16 Llama on CPU: attach and switch are timed
    for both sides, so the first GPU run cannot fail on a path that never ran."""
    from alignloop.bench.swap import large_case

    shape = dict(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    out = large_case(tmp_path, rounds=2, shape=shape)
    assert out["device"] == "cpu" and out["shape"] == shape and out["params"] > 32000 * 64
    assert out["attach"]["ours"]["n"] == out["attach"]["peft"]["n"] == 2 * 4
    assert out["switch"]["ours_inline"]["n"] == out["switch"]["peft"]["n"] == 20
