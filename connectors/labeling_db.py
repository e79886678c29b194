"""The labeling UI's SQL store (SQLAlchemy 2): users, sessions, items, leases (assignments) and an outbox.

SQLite by default (one file, writes serialised with ``BEGIN IMMEDIATE``), PostgreSQL by URL for a team (leases
taken with ``FOR UPDATE SKIP LOCKED`` so concurrent annotators never get the same lease). Every state change and
the records it must publish (labels, preferences, audit entries) commit in ONE transaction: the outbox is drained
to Kafka afterwards, so a crash between the two loses nothing and deterministic ids make a re-send harmless.

The store knows nothing of what an answer means: ``submit`` takes a ``finish`` callback (the labeling logic in
``streams.labeling``) that decides the item's new state and the records to publish.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint,
                        bindparam, create_engine, event, func, insert, select, update)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

ROLES = ("annotator", "reviewer", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}


class StoreError(ValueError):
    """A refused action, phrased for the person who tried it."""


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    pw_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    n_done: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class LoginSession(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


class Item(Base):
    __tablename__ = "items"
    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64))
    trace_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    gold: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|resolved|disputed|adjudicated|gold
    max_labels: Mapped[int] = mapped_column(Integer)
    n_labels: Mapped[int] = mapped_column(Integer, default=0)
    n_leased: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)
    consensus: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime]
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# The serving order (next_item's ORDER BY) exactly, so the next item is an index seek, not a sort of the queue.
Index("ix_items_serve", Item.queue, Item.status, Item.priority.desc(), Item.created_at, Item.id)


class Assignment(Base):
    """One serving of an item to one annotator: a lease until answered, skipped or expired. ``kind`` 'repeat' is
    a hidden repeat (scheduled, served later with sides swapped), 'gold' a gold item."""
    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(8), default="label")
    status: Mapped[str] = mapped_column(String(10))  # scheduled|leased|done|skipped|expired
    swapped: Mapped[bool] = mapped_column(Boolean, default=False)
    due_count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    __table_args__ = (UniqueConstraint("item_id", "user_id", "kind", name="uq_assignment"),
                      Index("ix_assign_user", "user_id", "status"), Index("ix_assign_expiry", "status", "expires_at"),
                      Index("ix_assign_item", "item_id", "status"))


class Outbox(Base):
    """Records to publish after the commit: kind 'label' | 'preference' | 'audit' | 'sft'."""
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    key: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]]
    published: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def share(*parts: Any) -> float:
    """A deterministic number in [0, 1) from ``parts`` (which servings are gold, repeated, swapped)."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2 ** 64


@dataclass(frozen=True)
class Lease:
    assignment_id: int
    item_id: str
    kind: str
    swapped: bool
    expires_at: datetime


@dataclass(frozen=True)
class Finish:
    """What ``finish`` decided for an item after an answer: new status (None: unchanged), consensus, records."""
    status: str | None = None
    consensus: dict[str, Any] | None = None
    records: tuple[tuple[str, str, dict[str, Any]], ...] = ()  # (kind, key, payload) for the outbox


class LabelStore:
    def __init__(self, url: str, *, pool_size: int = 10):
        self.url = url
        kw: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kw.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            # Writes: BEGIN IMMEDIATE, one writer at a time (no lost update, no deadlock). Reads: a second engine
            # with plain deferred transactions, which WAL lets run beside the writer. Writers across threads AND
            # processes (uvicorn --workers) queue on a lock file beside the DB, so a waiting writer wakes when the
            # holder commits, not in SQLite's busy-handler sleeps (up to 100 ms each).
            self.engine = create_engine(url, **{**kw, "connect_args": {**kw["connect_args"],
                                                                         "factory": _LockingConnection}})
            self.reader = create_engine(url, **kw)
            path = self.engine.url.database
            _sqlite_events(self.engine, "BEGIN IMMEDIATE",
                           _WriteLock(f"{path}.writelock" if path and path != ":memory:" else None))
            _sqlite_events(self.reader, "BEGIN", None)
        else:
            self.engine = self.reader = create_engine(url, **kw)
        Base.metadata.create_all(self.engine)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.Reader = sessionmaker(self.reader, expire_on_commit=False)
        self._expired_at: datetime | None = None

    def close(self) -> None:
        self.engine.dispose()
        self.reader.dispose()

    def _lock(self, stmt: Any) -> Any:
        return stmt if self.sqlite else stmt.with_for_update(skip_locked=True)

    # --- users and sessions ---
    def add_user(self, name: str, role: str, pw_hash: str) -> User:
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        with self.Session.begin() as s:
            if s.scalar(select(User).where(User.name == name)) is not None:
                raise StoreError(f"user {name!r} exists; use `alignloop users role` or pick another name")
            u = User(name=name, role=role, pw_hash=pw_hash, active=True, n_done=0, created_at=_now())
            s.add(u)
        return u

    def user(self, name: str) -> User | None:
        with self.Reader() as s:
            return s.scalar(select(User).where(User.name == name))

    def users(self) -> list[User]:
        with self.Reader() as s:
            return list(s.scalars(select(User).order_by(User.name)))

    def set_user(self, name: str, *, role: str | None = None, active: bool | None = None,
                 pw_hash: str | None = None, records: Iterable[tuple[str, str, dict[str, Any]]] = ()) -> User:
        if role is not None and role not in ROLES:
            raise StoreError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        with self.Session.begin() as s:
            u = s.scalar(select(User).where(User.name == name))
            if u is None:
                raise StoreError(f"no user {name!r}")
            if role is not None:
                u.role = role
            if active is not None:
                u.active = active
            if pw_hash is not None:
                u.pw_hash = pw_hash
            self._outbox(s, records)
        return u

    def new_session(self, user_id: int, ttl_s: float, now: datetime | None = None) -> LoginSession:
        ls = LoginSession(id=secrets.token_urlsafe(32), user_id=user_id, csrf=secrets.token_urlsafe(32),
                          expires_at=(now or _now()) + timedelta(seconds=ttl_s))
        with self.Session.begin() as s:
            s.add(ls)
        return ls

    def session_user(self, sid: str, now: datetime | None = None) -> tuple[LoginSession, User] | None:
        """The live session ``sid`` and its active user: one Core query (this runs on every request)."""
        with self.reader.connect() as c:
            row = c.execute(_SESSION_USER, {"sid": sid}).first()
        if row is None or _aware(row.expires_at) <= (now or _now()) or not row.active:
            return None
        ls = LoginSession(id=sid, user_id=row.id, csrf=row.csrf, expires_at=_aware(row.expires_at))
        return ls, User(id=row.id, name=row.name, role=row.role, active=row.active, n_done=row.n_done,
                        pw_hash="", created_at=row.created_at)

    def end_session(self, sid: str) -> None:
        with self.Session.begin() as s:
            ls = s.get(LoginSession, sid)
            if ls is not None:
                s.delete(ls)

    # --- items ---
    def add_items(self, items: Iterable[dict[str, Any]]) -> int:
        """Insert items not already present (idempotent on id); returns how many were new."""
        rows = list(items)
        if not rows:
            return 0
        with self.Session.begin() as s:
            have = set(s.scalars(select(Item.id).where(Item.id.in_([r["id"] for r in rows]))))
            seen: set[str] = set()
            fresh: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            now = _now()
            for r in rows:
                if r["id"] in have or r["id"] in seen:
                    continue
                # arrival order within the batch kept (serving order is priority, created_at, id)
                row = {"created_at": now + timedelta(microseconds=len(seen)), **r}
                seen.add(r["id"])
                fresh.setdefault(tuple(sorted(row)), []).append(row)
            for batch in fresh.values():  # one executemany INSERT per shape of row, not an ORM object per item
                s.execute(insert(Item), batch)
        return len(seen)

    def item(self, item_id: str) -> Item | None:
        with self.Reader() as s:
            return s.get(Item, item_id)

    def counts(self) -> dict[str, dict[str, int]]:
        with self.Reader() as s:
            out: dict[str, dict[str, int]] = {}
            for q, st, n in s.execute(select(Item.queue, Item.status, func.count()).group_by(Item.queue, Item.status)):
                out.setdefault(q, {})[st] = n
            return out

    def set_gold(self, item_id: str, answer: dict[str, Any]) -> None:
        with self.Session.begin() as s:
            it = s.get(Item, item_id)
            if it is None:
                raise StoreError(f"no item {item_id!r}")
            it.gold, it.version = answer, it.version + 1

    # --- leases ---
    def expire_leases(self, now: datetime | None = None) -> int:
        now = now or _now()
        with self.Session.begin() as s:
            stale = list(s.scalars(select(Assignment).where(Assignment.status == "leased",
                                                            Assignment.expires_at < now)))
            for a in stale:
                a.status = "expired"
                if a.kind == "label":
                    s.execute(update(Item).where(Item.id == a.item_id).values(n_leased=Item.n_leased - 1))
                elif a.kind == "repeat":  # a missed repeat is offered again later
                    a.status, a.expires_at = "scheduled", None
            return len(stale)

    def next_item(self, user_id: int, queue: str, *, lease_s: float, gold_rate: float = 0.0,
                  now: datetime | None = None) -> Lease | None:
        """The user's current lease in ``queue``, else a due hidden repeat, else (sometimes) a gold item, else the
        next open item they have not labelled and that still needs labels."""
        now = now or _now()
        if self._expired_at is None or not timedelta(0) <= now - self._expired_at < timedelta(seconds=1):
            self.expire_leases(now)  # at most once a second: a lease's expiry is accurate to that
            self._expired_at = now
        until = now + timedelta(seconds=lease_s)
        # Core with prebuilt statements (this runs on every page): one write transaction, 3-5 short statements.
        with self.engine.begin() as c:
            n_done = c.execute(_N_DONE, {"uid": user_id}).scalar_one()
            args = {"uid": user_id, "queue": queue}
            held = c.execute(_HELD, args).first()
            if held is not None:
                return Lease(held.id, held.item_id, held.kind, held.swapped, _aware(held.expires_at))
            rep = c.execute(_REPEAT, {**args, "n_done": n_done}).first()
            if rep is not None:
                c.execute(update(Assignment).where(Assignment.id == rep.id).values(status="leased", expires_at=until))
                return Lease(rep.id, rep.item_id, rep.kind, rep.swapped, until)
            if gold_rate and share("gold", user_id, n_done) < gold_rate:
                gold = c.execute(_GOLD, args).scalar()
                if gold is not None:
                    return self._take(c, gold, user_id, "gold", until)
            it = c.execute(_NEXT if self.sqlite else _NEXT_PG, args).scalar()
            if it is None:
                return None
            c.execute(_LEASE_ONE, {"item": it})
            return self._take(c, it, user_id, "label", until)

    @staticmethod
    def _take(c: Any, item_id: str, user_id: int, kind: str, until: datetime) -> Lease:
        swapped = share("swap", item_id, user_id) < 0.5
        aid = c.execute(insert(Assignment).values(item_id=item_id, user_id=user_id, kind=kind, status="leased",
                                                  swapped=swapped, due_count=0, expires_at=until)
                        ).inserted_primary_key[0]
        return Lease(aid, item_id, kind, swapped, until)

    def assignment(self, assignment_id: int) -> tuple[Assignment, Item] | None:
        """The lease and its item, detached (one Core query: this runs on every item page and answer)."""
        with self.reader.connect() as c:
            row = c.execute(_ASSIGNMENT, {"aid": assignment_id}).mappings().first()
        if row is None:
            return None
        return (Assignment(**{k: row[f"a_{k}"] for k in _A_NAMES}), Item(**{k: row[f"i_{k}"] for k in _I_NAMES}))

    def _owned_lease(self, s: Session, user_id: int, assignment_id: int, now: datetime,
                     a: Assignment | None = None) -> Assignment:
        if a is None:
            a = s.get(Assignment, assignment_id, with_for_update=not self.sqlite)
        if a is None or a.user_id != user_id:
            raise StoreError("this item is not leased to you; take the next one")
        if a.status == "done":
            raise StoreError("this item was already submitted; your first answer stands")
        if a.status == "skipped":
            raise StoreError("this item was skipped; take the next one")
        if a.status == "expired" or (a.status == "leased" and _aware(a.expires_at) <= now):
            raise StoreError("your lease on this item expired and it went back to the queue; take the next one")
        if a.status != "leased":
            raise StoreError("this item is not leased to you; take the next one")
        return a

    def submit(self, user_id: int, assignment_id: int, answer: dict[str, Any],
               finish: Callable[[Session, Item, Assignment, list[tuple[str, dict[str, Any]]], str], Finish],
               *, repeat_rate: float = 0.0, repeat_gap: int = 5, now: datetime | None = None) -> Finish:
        """Record an answer on a live lease; ``finish(session, item, assignment, answers, user name)`` (answers:
        every 'label' answer of the item so far, by annotator name) decides the rest. All in one transaction."""
        now = now or _now()
        with self.Session.begin() as s:
            # the lease, its item and the user in one query (locked on PostgreSQL), not three
            q = select(Assignment, Item, User).join(Item, Item.id == Assignment.item_id).join(
                User, User.id == Assignment.user_id).where(Assignment.id == assignment_id)
            row = s.execute(q if self.sqlite else q.with_for_update()).first()
            a = self._owned_lease(s, user_id, assignment_id, now, row[0] if row is not None else None)
            it, user = row[1], row[2]
            a.status, a.answer, a.submitted_at = "done", answer, now
            user.n_done += 1
            if a.kind == "label":
                it.n_leased -= 1
                it.n_labels += 1
                if repeat_rate and share("repeat", it.id, user_id) < repeat_rate:
                    s.add(Assignment(item_id=it.id, user_id=user_id, kind="repeat", status="scheduled",
                                     swapped=not a.swapped, due_count=user.n_done + repeat_gap))
            s.flush()
            answers = [(name, ans) for name, ans in s.execute(
                select(User.name, Assignment.answer).join(User, User.id == Assignment.user_id).where(
                    Assignment.item_id == it.id, Assignment.kind == "label", Assignment.status == "done"
                ).order_by(Assignment.submitted_at, Assignment.id))]
            out = finish(s, it, a, answers, user.name)
            if out.status is not None and a.kind == "label" and it.status == "open":
                it.status, it.consensus, it.version = out.status, out.consensus, it.version + 1
            self._outbox(s, out.records)
            return out

    def skip(self, user_id: int, assignment_id: int, records: Iterable[tuple[str, str, dict[str, Any]]] = (),
             now: datetime | None = None) -> None:
        now = now or _now()
        with self.Session.begin() as s:
            a = self._owned_lease(s, user_id, assignment_id, now)
            a.status, a.submitted_at = "skipped", now
            if a.kind == "label":
                s.execute(update(Item).where(Item.id == a.item_id).values(n_leased=Item.n_leased - 1))
            self._outbox(s, records)

    def adjudicate(self, item_id: str, expected_version: int, consensus: dict[str, Any],
                   records: Iterable[tuple[str, str, dict[str, Any]]] = ()) -> Item:
        """Settle a disputed item, once: a second reviewer who loaded the same version is refused."""
        with self.Session.begin() as s:
            done = s.execute(update(Item).where(
                Item.id == item_id, Item.version == expected_version, Item.status.in_(["disputed", "resolved"])
            ).values(status="adjudicated", consensus=consensus, version=Item.version + 1))
            if done.rowcount != 1:
                it = s.get(Item, item_id)
                who = (it.consensus or {}).get("by") if it is not None else None
                raise StoreError(f"this item was already adjudicated{' by ' + who if who else ''} or changed since "
                                 "you opened it; reload to see its current state")
            self._outbox(s, records)
            return s.get(Item, item_id)

    def disputed(self, queue: str | None = None, limit: int = 100) -> list[Item]:
        with self.Reader() as s:
            q = select(Item).where(Item.status == "disputed")
            if queue:
                q = q.where(Item.queue == queue)
            return list(s.scalars(q.order_by(Item.created_at).limit(limit)))

    def answers(self, item_id: str) -> list[tuple[str, Assignment]]:
        with self.Reader() as s:
            return [(n, a) for n, a in s.execute(select(User.name, Assignment).join(
                User, User.id == Assignment.user_id).where(Assignment.item_id == item_id,
                                                           Assignment.status == "done").order_by(Assignment.id))]

    def done_answers(self, queue: str | None = None) -> list[tuple[str, str, str, bool, dict[str, Any], Item]]:
        """Every answer: (item id, annotator, kind, swapped, answer, item) — the agreement statistics' input."""
        with self.Reader() as s:
            q = select(Assignment.item_id, User.name, Assignment.kind, Assignment.swapped, Assignment.answer,
                       Item).join(User, User.id == Assignment.user_id).join(Item, Item.id == Assignment.item_id
                                                                            ).where(Assignment.status == "done")
            if queue:
                q = q.where(Item.queue == queue)
            return [tuple(r) for r in s.execute(q)]  # type: ignore[misc]

    # --- outbox ---
    def record(self, records: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        with self.Session.begin() as s:
            self._outbox(s, records)

    @staticmethod
    def _outbox(s: Session, records: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        rows = [{"kind": kind, "key": key, "payload": json.loads(json.dumps(payload, default=str)),
                 "published": False} for kind, key, payload in records]
        if rows:  # one executemany INSERT, not a unit-of-work flush per object
            s.execute(insert(Outbox), rows)

    def pending(self, limit: int = 500) -> list[Outbox]:
        with self.Reader() as s:
            return list(s.scalars(select(Outbox).where(Outbox.published.is_(False)).order_by(Outbox.id).limit(limit)))

    def mark_published(self, ids: list[int]) -> None:
        if ids:
            with self.Session.begin() as s:
                s.execute(update(Outbox).where(Outbox.id.in_(ids)).values(published=True))


_MINE = select(Assignment.item_id).where(Assignment.user_id == bindparam("uid"))
_N_DONE = select(User.n_done).where(User.id == bindparam("uid"))
_LEASE_COLS = (Assignment.id, Assignment.item_id, Assignment.kind, Assignment.swapped, Assignment.expires_at)
_HELD = select(*_LEASE_COLS).join(Item, Item.id == Assignment.item_id).where(
    Assignment.user_id == bindparam("uid"), Assignment.status == "leased", Item.queue == bindparam("queue")).limit(1)
_REPEAT = select(*_LEASE_COLS).join(Item, Item.id == Assignment.item_id).where(
    Assignment.user_id == bindparam("uid"), Assignment.status == "scheduled", Item.queue == bindparam("queue"),
    Assignment.due_count <= bindparam("n_done")).limit(1)
_GOLD = select(Item.id).where(Item.queue == bindparam("queue"), Item.gold.is_not(None), Item.id.not_in(_MINE)
                              ).limit(1)
_NEXT = select(Item.id).where(
    Item.queue == bindparam("queue"), Item.status == "open", Item.gold.is_(None),
    Item.n_labels + Item.n_leased < Item.max_labels, Item.id.not_in(_MINE)
).order_by(Item.priority.desc(), Item.created_at, Item.id).limit(1)
_NEXT_PG = _NEXT.with_for_update(skip_locked=True)
_LEASE_ONE = update(Item).where(Item.id == bindparam("item")).values(n_leased=Item.n_leased + 1)
_A_NAMES = [c.name for c in Assignment.__table__.c]
_I_NAMES = [c.name for c in Item.__table__.c]
_ASSIGNMENT = select(*[Assignment.__table__.c[k].label(f"a_{k}") for k in _A_NAMES],
                     *[Item.__table__.c[k].label(f"i_{k}") for k in _I_NAMES]).join_from(
    Assignment.__table__, Item.__table__, Item.__table__.c.id == Assignment.__table__.c.item_id).where(
    Assignment.__table__.c.id == bindparam("aid"))
_SESSION_USER = select(LoginSession.csrf, LoginSession.expires_at, User.id, User.name, User.role, User.active,
                       User.n_done, User.created_at).join(User, User.id == LoginSession.user_id).where(
    LoginSession.id == bindparam("sid"))


class _WriteLock:
    """One SQLite writer at a time: a thread lock, then ``flock`` on a lock file beside the DB (other processes)."""

    def __init__(self, path: str | None, timeout_s: float = 30.0):
        self.path, self.thread, self.fd, self.timeout_s = path, threading.Lock(), -1, timeout_s

    def acquire(self) -> None:
        """Wait up to ``timeout_s`` (as SQLite's busy timeout did), then refuse rather than hang."""
        deadline = time.monotonic() + self.timeout_s
        if not self.thread.acquire(timeout=self.timeout_s):
            raise OperationalError("BEGIN IMMEDIATE", None, TimeoutError("the labeling DB stayed locked"))
        try:
            if self.path is not None:
                if self.fd < 0:
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                while True:  # polled every 0.5 ms: a waiter starts within that of the holder's COMMIT
                    try:
                        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise OperationalError("BEGIN IMMEDIATE", None,
                                                   TimeoutError("the labeling DB stayed locked")) from None
                        time.sleep(0.0005)
        except BaseException:
            self.thread.release()
            raise

    def release(self) -> None:
        try:
            if self.path is not None and self.fd >= 0:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.thread.release()


class _LockingConnection(sqlite3.Connection):
    """Holds the write lock from its BEGIN IMMEDIATE until its COMMIT or ROLLBACK has run (not before: SQLAlchemy's
    commit/rollback events fire ahead of the DBAPI call)."""
    wlock: _WriteLock | None = None
    held = False

    def take(self) -> None:
        if self.wlock is not None and not self.held:
            self.wlock.acquire()
            self.held = True

    def drop(self) -> None:
        if self.held:
            self.held = False
            self.wlock.release()  # type: ignore[union-attr]

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.drop()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.drop()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.drop()


def _sqlite_events(engine: Any, begin: str, lock: _WriteLock | None) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        if lock is not None:
            dbapi_conn.wlock = lock

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        dbapi_conn = conn.connection.dbapi_connection
        if lock is not None:
            dbapi_conn.take()
        try:
            conn.exec_driver_sql(begin)
        except BaseException:
            if lock is not None:
                dbapi_conn.drop()
            raise


def _lease(a: Assignment) -> Lease:
    return Lease(a.id, a.item_id, a.kind, a.swapped, _aware(a.expires_at))


__all__ = ["Assignment", "Finish", "IntegrityError", "Item", "LabelStore", "Lease", "LoginSession", "Outbox",
           "RANK", "ROLES", "StoreError", "User", "share"]
