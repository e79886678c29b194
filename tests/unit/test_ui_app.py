"""The labeling app over HTTP (ASGI test client, SQLite): roles, logins, CSRF, expired sessions, forged cookies,
leases submitted twice, oversized input, escaping, pairwise sides, the adaptive stop's consensus, adjudication,
the rollout buttons. Records are checked in the outbox (what the drain publishes)."""
from __future__ import annotations

import re
import sys
import types
from datetime import datetime, timedelta, timezone
from typing import Any

import warnings

import pytest

with warnings.catch_warnings():  # starlette asks for httpx2, which is not packaged here; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from alignloop.ui.app import UiState, create_app
from alignloop.ui.security import Signer, hash_password
from connectors.labeling_db import LabelStore
from schemas.labeling import LabelingConfig, QueueConfig
from schemas.settings import Settings
from streams.agreement import AnnotatorModel

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'
HTML = {"accept": "text/html"}


class Clock:
    def __init__(self) -> None:
        self.t = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.t


def _cfg() -> LabelingConfig:
    return LabelingConfig(queues=[
        QueueConfig(name="scores", kind="score_card", min_labels=2, max_labels=3, stop_confidence=0.9,
                    gold_rate=0, repeat_rate=0, max_rationale_chars=100,
                    dimensions=[{"name": "helpfulness", "scale": "likert7"}, {"name": "safety", "scale": "binary"}]),
        QueueConfig(name="pairs", kind="pairwise", min_labels=1, max_labels=1, gold_rate=0, repeat_rate=0,
                    correction=False)])


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its production cost takes ~0.5 s a login on a busy CI core; the tests need the logic, not the cost."""
    from argon2 import PasswordHasher

    from alignloop.ui import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def ui(tmp_path: Any, cheap_hashes: None) -> UiState:
    state = UiState(settings=Settings(home=tmp_path, metrics_port=0, ui_session_ttl_s=600),
                    store=LabelStore(f"sqlite:///{tmp_path / 'ui.db'}"), cfg=_cfg(),
                    signer=Signer("test-key-" * 4, 600), registry=CollectorRegistry(), now=Clock())
    pw = hash_password("correct horse")
    for name, role in (("ann", "annotator"), ("ann2", "annotator"), ("rev", "reviewer"), ("rev2", "reviewer"),
                       ("boss", "admin")):
        state.store.add_user(name, role, pw)
    payload = {"user_message": "hello " + EVIL, "final_response": "resp " + EVIL, "policy_id": "p1",
               "context": [{"role": "user", "content": EVIL}],
               "tool_calls": [{"name": "search", "args": {"q": EVIL}, "result": EVIL, "error": EVIL, "status": "error"}],
               "verdicts": [{"judge": "policy", "passed": True, "scores": {}, "confidence": 0.4, "reasons": [EVIL]}],
               "reason": "routed_to_human", "llm_rationale": EVIL, "outcome": "flag", "candidates": []}
    state.store.add_items([{"id": "scores:t1", "queue": "scores", "trace_id": "t1", "kind": "score_card",
                            "payload": payload, "max_labels": 3, "priority": 1.0},
                           {"id": "pairs:t2", "queue": "pairs", "trace_id": "t2", "kind": "pairwise",
                            "payload": {**payload, "candidates": ["FIRST answer", "SECOND answer"]},
                            "max_labels": 1, "priority": 1.0}])
    yield state
    state.store.close()


def _client(ui: UiState) -> TestClient:
    return TestClient(create_app(ui), base_url="http://testserver")


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(ui: UiState, name: str) -> TestClient:
    c = _client(ui)
    r = c.post("/login", data={"csrf": _csrf(c.get("/login").text), "name": name, "password": "correct horse"},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def _lease(c: TestClient, queue: str = "scores") -> tuple[str, str, str]:
    r = c.get(f"/label/{queue}", headers=HTML)
    assert r.status_code == 200, r.text
    return re.search(rf'action="(/label/{queue}/\d+)"', r.text).group(1), _csrf(r.text), r.text


def _pending(ui: UiState, kind: str) -> list[Any]:
    return [o for o in ui.store.pending() if o.kind == kind]


def test_unauthenticated_requests_are_redirected_or_refused(ui: UiState) -> None:
    c = _client(ui)
    r = c.get("/label/scores", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/label/scores"
    assert c.get("/admin").status_code == 401
    assert c.post("/label/scores/1", data={"csrf": "x"}).status_code == 401
    c.cookies.set("alignloop_session", "forged.cookie.value")
    assert c.get("/queues").status_code == 401


def test_wrong_password_and_a_forged_login_form_are_refused(ui: UiState) -> None:
    c = _client(ui)
    token = _csrf(c.get("/login").text)
    assert c.post("/login", data={"csrf": token, "name": "ann", "password": "nope"}).status_code == 401
    assert c.post("/login", data={"csrf": token, "name": "ghost", "password": "nope"}).status_code == 401
    other = _client(ui)  # a login form posted without this browser's cookie (cross-site)
    r = other.post("/login", data={"csrf": token, "name": "ann", "password": "correct horse"})
    assert r.status_code == 403 and "login form" in r.text
    assert [o.payload["action"] for o in _pending(ui, "audit")] == ["ui.login_failed", "ui.login_failed"]


def test_roles_are_enforced_on_the_server(ui: UiState) -> None:
    ann, rev, boss = login(ui, "ann"), login(ui, "rev"), login(ui, "boss")
    for path in ("/admin", "/review", "/agreement"):
        assert ann.get(path).status_code == 403
    assert ann.post("/admin/role", data={"csrf": _csrf(ann.get("/queues").text), "name": "ann",
                                         "role": "admin"}).status_code == 403
    assert ui.store.user("ann").role == "annotator"
    assert rev.get("/review").status_code == 200 and rev.get("/admin").status_code == 403
    assert boss.get("/admin").status_code == 200


def test_csrf_forged_and_replayed_posts_are_refused(ui: UiState) -> None:
    ann, ann2 = login(ui, "ann"), login(ui, "ann2")
    action, token, _ = _lease(ann)
    good = {"score_helpfulness": "5", "score_safety": "2"}
    assert ann.post(action, data=good).status_code == 403  # no token
    assert ann.post(action, data={**good, "csrf": _csrf(ann2.get("/queues").text)}).status_code == 403  # another's
    assert _pending(ui, "label") == []
    assert ann.post(action, data={**good, "csrf": token}, follow_redirects=False).status_code == 303
    replay = ann.post(action, data={**good, "csrf": token})
    assert replay.status_code == 409 and "already submitted" in replay.text
    assert len(_pending(ui, "label")) == 1
    ann.post("/logout", data={"csrf": token})
    assert ann.post(action, data={**good, "csrf": token}).status_code == 401  # replayed after logout


def test_an_expired_session_is_refused(ui: UiState) -> None:
    ann = login(ui, "ann")
    assert ann.get("/queues").status_code == 200
    ui.now.t += timedelta(seconds=601)
    r = ann.get("/queues", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_oversized_rationale_and_body_are_refused_and_the_lease_kept(ui: UiState) -> None:
    ann = login(ui, "ann")
    action, token, _ = _lease(ann)
    r = ann.post(action, data={"csrf": token, "score_helpfulness": "5", "score_safety": "2", "rationale": "x" * 101})
    assert r.status_code == 422 and "limit is 100" in r.text
    r = ann.post(action, data={"csrf": token, "score_helpfulness": "5", "score_safety": "2",
                               "rationale": "x" * 300_000})
    assert r.status_code == 413
    r = ann.post(action, data={"csrf": token, "score_helpfulness": "9", "score_safety": "2"})
    assert r.status_code == 422 and "helpfulness: pick 1–7" in r.text
    assert _lease(ann)[0] == action  # still the same lease
    assert ann.post(action, data={"csrf": token, "score_helpfulness": "5", "score_safety": "2"},
                    follow_redirects=False).status_code == 303


def test_html_and_script_in_every_field_is_escaped(ui: UiState) -> None:
    ann = login(ui, "ann")
    action, token, page = _lease(ann)
    assert "<script>alert" not in page and "<img" not in page
    assert page.count("&lt;script&gt;") >= 6  # message, response, context, tool args/result/error, reasons, llm
    ann.post(action, data={"csrf": token, "score_helpfulness": "2", "score_safety": "1", "rationale": EVIL[:90]})
    boss = login(ui, "boss")
    r = boss.post("/admin/users", data={"csrf": _csrf(boss.get("/admin").text), "name": EVIL[:60],
                                        "password": "longenough", "role": "annotator"}, follow_redirects=True)
    assert r.status_code == 200 and "<script>alert" not in r.text and "&lt;script&gt;" in r.text
    rev = login(ui, "rev")
    item_page = rev.get("/review/item", params={"id": "scores:t1"}).text
    assert "<script>alert" not in item_page and "&lt;script&gt;" in item_page  # the rationale, escaped


def test_pairwise_sides_are_randomised_and_mapped_back(ui: UiState) -> None:
    ann = login(ui, "ann")
    action, token, page = _lease(ann, "pairs")
    left = re.search(r'id="side-1">([^<]+)<', page).group(1)
    ann.post(action, data={"csrf": token, "choice": "left", "strength": "3"})
    (pref,) = _pending(ui, "preference")
    p = pref.payload
    assert p["candidates"][p["chosen_idx"]] == left  # the response shown left, wherever it sat
    assert p["strength"] == 0.75 and p["metadata"]["shown_left"] is True and p["pref_id"] == "human:pairs:t2:ann"


def test_agreeing_annotators_close_the_item_with_a_consensus_label(ui: UiState) -> None:
    obs = [(i, w, "pass" if i % 2 else "fail") for i in range(60) for w in ("ann", "ann2")]
    ui.finisher.models["scores"] = AnnotatorModel.fit(obs, classes=["pass", "fail"])
    for name in ("ann", "ann2"):
        c = login(ui, name)
        action, token, _ = _lease(c)
        c.post(action, data={"csrf": token, "score_helpfulness": "6", "score_safety": "2", "correction": "better"})
    labels = {o.key: o.payload for o in _pending(ui, "label")}
    assert set(labels) == {"human:scores:t1:ann", "human:scores:t1:ann2", "consensus:scores:t1"}
    cons = labels["consensus:scores:t1"]
    assert cons["annotator"] == "consensus:dawid_skene" and cons["passed"] is True and cons["source"] == "human"
    assert cons["scores"] == {"helpfulness": round(5 / 6, 4), "safety": 1.0}
    assert ui.store.item("scores:t1").status == "resolved"
    sft = _pending(ui, "sft")
    assert [o.payload["response"] for o in sft] == ["better", "better"]


def test_two_reviewers_adjudicating_at_once_one_is_refused(ui: UiState) -> None:
    from connectors.labeling_db import Item

    with ui.store.Session.begin() as s:
        s.get(Item, "scores:t1").status = "disputed"
    r1, r2 = login(ui, "rev"), login(ui, "rev2")
    p1, p2 = r1.get("/review/item", params={"id": "scores:t1"}).text, r2.get("/review/item", params={"id": "scores:t1"}).text
    form = {"id": "scores:t1", "version": re.search(r'name="version" value="(\d+)"', p1).group(1),
            "score_helpfulness": "4", "score_safety": "1"}
    assert r1.post("/review/item", data={**form, "csrf": _csrf(p1)}, follow_redirects=False).status_code == 303
    second = r2.post("/review/item", data={**form, "csrf": _csrf(p2)})
    assert second.status_code == 409 and "already adjudicated by rev" in second.text
    (cons,) = _pending(ui, "label")
    assert cons.payload["annotator"] == "consensus:adjudicated" and cons.payload["passed"] is False
    assert [o.payload["action"] for o in _pending(ui, "audit")].count("ui.adjudicate") == 1


def test_rollout_buttons_call_the_controller_as_the_admin(ui: UiState, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    fake = types.ModuleType("alignloop.rollout_ops")
    fake.promote = lambda settings, agent_id, *, actor: calls.append(("promote", agent_id, actor)) or "promoted"
    fake.rollback = lambda settings, agent_id, *, actor, reason: calls.append(("rollback", agent_id, actor, reason))
    fake.pause = lambda settings, agent_id, *, actor: calls.append(("pause", agent_id, actor))
    monkeypatch.setitem(sys.modules, "alignloop.rollout_ops", fake)
    boss, ann = login(ui, "boss"), login(ui, "ann")
    token = _csrf(boss.get("/admin").text)
    for action in ("promote", "rollback", "pause"):
        r = boss.post("/admin/rollout", data={"csrf": token, "agent_id": "support", "action": action,
                                              "reason": "canary worse"}, follow_redirects=False)
        assert r.status_code == 303
    assert calls == [("promote", "support", "boss"), ("rollback", "support", "boss", "canary worse"),
                     ("pause", "support", "boss")]
    assert ann.post("/admin/rollout", data={"csrf": _csrf(ann.get("/queues").text), "agent_id": "support",
                                            "action": "promote"}).status_code == 403
    assert len(calls) == 3


def _refresh_in_a_child(ui: UiState) -> dict[str, Any]:
    """One round of the server's refresher, whose fitting runs in a child process."""
    import asyncio
    import time

    from alignloop.ui.runtime import refresher

    async def once() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(refresher(ui, stop, every_s=60, table_every_s=float("inf")))
        deadline = time.monotonic() + 120
        while not ui.stats and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(once())
    return ui.stats


def test_the_refresher_ends_its_child_when_it_stops(ui: UiState) -> None:
    import asyncio
    import multiprocessing
    import time

    from alignloop.ui.runtime import refresher

    def children() -> set[int]:
        return {p.pid for p in multiprocessing.active_children()}

    before = children()

    async def start_and_stop() -> set[int]:
        stop = asyncio.Event()
        task = asyncio.create_task(refresher(ui, stop, every_s=60, table_every_s=float("inf")))
        deadline = time.monotonic() + 60
        while not (children() - before) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        spawned = children() - before
        stop.set()
        await task
        return spawned

    spawned = asyncio.run(start_and_stop())
    assert len(spawned) == 1
    deadline = time.monotonic() + 15
    while spawned & children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not spawned & children()


def test_agreement_figures_reach_the_page_and_the_metrics(ui: UiState) -> None:
    from alignloop.ui.runtime import UiMetrics, refresh

    ui.metrics = UiMetrics(ui.registry)
    ui.store.add_items([{"id": f"scores:x{i}", "queue": "scores", "trace_id": f"x{i}", "kind": "score_card",
                         "payload": {"user_message": "m", "final_response": "r", "verdicts": [
                             {"judge": "policy", "passed": i % 2 == 0, "scores": {}, "confidence": 0.5,
                              "reasons": []}]}, "max_labels": 3, "priority": 0.0} for i in range(6)])
    obs = [(i, w, "pass" if i % 2 else "fail") for i in range(60) for w in ("ann", "ann2")]
    ui.finisher.models["scores"] = AnnotatorModel.fit(obs, classes=["pass", "fail"])  # two trusted annotators
    clients = {n: login(ui, n) for n in ("ann", "ann2")}
    for _ in range(7):
        for name, c in clients.items():
            r = c.get("/label/scores", headers=HTML)
            m = re.search(r'action="(/label/scores/\d+)"', r.text)
            if m:
                item = re.search(r'data-item="([^"]+)"', r.text).group(1)
                good = item == "scores:t1" or int(item[-1]) % 2 == 0
                c.post(m.group(1), data={"csrf": _csrf(r.text), "score_helpfulness": "6" if good else "2",
                                         "score_safety": "2" if good else "1"})
    stats = refresh(ui)["scores"]
    assert stats["labels"] == 14 and stats["alpha"]["safety"] == 1.0 and stats["alpha"]["decision"] == 1.0
    ui.stats.clear()
    assert _refresh_in_a_child(ui)["scores"]["alpha"] == stats["alpha"]  # the server's path: fitted off its GIL
    assert stats["judge_agreement"]["policy"]["agreement"] == 1.0  # the policy judge agreed on every item
    metrics = _client(ui).get("/metrics").text
    assert 'alignloop_ui_agreement_alpha{dimension="safety",queue="scores"} 1.0' in metrics
    assert 'alignloop_ui_judge_human_agreement{judge="policy",queue="scores"} 1.0' in metrics
    page = login(ui, "rev").get("/agreement").text
    assert "14 labels on 7 items" in page, re.findall(r"<h2>.*?</h2>", page)


def test_a_web_worker_from_the_factory_serves_the_same_db(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``uvicorn --factory alignloop.ui.runtime:web_app --workers N``: a worker built from the settings alone logs
    in a user of ``alignloop ui``'s DB and leases an item from it; its lifespan runs the model refresher."""
    from alignloop.ui.runtime import web_app
    from alignloop.ui.security import db_url
    from schemas.settings import load_settings

    monkeypatch.setenv("ALIGNLOOP_HOME", str(tmp_path))
    store = LabelStore(db_url(load_settings()))
    store.add_user("ann", "annotator", hash_password("correct horse"))
    q = "pairs"
    store.add_items([{"id": f"{q}:t1", "queue": q, "trace_id": "t1", "kind": "pairwise", "max_labels": 3,
                      "payload": {"user_message": "hi", "final_response": "yo", "candidates": ["a", "b"]}}])
    store.close()
    with TestClient(web_app(), base_url="http://testserver") as c:
        r = c.post("/login", data={"csrf": _csrf(c.get("/login").text), "name": "ann", "password": "correct horse"},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        r = c.get(f"/label/{q}", headers=HTML)
        assert r.status_code == 200 and 'data-item="pairs:t1"' in r.text
