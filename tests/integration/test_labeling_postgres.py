"""The labeling store's tests against a real PostgreSQL server from Debian's package, started here: initdb and
pg_ctl as the postgres user on a data dir under a tmp dir, on a free port (leases use FOR UPDATE SKIP LOCKED)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.unit.test_labeling_store import (  # noqa: F401  (collected here again, on PostgreSQL)
    test_a_lease_is_one_annotators_and_overlap_caps_servings, test_a_lease_submitted_twice_counts_once_and_publishes_once,
    test_an_expired_lease_returns_to_the_queue_and_its_answer_is_refused, test_concurrent_annotators_never_share_a_lease,
    test_gold_items_are_served_to_everyone_and_never_counted, test_hidden_repeats_come_back_later_with_sides_swapped,
    test_ingest_is_idempotent_on_item_id, test_two_reviewers_adjudicating_at_once_one_wins)

PG = Path("/usr/lib/postgresql/15/bin")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (PG / "initdb").exists(), reason="Debian's postgresql-15 is not installed")]


def _as_postgres(*args: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="alignloop-pg-"))
    shutil.chown(root, "postgres")
    data = root / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _as_postgres(str(PG / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    _as_postgres(str(PG / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                 f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres(str(PG / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def store(pg_server: str) -> Iterator[Any]:
    """A fresh database per test on the module's server."""
    from sqlalchemy import create_engine, text

    from connectors.labeling_db import LabelStore

    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    s = LabelStore(pg_server.rsplit("/", 1)[0] + f"/{name}")
    yield s
    s.close()
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()
