"""`alignloop serve --adapters-from-registry`: registry adapters are served by id; the newest gate-passed ones
are preloaded up to the resident limit, others attached on first request, and ``/ready`` waits for preloads."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="needs the train extra")
httpx = pytest.importorskip("httpx")

from tests.serving_helpers import ThreadServer, adapter, tiny_base  # noqa: E402


def _register(settings, d: Path, passed: bool) -> None:
    import json

    from schemas.registry import AdapterManifest
    from trainers.registry import registry_row, write_row

    m = AdapterManifest(**json.loads((d / "manifest.json").read_text()))
    m.gate = {"passed": passed}
    write_row(settings, registry_row(m, "gated"))


def test_registry_adapters_are_served_by_id(tmp_path: Path):
    from alignloop.serve.server import ServeOptions, build
    from schemas.settings import Settings
    from trainers.serving.adapter_files import adapter_content_hash

    settings = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"))
    base = tiny_base(tmp_path / "base")
    good = adapter(base, tmp_path / "good", seed=1, name="good")
    other = adapter(base, tmp_path / "other", seed=2, name="other")
    _register(settings, other, passed=False)
    _register(settings, good, passed=True)
    app, rt = build(ServeOptions(base=base, from_registry=True, max_resident=1, warm_prompts=1), settings)
    try:
        with ThreadServer(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
            [fut.result(60) for fut in app.state.preload]
            assert http.get("/ready").status_code == 200
            assert [a["adapter_id"] for a in http.get("/v1/adapters").json()["adapters"]] == ["good@0.0.1"]
            r = http.post("/v1/chat/completions", json={"model": "other@0.0.1", "max_tokens": 3,
                                                         "messages": [{"role": "user", "content": "explain kafka"}]})
            assert r.status_code == 200 and r.json()["adapter_hash"] == adapter_content_hash(other)
            held = [a["adapter_id"] for a in http.get("/v1/adapters").json()["adapters"]]
            assert held == ["other@0.0.1"]  # resident limit 1: the least recently used went
    finally:
        rt.close()
