"""The stream worker keeps the root logger at its --loglevel: faust's terminal spinner would set it to DEBUG, and
then every debug line of aiokafka and faust (one per message sent) is built and thrown away."""
from __future__ import annotations

import logging

import faust
import pytest

from alignloop.commands.worker import stream_worker


@pytest.fixture
def root_level():
    before = logging.root.level
    yield
    logging.root.setLevel(before)


def test_the_worker_leaves_the_root_logger_at_its_level(root_level):
    app = faust.App("test-worker-logging", broker="kafka://localhost:1", autodiscover=False)
    logging.root.setLevel(logging.WARNING)
    faust.Worker(app, loglevel="WARNING", quiet=True).on_setup_root_logger(logging.root, logging.WARNING)
    assert logging.root.level == logging.DEBUG  # faust's own worker: what this guards against
    logging.root.setLevel(logging.WARNING)
    stream_worker(app, "warning").on_setup_root_logger(logging.root, logging.WARNING)
    assert logging.root.level == logging.WARNING
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
