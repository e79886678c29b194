"""Shared fixtures. Integration tests run against a real Kafka broker: a local single-node KRaft broker started
once per session from the Maven-resolved jars (or any cluster named by ALIGNLOOP_TEST_BOOTSTRAP). Each test gets
its own topic prefix, consumer group and lake directory from a factory fixture."""
from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from schemas.settings import Settings  # noqa: E402
from tests.helpers import WorkerProcess  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running broker; yields an object with .bootstrap (and .stop()/.start() when local)."""
    from connectors.broker import LocalBroker

    external = os.environ.get("ALIGNLOOP_TEST_BOOTSTRAP")
    if external:
        class External:
            bootstrap = external
        yield External()
        return
    home = tmp_path_factory.mktemp("broker-home")
    shared_libs = REPO / ".alignloop" / "kafka" / "libs"
    b = LocalBroker(home, port=_free_port(), controller_port=_free_port(), heap="768m")
    if not shared_libs.is_dir():  # resolve once into the repo's cache, share with every later session
        LocalBroker(REPO / ".alignloop").resolve_jars()
    b.root.mkdir(parents=True, exist_ok=True)
    (b.root / "libs").symlink_to(shared_libs)
    b.start()
    yield b
    b.stop(kill=False)


@pytest.fixture
def make_settings(broker: Any, tmp_path: Path) -> Callable[..., Settings]:
    """Settings isolated to this test: unique topic prefix and app id, lake and state under tmp_path."""

    def make(**overrides: Any) -> Settings:
        tag = uuid.uuid4().hex[:8]
        values: dict[str, Any] = dict(kafka_bootstrap=broker.bootstrap, topic_prefix=f"t{tag}.",
                                      app_id=f"test-{tag}", home=tmp_path / "home", lake_root=str(tmp_path / "lake"),
                                      metrics_port=0, partitions=2, sink_flush_interval_s=0.5)
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def kafka_settings(make_settings: Callable[..., Settings]) -> Settings:
    """Isolated settings with every pipeline topic created."""
    from connectors.kafka import create_topics

    s = make_settings()
    asyncio.run(create_topics(s))
    return s


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def make(settings: Settings, role: str = "all") -> WorkerProcess:
        w = WorkerProcess(settings, tmp_path / f"worker-{len(workers)}-{role}.log", role=role)
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.kill()
