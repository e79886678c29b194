"""The OpenAI-compatible HTTP app: ``/v1/chat/completions`` (SSE streaming or not), ``/v1/models``, adapter
management (``/v1/adapters``), ``/health``, ``/ready`` and Prometheus ``/metrics``.

Handlers are thin: routing is `alignloop.serve.routing`, the model work is `trainers.serving`. Every response
names the adapter content hash that produced it (body ``adapter_hash`` and ``system_fingerprint``, header
``x-alignloop-adapter-hash``), so a trace is attributed to exact weights. Errors are OpenAI error bodies.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from alignloop.serve.protocol import ChatRequest, chunk_body, completion_body, completion_id
from alignloop.serve.routing import Route, RolloutSource, route
from trainers.serving.errors import ServingError

HASH_HEADER = "x-alignloop-adapter-hash"
DEFAULT_MAX_TOKENS = 256


class AttachBody(BaseModel):
    path: str
    wait: bool = True


def error_response(exc: ServingError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def create_app(runtime: Any, *, metrics: Any = None, rollout: RolloutSource | None = None,
               refresh_known: Callable[[], None] | None = None, served_name: str | None = None,
               attach_timeout_s: float = 120.0) -> FastAPI:
    """``runtime``: a loaded `ServingRuntime`. ``refresh_known`` re-reads the registry when a request names an
    adapter the runtime does not know yet (one that was promoted after the server started)."""
    app = FastAPI(title="alignloop serve", docs_url=None, redoc_url=None)
    base_name = served_name or runtime.base_id
    app.state.runtime, app.state.preload = runtime, []

    @app.exception_handler(ServingError)
    async def _serving_error(_: Request, exc: ServingError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _bad_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid body"}
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        if err.get("type") == "json_invalid":
            msg, param = "could not parse the JSON body of the request", None
        else:
            msg, param = f"{'.'.join(loc) or 'body'}: {err.get('msg')}", ".".join(loc) or None
        return error_response(ServingError(f"invalid request: {msg}", code="invalid_request_body", param=param))

    async def resolve(r: Route) -> Any:
        """The ready resident adapter for the route (attached on demand), or None for the base."""
        if r.ref is None:
            return None
        refs = [r.ref] + ([r.adapter_id] if r.adapter_id and r.adapter_id != r.ref else [])
        res, path = _lookup(runtime, refs)
        if res is None and path is None and refresh_known is not None:
            await asyncio.to_thread(refresh_known)
            res, path = _lookup(runtime, refs)
        if res is None and path is None:
            raise ServingError(f"The model `{r.ref}` does not exist or is not loaded on this server; see "
                               f"GET /v1/models", status=404, code="model_not_found", param="model")
        if res is None:
            res = await asyncio.wrap_future(runtime.attach(path))
        try:  # a request for an adapter still warming up waits for it
            res = await asyncio.wait_for(asyncio.wrap_future(res.ready), attach_timeout_s)
        except asyncio.TimeoutError:
            raise ServingError(f"adapter {res.content_hash} is still loading; retry", status=503,
                               type="server_error", code="adapter_loading", param="model") from None
        if r.expected_hash and res.content_hash != r.expected_hash:
            raise ServingError(f"the rollout flag wants adapter {r.expected_hash}, but {r.ref} now has weights "
                               f"{res.content_hash}; refusing to serve other weights under its name",
                               status=409, code="adapter_hash_mismatch", param="model")
        return res

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest, request: Request) -> Response:
        started = time.perf_counter()
        r = route(req.model, request.headers, rollout, base_name)
        res = await resolve(r)
        label = res.content_hash[:19] if res is not None else "base"
        ids = runtime.encode(req.chat())
        max_new = _max_tokens(runtime.context_length, len(ids), req.requested_tokens)
        headers = {HASH_HEADER: res.content_hash if res is not None else "base"}
        if res is not None and res.adapter_id:
            headers["x-alignloop-adapter-id"] = res.adapter_id
        if r.variant:
            headers.update({"x-alignloop-variant": r.variant, "x-alignloop-policy-id": r.policy_id or ""})
        from trainers.serving.generation import GenerationRequest

        gen = GenerationRequest(ids, max_new_tokens=max_new, temperature=req.temperature, top_p=req.top_p,
                                seed=req.seed, stop=req.stops())
        model_name = (res.adapter_id or res.content_hash) if res is not None else base_name
        ctx = _Ctx(runtime, metrics, res, label, started)
        if req.stream:
            return StreamingResponse(_stream(ctx, gen, model_name, req), media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"})
        result = await ctx.run(gen)
        body = completion_body(completion_id(), model_name, res.content_hash if res else None, result.text,
                               result.finish_reason, result.prompt_tokens, len(result.token_ids))
        return JSONResponse(body, headers=headers)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [{"id": base_name, "object": "model", "created": 0, "owned_by": "alignloop", "adapter_hash": None,
                 "state": "ready"}]
        for res in runtime.resident():
            data.append({"id": res.adapter_id or res.content_hash, "object": "model", "created": int(res.loaded_at),
                         "owned_by": "alignloop", "parent": base_name, "adapter_hash": res.content_hash,
                         "state": res.state, "aliases": sorted(k for k, v in runtime.aliases.items()
                                                               if v == res.content_hash)})
        return {"object": "list", "data": data}

    @app.get("/v1/adapters")
    async def adapters() -> dict[str, Any]:
        return {"max_resident": runtime.max_resident, "adapters": [r.describe() for r in runtime.resident()]}

    @app.post("/v1/adapters")
    async def attach(body: AttachBody) -> JSONResponse:
        if not body.wait:  # read and checked now (bad files are a 400 here); injected and warmed in the background
            res = await asyncio.to_thread(runtime.begin, body.path)
            return JSONResponse(res.describe(), status_code=202 if res.state == "loading" else 200)
        res = await asyncio.wrap_future(runtime.attach(body.path))
        return JSONResponse(res.describe())

    @app.delete("/v1/adapters/{ref:path}")
    async def detach(ref: str) -> dict[str, Any]:
        res, _ = runtime.lookup(ref)
        if res is None:
            raise ServingError(f"adapter {ref} is not resident", status=404, code="adapter_not_found", param="model")
        started = time.perf_counter()
        await asyncio.to_thread(runtime.evict, res.content_hash)
        return {"detached": res.content_hash, "detach_ms": round((time.perf_counter() - started) * 1000, 3)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        pending = [f for f in app.state.preload if not f.done()]
        loading = [r.content_hash for r in runtime.resident() if r.state == "loading"]
        ok = runtime.model is not None and not pending
        return JSONResponse({"ready": ok, "loading": loading, "preload_pending": len(pending)},
                            status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prom() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if metrics is None:
            return Response("", media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _lookup(runtime: Any, refs: list[str]) -> tuple[Any, str | None]:
    """The first ref the runtime knows: by hash (resident), else the adapter id's directory (to attach)."""
    for ref in refs:
        res, path = runtime.lookup(ref)
        if res is not None or path is not None:
            return res, path
    return None, None


def _max_tokens(context: int, prompt: int, requested: int | None) -> int:
    room = context - prompt
    if requested is not None and prompt + requested > context or room <= 0:
        want = requested if requested is not None else 1
        raise ServingError(f"This model's maximum context length is {context} tokens. However, you requested "
                           f"{prompt + want} tokens ({prompt} in the messages, {want} in the completion). Please "
                           f"reduce the length of the messages or completion.", code="context_length_exceeded",
                           param="messages")
    return requested if requested is not None else min(DEFAULT_MAX_TOKENS, room)


class _Ctx:
    """One request's bookkeeping: pins the adapter while it runs, records metrics once."""

    def __init__(self, runtime: Any, metrics: Any, res: Any, label: str, started: float) -> None:
        self.runtime, self.metrics, self.res, self.label, self.started = runtime, metrics, res, label, started

    async def run(self, gen: Any) -> Any:
        from trainers.serving.generation import generate_on_model

        if self.res is not None:
            self.runtime.pin(self.res, +1)
            self.runtime.touch(self.res)
        status = "error"
        try:
            result = await asyncio.wrap_future(self.runtime.run_on_model(generate_on_model, self.runtime, gen,
                                                                         self.res))
            status = "cancelled" if result.finish_reason == "cancelled" else "ok"
            if self.metrics is not None:
                self.metrics.tokens.labels(self.label, "prompt").inc(result.prompt_tokens)
                self.metrics.tokens.labels(self.label, "completion").inc(len(result.token_ids))
            return result
        except asyncio.CancelledError:
            gen.cancel.set()  # the client went away: the worker stops at the next token
            status = "cancelled"
            raise
        finally:
            if self.res is not None:
                self.runtime.pin(self.res, -1)
            if self.metrics is not None:
                self.metrics.requests.labels(self.label, status).inc()
                self.metrics.latency.labels(self.label).observe(time.perf_counter() - self.started)


def streamable(text: str, stops: list[str]) -> str:
    """The part of ``text`` that may be streamed now: cut at the first stop sequence (OpenAI leaves it out), and
    short of any tail that could still grow into one (``"... EN"`` while ``"END"`` is a stop), so a stop sequence is
    never sent, even in part."""
    if not stops:
        return text
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if cut >= 0:
        return text[:cut]
    hold = max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
    return text[: len(text) - hold]


async def _stream(ctx: _Ctx, gen: Any, model_name: str, req: ChatRequest) -> Any:
    """SSE chunks as tokens arrive; a client that disconnects cancels its generation, nobody else's."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    tok = ctx.runtime.tokenizer
    gen.on_tokens = lambda ids: loop.call_soon_threadsafe(queue.put_nowait, ids)
    cid, h = completion_id(), ctx.res.content_hash if ctx.res is not None else None
    task = asyncio.ensure_future(ctx.run(gen))
    task.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, None))

    def sse(body: dict[str, Any]) -> str:
        return f"data: {json.dumps(body)}\n\n"

    try:
        yield sse(chunk_body(cid, model_name, h, {"role": "assistant", "content": ""}, None))
        ids: list[int] = []
        sent = ""
        stops = gen.stop
        while (new := await queue.get()) is not None:
            ids.extend(i for i in new if i != tok.eos_token_id)
            text = tok.decode(ids, skip_special_tokens=True)
            if text.endswith("\ufffd"):  # hold back a half-decoded character
                continue
            safe = streamable(text, stops)
            if len(safe) > len(sent):
                delta, sent = safe[len(sent):], safe
                yield sse(chunk_body(cid, model_name, h, {"content": delta}, None))
        try:
            result = task.result()
        except ServingError as exc:
            yield sse(exc.body())
            return
        if len(result.text) > len(sent) and result.text.startswith(sent):
            yield sse(chunk_body(cid, model_name, h, {"content": result.text[len(sent):]}, None))
        yield sse(chunk_body(cid, model_name, h, {}, result.finish_reason))
        if req.stream_options is not None and req.stream_options.include_usage:
            usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": len(result.token_ids),
                     "total_tokens": result.prompt_tokens + len(result.token_ids)}
            yield sse(chunk_body(cid, model_name, h, {}, None, usage, choices=False))
        yield "data: [DONE]\n\n"
    finally:
        if not task.done():  # disconnect: stop this request's generation at its next token
            gen.cancel.set()
            if ctx.metrics is not None:
                ctx.metrics.disconnects.inc()
