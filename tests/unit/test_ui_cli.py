"""`alignloop users add | list | role` and `alignloop ui` refusing to start without users: one-line errors."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from alignloop.cli import app
from alignloop.errors import UserError


def _err(r) -> str:
    """The one-line error `alignloop` prints (main() turns a UserError into that line and exit 2)."""
    assert isinstance(r.exception, UserError), r.output
    return str(r.exception)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    from argon2 import PasswordHasher

    from alignloop.ui import security

    monkeypatch.setenv("ALIGNLOOP_HOME", str(tmp_path))
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return tmp_path


def test_users_add_reads_the_password_from_stdin_and_hashes_it(home) -> None:
    r = CliRunner().invoke(app, ["users", "add", "alice", "--role", "admin"], input="s3cret-pass\n")
    assert r.exit_code == 0 and "added alice (admin)" in r.output
    r = CliRunner().invoke(app, ["users", "add", "bob", "--role", "annotator"], input="another-pass\n")
    listing = CliRunner().invoke(app, ["users", "list"]).output.splitlines()
    assert listing == ["alice\tadmin\tactive\t0 answers", "bob\tannotator\tactive\t0 answers"]
    from alignloop.ui.security import check_password, db_url
    from connectors.labeling_db import LabelStore
    from schemas.settings import load_settings

    store = LabelStore(db_url(load_settings()))
    u = store.user("alice")
    assert u.pw_hash.startswith("$argon2id$") and "s3cret" not in u.pw_hash and check_password(u.pw_hash, "s3cret-pass")
    assert [o.payload["action"] for o in store.pending()] == ["ui.user_add", "ui.user_add"]  # audited via outbox
    r = CliRunner().invoke(app, ["users", "role", "bob", "--role", "reviewer"])
    assert r.exit_code == 0 and store.user("bob").role == "reviewer"


def test_bad_input_is_one_line_with_the_fix(home) -> None:
    r = CliRunner().invoke(app, ["users", "add", "carol", "--role", "annotator"], input="short\n")
    assert "8 to 1024 characters" in _err(r) and "echo PASSWORD |" in _err(r)
    r = CliRunner().invoke(app, ["users", "add", "carol", "--role", "boss"], input="long-enough\n")
    assert "unknown role 'boss'" in _err(r)
    CliRunner().invoke(app, ["users", "add", "carol", "--role", "annotator"], input="long-enough\n")
    r = CliRunner().invoke(app, ["users", "add", "carol", "--role", "annotator"], input="long-enough\n")
    assert "exists" in _err(r)
    r = CliRunner().invoke(app, ["users", "role", "nobody", "--role", "admin"])
    assert "no user 'nobody'" in _err(r)


def test_ui_refuses_to_start_without_a_user(home) -> None:
    r = CliRunner().invoke(app, ["ui", "--port", "18999"])
    assert "add an admin first" in _err(r)


def test_the_refit_child_exits_when_the_server_is_killed(tmp_path):
    """kill -9 of the UI server runs no cleanup: its refit child must notice and exit, not live on as an orphan."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "server.py"
    script.write_text(
        "import multiprocessing, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from alignloop.ui.runtime import _exit_with_parent\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn'),\n"
        "                               initializer=_exit_with_parent, initargs=(os.getpid(),))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(60)\n")
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    child = int(server.stdout.readline())
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the refit child outlived the killed server")
