"""Building and running the server: runtime + metrics + app, adapters preloaded in the background, uvicorn."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOLDEN_FILE = Path("configs/eval/golden_v0.jsonl")


@dataclass
class ServeOptions:
    base: str
    host: str = "127.0.0.1"
    port: int = 8000
    max_resident: int = 8
    adapters: list[str] = field(default_factory=list)
    from_registry: bool = False
    warm_prompts: int = 3
    golden: Path | None = None
    served_name: str | None = None
    allow_other_base: bool = False
    rollout: Any = None  # a RolloutSource, or None


def golden_prompts(path: Path | None, n: int) -> tuple[str, ...]:
    """The first ``n`` prompts of the golden eval set (the warm-up every adapter answers before it is ready)."""
    from trainers.serving.runtime import DEFAULT_GOLDEN

    src = path or GOLDEN_FILE
    if n <= 0:
        return ()
    if not src.is_file():
        if path is not None:
            raise ValueError(f"--golden {path} does not exist")
        return DEFAULT_GOLDEN[:n]
    out = []
    for line in src.read_text().splitlines():
        if line.strip():
            out.append(str(json.loads(line)["prompt"]))
        if len(out) >= n:
            break
    return tuple(out)


class RegistryAdapters:
    """Registry rows -> the runtime's ``known`` map (adapter id and name -> directory), re-read on a miss at
    most every ``min_interval_s`` (a promoted adapter becomes servable without a restart)."""

    def __init__(self, settings: Any, runtime: Any, min_interval_s: float = 5.0) -> None:
        self.settings, self.runtime, self.min_interval_s = settings, runtime, min_interval_s
        self._last = 0.0
        self._lock = threading.Lock()

    def rows(self) -> list[dict[str, Any]]:
        from trainers.registry import list_adapters

        return [r for r in list_adapters(self.settings) if r.get("kind") != "reward"]

    def refresh(self, force: bool = False) -> list[dict[str, Any]]:
        import time

        with self._lock:
            if not force and time.monotonic() - self._last < self.min_interval_s:
                return []
            self._last = time.monotonic()
        rows = self.rows()
        for r in reversed(rows):  # oldest first, so the newest version of a name wins
            self.runtime.known[r["adapter_id"]] = r["path"]
            self.runtime.known[r["name"]] = r["path"]
        return rows


def build(opts: ServeOptions, settings: Any = None) -> tuple[Any, Any]:
    """(app, runtime): the base model loaded, preloads started in the background (``/ready`` waits for them)."""
    from prometheus_client import CollectorRegistry

    from alignloop.serve.app import create_app
    from trainers.serving.metrics import ServingMetrics
    from trainers.serving.runtime import ServingRuntime

    metrics = ServingMetrics(CollectorRegistry())
    runtime = ServingRuntime(opts.base, max_resident=opts.max_resident, allow_other_base=opts.allow_other_base,
                             golden_prompts=golden_prompts(opts.golden, opts.warm_prompts), metrics=metrics).load()
    registry = RegistryAdapters(settings, runtime) if opts.from_registry else None
    preload = list(opts.adapters)
    if registry is not None:
        rows = registry.refresh(force=True)
        # the newest adapter that passed its gate first, up to the resident limit
        rows.sort(key=lambda r: (r.get("status") != "gate_passed", -r["created_at"].timestamp()))
        preload += [r["path"] for r in rows[: max(0, opts.max_resident - len(preload))]]
    app = create_app(runtime, metrics=metrics, rollout=opts.rollout,
                     refresh_known=registry.refresh if registry else None, served_name=opts.served_name)
    app.state.preload = [runtime.attach(p) for p in preload]
    return app, runtime


def run(opts: ServeOptions, settings: Any = None) -> None:
    import uvicorn

    app, runtime = build(opts, settings)
    for fut in app.state.preload:  # a preload that fails is reported, the server still serves the rest
        fut.add_done_callback(_report)
    try:
        uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning")
    finally:
        runtime.close()


def _report(fut: Any) -> None:
    import sys

    exc = fut.exception()
    if exc is not None:
        print(f"alignloop serve: preload failed: {exc}", file=sys.stderr)
    else:
        r = fut.result()
        print(f"adapter ready: {r.label} {r.content_hash} (attach {r.attach_s * 1000:.1f} ms, "
              f"warm {r.warm_s * 1000:.1f} ms)", flush=True)


class ThreadServer:
    """uvicorn on a free port in a background thread (tests, benchmarks): a real socket, real streams."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="off"))
        self.thread: Any = None

    def __enter__(self) -> "ThreadServer":
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)
