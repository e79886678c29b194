"""``alignloop bench ui``'s page part in miniature: a uvicorn server with two workers in its own process, clients
here, annotators who read and a closed loop — every acknowledged label is in the DB and published once."""
from __future__ import annotations

import socket

from alignloop.bench.ui import page_latency


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_run_counts_every_label_once_with_and_without_think_time() -> None:
    out = page_latency(300, 3, 1.0, _free_port(), workers=2, think=(0.05, 0.1))
    for run in (out, out["closed_loop"]):
        assert run["errors"] == 0, run["error_sample"]
        assert run["labels_client_ok"] > 0
        assert run["labels_client_ok"] == run["labels_in_db"] == run["labels_published"]
        assert run["lost"] == run["duplicated"] == run["unacknowledged"] == 0
        assert run["workers"] == 2 and set(run["p95_ms_by_request"]) == {"login", "item_page", "submit"}
    assert out["think_s"] == [0.05, 0.1] and out["closed_loop"]["think_s"] == 0
