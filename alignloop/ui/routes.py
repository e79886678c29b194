"""The labeling UI's pages: login, label (annotator), review and agreement (reviewer), admin (users, queues,
rollout buttons). Handlers are thin: the store does the state changes, ``streams.labeling`` the meaning."""
from __future__ import annotations

import importlib

import dataclasses
import inspect
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool as bg

from alignloop.ui.app import HttpError, UiState, Who, form_of, require
from alignloop.ui.security import COOKIE, LOGIN_CSRF_COOKIE, burn_time, check_password, hash_password, same
from connectors.labeling_db import ROLES, Finish, StoreError
from streams.labeling import AnswerError, adjudicated, audit_record, parse_answer

ROLLOUT_ACTIONS = ("promote", "rollback", "pause")


def _see(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def install(app: FastAPI, ui: UiState, templates: Any) -> None:
    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    # --- login ---
    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/queues", error: str = "") -> Response:
        token = secrets.token_urlsafe(24)
        resp = page(request, "login.html", who=None, csrf=token, next=_local(next), error=error)
        resp.set_cookie(LOGIN_CSRF_COOKIE, ui.signer.sign(token), httponly=True, samesite="strict", max_age=3600)
        return resp

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await form_of(request, None)
        if not same(ui.signer.unsign(request.cookies.get(LOGIN_CSRF_COOKIE)), form.get("csrf")):
            raise HttpError(403, "the login form expired or was not sent by this site; reload the login page")
        name, password = form.get("name", "")[:64], form.get("password", "")
        user = await bg(ui.store.user, name)
        if user is None:
            await bg(burn_time, password)
        ok = user is not None and user.active and await bg(check_password, user.pw_hash, password)
        if not ok:
            await bg(ui.store.record, [audit_record(name if user else "unknown", "ui.login_failed", None)])
            return page(request, "login.html", 401, who=None, csrf=form.get("csrf"), next=_local(form.get("next")),
                        error="wrong name or password")
        ls = await bg(ui.store.new_session, user.id, ui.settings.ui_session_ttl_s, ui.now())
        await bg(ui.store.record, [audit_record(user.name, "ui.login", None, role=user.role)])
        resp = _see(_local(form.get("next")))
        resp.set_cookie(COOKIE, ui.signer.sign(ls.id), httponly=True, samesite="lax",
                        max_age=ui.settings.ui_session_ttl_s, secure=request.url.scheme == "https")
        resp.delete_cookie(LOGIN_CSRF_COOKIE)
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        who = require(ui, request)
        await form_of(request, who)
        await bg(ui.store.end_session, who.sid)
        await bg(ui.store.record, [audit_record(who.user.name, "ui.logout", None)])
        resp = _see("/login")
        resp.delete_cookie(COOKIE)
        return resp

    # --- annotator ---
    @app.get("/queues", response_class=HTMLResponse)
    async def queues(request: Request) -> Response:
        who = require(ui, request)
        return page(request, "queues.html", who=who, queues=ui.cfg.queues, counts=await bg(ui.store.counts))

    @app.get("/label/{queue}", response_class=HTMLResponse)
    async def label_page(request: Request, queue: str, msg: str = "") -> Response:
        who = require(ui, request)
        q = _queue(ui, queue)
        lease = await bg(ui.store.next_item, who.user.id, q.name, lease_s=q.lease_s, gold_rate=q.gold_rate,
                         now=ui.now())
        if lease is None:
            return page(request, "empty.html", who=who, queue=q, msg=msg)
        return await _item_page(request, who, q, lease.assignment_id, msg=msg)

    async def _item_page(request: Request, who: Who, q: Any, aid: int, msg: str = "", error: str = "",
                         status: int = 200, form: dict[str, str] | None = None) -> Response:
        a, item = await bg(ui.store.assignment, aid)
        cands = list(item.payload.get("candidates") or [])
        sides = list(reversed(cands)) if a.swapped else cands
        return page(request, "label.html", status, who=who, q=q, a=a, item=item, p=item.payload, sides=sides,
                    msg=msg, error=error, form=form or {})

    @app.post("/label/{queue}/{aid}")
    async def submit(request: Request, queue: str, aid: int) -> Response:
        who = require(ui, request)
        form = await form_of(request, who)
        q = _queue(ui, queue)
        found = await bg(ui.store.assignment, aid)
        if found is None or found[0].user_id != who.user.id:
            raise HttpError(409, "this item is not leased to you; take the next one")
        try:
            answer = parse_answer(q, form, found[0].swapped)
        except AnswerError as exc:
            return await _item_page(request, who, q, aid, error=str(exc), status=422, form=form)

        def finish(s: Any, item: Any, a: Any, answers: Any, name: str) -> Finish:
            out = ui.finisher(s, item, a, answers, name)
            audit = audit_record(name, "ui.label", item.id, queue=q.name, kind=a.kind, status=out.status or "")
            return dataclasses.replace(out, records=out.records + (audit,))

        try:
            await bg(lambda: ui.store.submit(who.user.id, aid, answer, finish, repeat_rate=q.repeat_rate,
                                             repeat_gap=q.repeat_gap, now=ui.now()))
        except StoreError as exc:
            raise HttpError(409, str(exc)) from None
        if ui.metrics is not None:
            ui.metrics.answers.labels(q.name).inc()
        return _see(f"/label/{q.name}?msg=saved")

    @app.post("/label/{queue}/{aid}/skip")
    async def skip(request: Request, queue: str, aid: int) -> Response:
        who = require(ui, request)
        await form_of(request, who)
        q = _queue(ui, queue)
        found = await bg(ui.store.assignment, aid)
        rec = [audit_record(who.user.name, "ui.skip", found[1].id if found else None, queue=q.name)]
        try:
            await bg(ui.store.skip, who.user.id, aid, rec, ui.now())
        except StoreError as exc:
            raise HttpError(409, str(exc)) from None
        return _see(f"/label/{q.name}?msg=skipped")

    # --- reviewer ---
    @app.get("/review", response_class=HTMLResponse)
    async def review(request: Request) -> Response:
        who = require(ui, request, "reviewer")
        return page(request, "review.html", who=who, items=await bg(ui.store.disputed, None, 200))

    @app.get("/review/item", response_class=HTMLResponse)
    async def review_item(request: Request, id: str, msg: str = "") -> Response:
        who = require(ui, request, "reviewer")
        item = await bg(ui.store.item, id)
        if item is None:
            raise HttpError(404, "no such item")
        q = _queue(ui, item.queue)
        return page(request, "adjudicate.html", who=who, q=q, item=item, p=item.payload,
                    sides=list(item.payload.get("candidates") or []), answers=await bg(ui.store.answers, id), msg=msg)

    @app.post("/review/item")
    async def adjudicate(request: Request) -> Response:
        who = require(ui, request, "reviewer")
        form = await form_of(request, who)
        item = await bg(ui.store.item, form.get("id", ""))
        if item is None:
            raise HttpError(404, "no such item")
        q = _queue(ui, item.queue)
        answers = [(n, a.answer) for n, a in await bg(ui.store.answers, item.id) if a.kind == "label"]
        try:
            c = adjudicated(q, form, who.user.name, answers)
        except AnswerError as exc:
            raise HttpError(422, str(exc)) from None
        recs = ui.finisher.consensus_records(q, item, c, ui.now()) + [
            audit_record(who.user.name, "ui.adjudicate", item.id, queue=q.name, decision=str(c["decision"]))]
        version = form.get("version", "")
        if not version.isdigit():
            raise HttpError(422, "the form lacks the item version; reload the page")
        try:
            await bg(ui.store.adjudicate, item.id, int(version), c, recs)
            if form.get("make_gold"):
                await bg(ui.store.set_gold, item.id, c)
        except StoreError as exc:
            raise HttpError(409, str(exc)) from None
        return _see(f"/review/item?id={quote(item.id)}&msg=adjudicated")

    @app.get("/agreement", response_class=HTMLResponse)
    async def agreement(request: Request) -> Response:
        who = require(ui, request, "reviewer")
        return page(request, "agreement.html", who=who, stats=ui.stats, min_alpha=ui.cfg.export_min_alpha)

    # --- admin ---
    @app.get("/admin", response_class=HTMLResponse)
    async def admin(request: Request, msg: str = "") -> Response:
        who = require(ui, request, "admin")
        return page(request, "admin.html", who=who, users=await bg(ui.store.users), roles=ROLES,
                    queues=ui.cfg.queues, counts=await bg(ui.store.counts), actions=ROLLOUT_ACTIONS, msg=msg)

    @app.post("/admin/users")
    async def add_user(request: Request) -> Response:
        who = require(ui, request, "admin")
        form = await form_of(request, who)
        name, role = form.get("name", "").strip(), form.get("role", "")
        if not name or len(name) > 64:
            raise HttpError(422, "a user name needs 1 to 64 characters")
        try:
            pw = hash_password(form.get("password", ""))
            await bg(ui.store.add_user, name, role, pw)
        except (StoreError, ValueError) as exc:
            raise HttpError(422, str(exc)) from None
        await bg(ui.store.record, [audit_record(who.user.name, "ui.user_add", None, subject=f"user:{name}",
                                                role=role)])
        return _see("/admin?msg=user+added")

    @app.post("/admin/role")
    async def role_change(request: Request) -> Response:
        who = require(ui, request, "admin")
        form = await form_of(request, who)
        name, role = form.get("name", ""), form.get("role", "")
        active = form.get("active", "1") == "1"
        rec = [audit_record(who.user.name, "ui.role_change", None, subject=f"user:{name}", role=role, active=active)]
        try:
            await bg(lambda: ui.store.set_user(name, role=role, active=active, records=rec))
        except StoreError as exc:
            raise HttpError(422, str(exc)) from None
        return _see("/admin?msg=role+changed")

    @app.post("/admin/rollout")
    async def rollout(request: Request) -> Response:
        who = require(ui, request, "admin")
        form = await form_of(request, who)
        action, agent = form.get("action", ""), form.get("agent_id", "").strip()
        if action not in ROLLOUT_ACTIONS or not agent:
            raise HttpError(422, f"pick an agent and one of {', '.join(ROLLOUT_ACTIONS)}")
        try:  # by module name: the controller's functions (a test may stand a module in for them)
            rollout_ops = importlib.import_module("alignloop.rollout_ops")
        except ImportError:
            raise HttpError(503, "rollout controls are not installed in this build (alignloop.rollout_ops)") from None
        fn = getattr(rollout_ops, action)
        kw: dict[str, Any] = {"actor": who.user.name}
        if action == "rollback":
            kw["reason"] = form.get("reason", "").strip()[:500] or "rolled back from the labeling UI"
        try:
            result = await bg(fn, ui.settings, agent, **kw) if not inspect.iscoroutinefunction(fn) else \
                await fn(ui.settings, agent, **kw)
        except Exception as exc:  # the controller's refusal, phrased by it
            raise HttpError(409, f"{action} {agent} refused: {exc}") from None
        await bg(ui.store.record, [audit_record(who.user.name, f"ui.rollout_{action}", None,
                                                subject=f"agent:{agent}")])
        stage = getattr(result, "stage", None)
        return _see("/admin?msg=" + quote(f"{action} {agent}: done" + (f" (stage {stage})" if stage else "")))


def _queue(ui: UiState, name: str) -> Any:
    try:
        return ui.cfg.queue(name)
    except KeyError:
        raise HttpError(404, f"no queue {name!r}") from None


def _local(path: str | None) -> str:
    """Only same-site paths after login (no open redirect)."""
    return path if path and path.startswith("/") and not path.startswith("//") else "/queues"
