"""`alignloop serve | swap | infer | vllm-sync`: serve adapters over the OpenAI protocol, hot-swap them, drive vLLM.

``swap`` and ``infer`` (seed 003) talk to a running server with ``--url``, or load the base in-process.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer

from alignloop.errors import UserError


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("swap")(swap)
    app.command("infer")(infer)
    app.command("vllm-sync")(vllm_sync)


def _rollout_source(flags: Optional[Path], follow: bool) -> Any:
    if flags is not None:
        from alignloop.commands.rollout import load_flags
        from alignloop.serve.routing import StaticRolloutSource

        return StaticRolloutSource(load_flags(flags))
    if not follow:
        return None
    try:  # the rollout SDK follows rollout.flags (connectors/rollout_client.py)
        from connectors.rollout_client import RolloutClient
    except ImportError:
        raise UserError("--rollout needs connectors.rollout_client (the rollout SDK); pass --flags FILE "
                        "instead") from None
    from schemas.settings import load_settings

    client = RolloutClient(load_settings())
    client.start()
    return client


def serve(base: str = typer.Option(..., "--base", help="Base model: a local directory or a hub id."),
          port: int = typer.Option(8000, "--port"), host: str = typer.Option("127.0.0.1", "--host"),
          adapters_from_registry: bool = typer.Option(False, "--adapters-from-registry",
                                                      help="Serve the registry's adapters by id; preload the newest."),
          adapter: list[Path] = typer.Option([], "--adapter", help="Adapter directory to preload (repeatable)."),
          max_resident: int = typer.Option(8, "--max-resident", min=1, help="Adapters kept resident (LRU)."),
          warm_prompts: int = typer.Option(3, "--warm-prompts", min=0, help="Golden prompts each new adapter "
                                           "answers before it is ready."),
          golden: Optional[Path] = typer.Option(None, "--golden", help="Golden prompts JSONL (default "
                                                "configs/eval/golden_v0.jsonl)."),
          flags: Optional[Path] = typer.Option(None, "--flags", help="Rollout flags JSON: route requests with "
                                               "x-agent-id / x-conversation-id headers by these flags."),
          rollout: bool = typer.Option(False, "--rollout", help="Route by the live rollout.flags topic."),
          served_name: Optional[str] = typer.Option(None, "--served-name", help="Name of the base in /v1/models."),
          allow_other_base: bool = typer.Option(False, "--allow-other-base",
                                                help="Accept adapters whose manifest names another base.")) -> None:
    """OpenAI-compatible server (/v1/chat/completions, /v1/models): one base model, many LoRA adapters."""
    from alignloop.serve.server import ServeOptions, run

    settings = None
    if adapters_from_registry:
        from schemas.settings import load_settings

        settings = load_settings()
    opts = ServeOptions(base=base, host=host, port=port, max_resident=max_resident,
                        adapters=[str(a) for a in adapter], from_registry=adapters_from_registry,
                        warm_prompts=warm_prompts, golden=golden, served_name=served_name,
                        allow_other_base=allow_other_base, rollout=_rollout_source(flags, rollout))
    typer.echo(f"loading {base} ...")
    try:
        run(opts, settings)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _http(url: str, timeout: float = 300.0) -> Any:
    import httpx

    return httpx.Client(base_url=url.rstrip("/").removesuffix("/v1"), timeout=timeout)


def _fail(resp: Any) -> None:
    if resp.status_code >= 400:
        try:
            msg = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            msg = resp.text[:300]
        raise UserError(f"server said {resp.status_code}: {msg}")


def _runtime(base: Optional[str], adapter: Path) -> Any:
    """An in-process runtime over ``--base`` or the base named in the adapter's manifest."""
    from trainers.serving.errors import ServingError
    from trainers.serving.runtime import ServingRuntime

    if base is None:
        try:
            base = json.loads((adapter / "manifest.json").read_text())["base_model"]
        except (OSError, ValueError, KeyError):
            raise UserError(f"pass --base (or --url): {adapter} has no manifest.json naming its base") from None
    started = time.perf_counter()
    try:
        rt = ServingRuntime(base, max_resident=4, golden_prompts=()).load()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"base {base} loaded in {time.perf_counter() - started:.1f} s", err=True)
    try:
        return rt, rt.attach_sync(adapter)
    except ServingError as exc:
        rt.close()
        raise UserError(exc.message) from None


def swap(adapter: Path = typer.Option(..., "--adapter", help="Adapter directory."),
         url: Optional[str] = typer.Option(None, "--url", help="A running `alignloop serve` (else in-process)."),
         base: Optional[str] = typer.Option(None, "--base", help="In-process: the base (default: manifest's).")
         ) -> None:
    """Attach an adapter (loaded, checked, warmed) and report its content hash and timings."""
    if url:
        with _http(url) as http:
            resp = http.post("/v1/adapters", json={"path": str(adapter.resolve()), "wait": True})
            _fail(resp)
            info = resp.json()
    else:
        from trainers.serving.generation import GenerationRequest, generate_on_model

        rt, res = _runtime(base, adapter)
        try:  # switching = making it the active adapter for a request
            req = GenerationRequest(rt.encode([{"role": "user", "content": "hi"}]), max_new_tokens=1)
            started = time.perf_counter()
            rt.run_on_model(generate_on_model, rt, req, res).result()
            info = {**res.describe(), "first_token_ms": round((time.perf_counter() - started) * 1000, 3)}
        finally:
            rt.close()
    typer.echo(f"adapter {info.get('adapter_id') or '-'} {info['content_hash']} ready: attach {info['attach_ms']} ms, "
               f"warm {info['warm_ms']} ms")


def infer(adapter: Optional[Path] = typer.Option(None, "--adapter", help="Adapter directory (none: the base)."),
          prompt: str = typer.Option(..., "-p", "--prompt"),
          url: Optional[str] = typer.Option(None, "--url", help="A running `alignloop serve` (else in-process)."),
          base: Optional[str] = typer.Option(None, "--base"),
          max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
          temperature: float = typer.Option(0.0, "--temperature", min=0.0)) -> None:
    """Answer one prompt with an adapter (greedy by default); prints the text and the adapter's content hash."""
    messages = [{"role": "user", "content": prompt}]
    if url:
        with _http(url) as http:
            model = None
            if adapter is not None:
                resp = http.post("/v1/adapters", json={"path": str(adapter.resolve()), "wait": True})
                _fail(resp)
                model = resp.json()["content_hash"]
            resp = http.post("/v1/chat/completions", json={"model": model, "messages": messages,
                                                            "max_tokens": max_new_tokens, "temperature": temperature})
            _fail(resp)
            body = resp.json()
            text, h = body["choices"][0]["message"]["content"], body.get("adapter_hash")
    else:
        if adapter is None:
            raise UserError("in-process infer needs --adapter (or --url of a running server)")
        from trainers.serving.generation import GenerationRequest, generate_on_model

        rt, res = _runtime(base, adapter)
        try:
            req = GenerationRequest(rt.encode(messages), max_new_tokens=max_new_tokens, temperature=temperature)
            text, h = rt.run_on_model(generate_on_model, rt, req, res).result().text, res.content_hash
        finally:
            rt.close()
    typer.echo(text)
    typer.echo(f"[adapter {h or 'base'}]", err=True)


def vllm_sync(url: str = typer.Option(..., "--url", help="vLLM's base URL (http://host:8000)."),
              grace_s: float = typer.Option(60.0, "--grace-s", help="Unused this long before an unload."),
              interval_s: float = typer.Option(2.0, "--interval-s"),
              path_map: Optional[str] = typer.Option(None, "--path-map", help="LOCAL=REMOTE: rewrite registry "
                                                     "paths into the directories vLLM sees."),
              once: bool = typer.Option(False, "--once", help="One pass over the current flags, then exit.")) -> None:
    """Keep a vLLM server's LoRA adapters in step with rollout.flags and the registry (runtime LoRA API)."""
    import asyncio

    from alignloop.serve.vllm_sync import VllmSync, follow, registry_resolver
    from connectors.vllm import VllmClient
    from schemas.settings import load_settings

    settings = load_settings()
    mapping = None
    if path_map:
        if "=" not in path_map:
            raise UserError("--path-map must be LOCAL=REMOTE")
        local, remote = path_map.split("=", 1)
        mapping = (local, remote)
    with VllmClient(url) as client:
        sync = VllmSync(client, registry_resolver(settings, mapping), grace_s=grace_s)
        try:
            asyncio.run(follow(settings, sync, interval_s=interval_s, max_ticks=2 if once else None))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    typer.echo(f"vllm-sync: {len(sync.state.loaded)} adapters loaded on {url}")
