"""The labeling UI end to end in a real browser (Debian's chromium via Playwright) against `alignloop ui` as a
subprocess on a real broker: items from judge.human_queue, keyboard-only labeling of a score card and a pairwise
item, the labels on feedback.labels / feedback.preferences and in Delta, an annotator refused the admin page, an
adjudication, and the audit trail. Set UI_SCREENSHOT_DIR to keep the screenshots (docs/labeling.md uses them)."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from alignloop.bench._label_sim import human_queue_item
from tests.helpers import settings_env, table_rows, wait_for

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
CONFIG = """
export_min_alpha: 0.5
queues:
  - {name: scores, kind: score_card, min_labels: 1, max_labels: 1, stop_confidence: 0.95, gold_rate: 0,
     repeat_rate: 0, correction: true,
     dimensions: [{name: task_success}, {name: helpfulness}, {name: tone}, {name: safety, scale: binary}]}
  - {name: pairs, kind: pairwise, min_labels: 1, max_labels: 1, gold_rate: 0, repeat_rate: 0, correction: false}
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _users(s) -> None:
    from argon2 import PasswordHasher

    from alignloop.ui.security import db_url
    from connectors.labeling_db import LabelStore

    store = LabelStore(db_url(s))
    pw = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("correct horse")
    for name, role in (("ann", "annotator"), ("rev", "reviewer")):
        store.add_user(name, role, pw)
    store.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is missing: `make chromium` installs it")
def test_label_with_the_keyboard_in_a_real_browser(kafka_settings, tmp_path):
    from playwright.sync_api import sync_playwright

    from connectors.audit import read_entries
    from connectors.kafka import producer
    from schemas.topics import HUMAN_QUEUE, LABELS

    cfg = tmp_path / "labeling.yaml"
    cfg.write_text(CONFIG)
    s = kafka_settings.model_copy(update={"labeling_config": cfg, "ui_port": _port()})
    env = settings_env(s)
    _users(s)  # in-process, cheap hashes (the CLI's `users add` has its own unit test)

    async def publish() -> None:
        async with producer(s) as prod:
            for hq in (human_queue_item(1, text="Reset <b>my</b> router?"), human_queue_item(2, pair=True)):
                await prod.send_and_wait(s.topic(HUMAN_QUEUE), hq.model_dump_json().encode(),
                                         key=hq.trace_id.encode())
    asyncio.run(publish())
    log = open(tmp_path / "ui.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "alignloop.cli", "ui", "--port", str(s.ui_port)], env=env,
                            cwd=REPO, stdout=log, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{s.ui_port}"
    shots = Path(os.environ.get("UI_SCREENSHOT_DIR") or tmp_path)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        wait_for(lambda: _up(base), 30, what="the UI to answer")
        from connectors.labeling_db import LabelStore
        from alignloop.ui.security import db_url

        store = LabelStore(db_url(s))
        wait_for(lambda: sum(sum(v.values()) for v in store.counts().values()) == 2, 20, what="items servable")
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                      "--disable-sync"])
            page = browser.new_page()
            _login(page, base, "ann")
            page.goto(f"{base}/label/scores")
            assert "Reset &lt;b&gt;my&lt;/b&gt; router?" in page.content()  # escaped, not bold
            page.screenshot(path=str(shots / "labeling-score-card.png"), full_page=True)
            page.keyboard.press("Escape")
            for key in ("5", "6", "7", "2", "Enter"):  # four answers and submit: five keys
                page.keyboard.press(key)
            page.wait_for_selector("#msg:has-text('saved')")
            assert page.locator("#empty").is_visible()
            page.goto(f"{base}/label/pairs")
            page.screenshot(path=str(shots / "labeling-pairwise.png"), full_page=True)
            left = page.locator("#side-1").inner_text()
            for key in ("1", "4", "Enter"):  # left is better, strongly
                page.keyboard.press(key)
            page.wait_for_selector("#msg:has-text('saved')")
            page.goto(f"{base}/admin")
            assert "needs the admin role" in page.locator("#error").inner_text()
            page.context.clear_cookies()
            _login(page, base, "rev")
            page.goto(f"{base}/review")
            page.locator("a.disputed").first.click()  # one label at overlap 1 is not a clear consensus
            for key in ("3", "3", "3", "1", "Enter"):
                page.keyboard.press(key)
            page.wait_for_selector("#msg:has-text('adjudicated')")
            assert "adjudicated" in page.locator("#consensus").inner_text()
            page.screenshot(path=str(shots / "labeling-adjudicated.png"), full_page=True)
            browser.close()

        def landed():
            t = table_rows(s, "labels")
            return t.num_rows >= 2 and t
        labels = wait_for(landed, 30, what="labels in Delta").to_pylist()
        by_id = {r["label_id"]: r for r in labels}
        assert len(labels) == 2  # the score card's human label and the adjudication, once each
        human = by_id["human:scores:t0000001:ann"]
        assert human["source"] == "human" and human["passed"] is True
        assert json.loads(human["scores_json"]) == {"task_success": round(4 / 6, 4), "helpfulness": round(5 / 6, 4),
                                                    "tone": 1.0, "safety": 1.0}
        adj = by_id["consensus:scores:t0000001"]
        assert adj["annotator"] == "consensus:adjudicated" and adj["passed"] is False
        prefs = wait_for(lambda: table_rows(s, "preferences").num_rows and table_rows(s, "preferences"), 30,
                         what="the preference in Delta").to_pylist()
        (pref,) = [p for p in prefs if p["pref_id"] == "human:pairs:t0000002:ann"]
        assert pref["chosen"] == left and pref["strength"] == 1.0 and pref["source"] == "human"
        on_topic = asyncio.run(_topic_ids(s, s.topic(LABELS)))
        assert sorted(on_topic) == sorted(by_id)  # exactly once on feedback.labels too

        def audited():
            acts = [e.action for e, _ in asyncio.run(read_entries(s))]
            return {"ui.login", "ui.label", "ui.adjudicate"} <= set(acts) and acts
        acts = wait_for(audited, 20, what="audit entries")
        assert acts.count("ui.label") == 2 and acts.count("ui.adjudicate") == 1
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def _up(base: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _login(page, base: str, name: str) -> None:
    page.goto(f"{base}/queues")  # not logged in: redirected to the login page
    assert "/login" in page.url
    page.fill("#name", name)
    page.fill("#password", "correct horse")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url.endswith("/queues") and "/login" not in url)


async def _topic_ids(s, topic: str) -> list[str]:
    from connectors.kafka import read_topic

    return [json.loads(m.value)["label_id"] for m in await read_topic(s, topic)]
