"""The labeling store: leases with expiry, overlap, hidden repeats, gold, skip, adjudication once, concurrent
leasing, idempotent ingest, the outbox. ``store`` is SQLite here; tests/integration/test_labeling_postgres.py runs
these same tests against a real PostgreSQL server."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from connectors.labeling_db import Finish, LabelStore, StoreError

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path: Any) -> Any:
    s = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    yield s
    s.close()


def _items(n: int, queue: str = "scores", max_labels: int = 2, kind: str = "score_card") -> list[dict[str, Any]]:
    return [{"id": f"{queue}:t{i:03d}", "queue": queue, "trace_id": f"t{i:03d}", "kind": kind,
             "payload": {"user_message": f"q{i}", "final_response": f"a{i}", "candidates": ["x", "y"]},
             "max_labels": max_labels, "priority": 0.0} for i in range(n)]


def _users(store: LabelStore, *names: str) -> list[int]:
    return [store.add_user(n, "annotator", "h").id for n in names]


def _ok(_s: Any, _item: Any, _a: Any, _answers: Any, _who: str) -> Finish:
    return Finish(records=(("label", f"k-{_item.id}-{_who}", {"x": 1}),))


def test_ingest_is_idempotent_on_item_id(store: LabelStore) -> None:
    assert store.add_items(_items(5)) == 5
    assert store.add_items(_items(7)) == 2  # five already there
    assert store.add_items(_items(3) + _items(3)) == 0
    assert store.counts() == {"scores": {"open": 7}}


def test_a_lease_is_one_annotators_and_overlap_caps_servings(store: LabelStore) -> None:
    store.add_items(_items(1, max_labels=2))
    a, b, c = _users(store, "a", "b", "c")
    la = store.next_item(a, "scores", lease_s=60, now=T0)
    assert store.next_item(a, "scores", lease_s=60, now=T0) == la  # a reload gives the same lease
    lb = store.next_item(b, "scores", lease_s=60, now=T0)
    assert la.item_id == lb.item_id and la.assignment_id != lb.assignment_id
    assert store.next_item(c, "scores", lease_s=60, now=T0) is None  # two annotators already hold it
    store.submit(a, la.assignment_id, {"v": 1}, _ok, now=T0)
    assert store.next_item(a, "scores", lease_s=60, now=T0) is None  # never the same item twice
    assert store.next_item(c, "scores", lease_s=60, now=T0) is None  # 1 label + 1 lease = overlap 2
    store.skip(b, lb.assignment_id, now=T0)
    assert store.next_item(c, "scores", lease_s=60, now=T0).item_id == la.item_id  # the skip freed a slot


def test_an_expired_lease_returns_to_the_queue_and_its_answer_is_refused(store: LabelStore) -> None:
    store.add_items(_items(1, max_labels=1))
    a, b = _users(store, "a", "b")
    la = store.next_item(a, "scores", lease_s=10, now=T0)
    assert store.next_item(b, "scores", lease_s=10, now=T0 + timedelta(seconds=5)) is None
    lb = store.next_item(b, "scores", lease_s=10, now=T0 + timedelta(seconds=11))
    assert lb is not None and lb.item_id == la.item_id
    with pytest.raises(StoreError, match="expired"):
        store.submit(a, la.assignment_id, {"v": 1}, _ok, now=T0 + timedelta(seconds=12))
    store.submit(b, lb.assignment_id, {"v": 2}, _ok, now=T0 + timedelta(seconds=12))
    assert store.item(la.item_id).n_labels == 1 and store.item(la.item_id).n_leased == 0


def test_a_lease_submitted_twice_counts_once_and_publishes_once(store: LabelStore) -> None:
    store.add_items(_items(1))
    (a,) = _users(store, "a")
    la = store.next_item(a, "scores", lease_s=60, now=T0)
    store.submit(a, la.assignment_id, {"v": 1}, _ok, now=T0)
    with pytest.raises(StoreError, match="already submitted"):
        store.submit(a, la.assignment_id, {"v": 9}, _ok, now=T0)
    (b,) = _users(store, "b")
    with pytest.raises(StoreError, match="not leased to you"):
        store.submit(b, la.assignment_id, {"v": 9}, _ok, now=T0)
    assert store.item(la.item_id).n_labels == 1
    assert [(o.kind, o.key) for o in store.pending()] == [("label", f"k-{la.item_id}-a")]
    store.mark_published([o.id for o in store.pending()])
    assert store.pending() == []


def test_hidden_repeats_come_back_later_with_sides_swapped(store: LabelStore) -> None:
    store.add_items(_items(4, max_labels=3))
    (a,) = _users(store, "a")
    first = store.next_item(a, "scores", lease_s=60, now=T0)
    store.submit(a, first.assignment_id, {"v": 1}, _ok, repeat_rate=1.0, repeat_gap=2, now=T0)
    served = []
    for _ in range(3):
        lease = store.next_item(a, "scores", lease_s=60, now=T0)
        served.append(lease)
        store.submit(a, lease.assignment_id, {"v": 1}, _ok, repeat_rate=0.0, now=T0)
    kinds = [(x.item_id, x.kind) for x in served]
    assert [k for _, k in kinds] == ["label", "label", "repeat"] and kinds[2][0] == first.item_id  # 2 between
    assert served[2].swapped is not first.swapped
    assert store.item(first.item_id).n_labels == 1  # a repeat is not another label


def test_gold_items_are_served_to_everyone_and_never_counted(store: LabelStore) -> None:
    store.add_items(_items(3, max_labels=1))
    store.set_gold("scores:t002", {"decision": "pass"})
    a, b = _users(store, "a", "b")
    for u in (a, b):
        lease = store.next_item(u, "scores", lease_s=60, gold_rate=1.0, now=T0)
        assert (lease.item_id, lease.kind) == ("scores:t002", "gold")
        store.submit(u, lease.assignment_id, {"v": 1}, _ok, now=T0)
    assert store.item("scores:t002").n_labels == 0 and store.item("scores:t002").status == "open"
    plain = store.next_item(a, "scores", lease_s=60, gold_rate=0.0, now=T0)
    assert plain.kind == "label" and plain.item_id != "scores:t002"


def test_two_reviewers_adjudicating_at_once_one_wins(store: LabelStore) -> None:
    store.add_items(_items(1))
    with store.Session.begin() as s:
        from connectors.labeling_db import Item

        s.get(Item, "scores:t000").status = "disputed"
    version = store.item("scores:t000").version
    wins, losses = [], []
    barrier = threading.Barrier(2)

    def judge(name: str) -> None:
        barrier.wait()
        try:
            store.adjudicate("scores:t000", version, {"by": name, "decision": name},
                             [("label", f"consensus-{name}", {"by": name})])
            wins.append(name)
        except StoreError as exc:
            losses.append(str(exc))

    threads = [threading.Thread(target=judge, args=(n,)) for n in ("r1", "r2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 1 and "already adjudicated" in losses[0]
    assert store.item("scores:t000").consensus["by"] == wins[0]
    assert [o.key for o in store.pending()] == [f"consensus-{wins[0]}"]  # the loser published nothing


def test_concurrent_annotators_never_share_a_lease(store: LabelStore) -> None:
    store.add_items(_items(40, max_labels=1))
    users = _users(store, *[f"u{i}" for i in range(8)])
    got: list[str] = []
    lock = threading.Lock()

    def work(u: int) -> None:
        for _ in range(6):
            lease = store.next_item(u, "scores", lease_s=60, now=T0)
            if lease is None:
                return
            store.submit(u, lease.assignment_id, {"v": 1}, _ok, now=T0)
            with lock:
                got.append(lease.item_id)

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 40 and len(set(got)) == 40  # every item once, none twice
    assert len(store.pending()) == 40


_WORKER = """
import sys, threading
from datetime import datetime, timezone
from connectors.labeling_db import Finish, LabelStore
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
store = LabelStore(sys.argv[1])
out = threading.Lock()
def ok(_s, item, _a, _answers, who):
    return Finish(records=(("label", f"k-{item.id}-{who}", {"x": 1}),))
def work(u):
    while (lease := store.next_item(u, "scores", lease_s=60, now=T0)) is not None:
        store.submit(u, lease.assignment_id, {"v": 1}, ok, now=T0)
        with out:  # one line at a time: threads' prints interleave
            print(lease.item_id, flush=True)
threads = [threading.Thread(target=work, args=(int(u),)) for u in sys.argv[2:]]
for t in threads: t.start()
for t in threads: t.join()
store.close()
"""


def test_two_processes_on_one_sqlite_file_never_share_a_lease(tmp_path: Any) -> None:
    """As under ``uvicorn --workers``: two processes (three threads each) lease and submit on one SQLite file; the
    writers queue on the lock file, and every item is labelled once, published once."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'labels.db'}"
    store = LabelStore(url)
    store.add_items(_items(60, max_labels=1))
    users = [str(u) for u in _users(store, *[f"u{i}" for i in range(6)])]
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, url, *users[i::2]], stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    got = [line for p in procs for line in p.communicate(timeout=120)[0].split()]
    assert [p.returncode for p in procs] == [0, 0]
    assert len(got) == 60 and len(set(got)) == 60  # every item once, none twice
    assert len({o.key for o in store.pending()}) == len(store.pending()) == 60
    assert (tmp_path / "labels.db.writelock").exists()
    store.close()


def test_a_writer_waiting_on_the_sqlite_lock_file_gives_up_after_its_timeout(tmp_path: Any) -> None:
    """A second store in the same process holds the write lock: the waiter is refused after its timeout (as
    SQLite's busy timeout did), and takes the lock once the holder commits."""
    from sqlalchemy.exc import OperationalError

    from connectors.labeling_db import _WriteLock

    path = str(tmp_path / "labels.db.writelock")
    holder, waiter = _WriteLock(path), _WriteLock(path, timeout_s=0.2)
    holder.acquire()
    with pytest.raises(OperationalError, match="stayed locked"):
        waiter.acquire()
    holder.release()
    waiter.acquire()
    waiter.release()
