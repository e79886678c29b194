"""The labeling web app (FastAPI + Jinja2 with autoescape). ``create_app(ui)`` builds it over a ``UiState``.

Auth: a login makes a DB session; the cookie holds its id, signed with a timestamp (itsdangerous), so a forged or
stale cookie is refused before the DB is asked, and an ended or expired session is refused by the DB. Every POST
carries the session's CSRF token (the login form a signed double-submit cookie). Unauthenticated page requests are
redirected to /login, API and POST requests get 401; a role below the route's gets 403.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from alignloop.ui.security import COOKIE, Signer, same
from connectors.labeling_db import RANK, LabelStore, User
from schemas.labeling import STRENGTHS, LabelingConfig
from streams.labeling import Finisher

HERE = Path(__file__).parent
MAX_FORM_BYTES = 256 * 1024  # a form bigger than this is refused before it is parsed


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class UiState:
    settings: Any
    store: LabelStore
    cfg: LabelingConfig
    signer: Signer
    registry: Any = None
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    finisher: Finisher = None  # type: ignore[assignment]
    answers_since_fit: int = 0
    stats: dict[str, Any] = field(default_factory=dict)  # latest agreement summary per queue
    lock: threading.Lock = field(default_factory=threading.Lock)
    metrics: Any = None

    def __post_init__(self) -> None:
        if self.finisher is None:
            self.finisher = Finisher(self.cfg, now=self.now)


@dataclass
class Who:
    user: User
    sid: str
    csrf: str


def current(ui: UiState, request: Request) -> Who | None:
    sid = ui.signer.unsign(request.cookies.get(COOKIE))
    if sid is None:
        return None
    found = ui.store.session_user(sid, ui.now())
    if found is None:
        return None
    ls, user = found
    return Who(user, sid, ls.csrf)


def require(ui: UiState, request: Request, role: str = "annotator") -> Who:
    who = current(ui, request)
    if who is None:
        raise HttpError(401, "log in first")
    if RANK[who.user.role] < RANK[role]:
        raise HttpError(403, f"this page needs the {role} role; you are {who.user.role}")
    return who


async def form_of(request: Request, who: Who | None) -> dict[str, str]:
    """The posted form, refused when too big or when its CSRF token is not this session's."""
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_FORM_BYTES:
        raise HttpError(413, f"the form is {size} bytes; the limit is {MAX_FORM_BYTES} — shorten the text")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if who is not None and not same(form.get("csrf"), who.csrf):
        raise HttpError(403, "this form is stale or was not sent by this site (CSRF token mismatch); reload the page")
    return form


def create_app(ui: UiState, lifespan: Any = None) -> FastAPI:
    from alignloop.ui import routes

    app = FastAPI(title="alignloop labeling", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # .html templates autoescape
    templates.env.globals.update(strengths=STRENGTHS)
    templates.env.auto_reload = False  # compiled once per process, never re-read (nor stat-ed) per request
    for name in templates.env.list_templates(extensions=["html"]):
        templates.env.get_template(name)  # at start-up, so the first annotator does not wait for the compiler
    app.state.ui, app.state.templates = ui, templates
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(HttpError)
    async def _http_error(request: Request, exc: HttpError) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if exc.status == 401 and request.method == "GET" and wants_html:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if wants_html:
            who = current(ui, request)
            return templates.TemplateResponse(request, "error.html", {"who": who, "status": exc.status,
                                                                      "message": exc.message}, status_code=exc.status)
        return PlainTextResponse(exc.message, status_code=exc.status)

    @app.get("/metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(ui.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        require(ui, request)
        return RedirectResponse("/queues", status_code=303)

    routes.install(app, ui, templates)
    return app
