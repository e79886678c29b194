"""`alignloop erase`: forget a conversation (or every conversation of an agent user) provably.

Plan (read only; ``--dry-run`` stops here): the conversation's pseudonymous key, its rows in every Delta table (live
and replay namespaces), the datasets and adapters trained on them (lineage), its records on the broker. Then, in
this order: delete + vacuum + log cleanup per table (``connectors.delta_erase``), remove its rows from the dataset
files kept next to each adapter, mark those adapters ``trained_on_erased_data`` in the registry, delete or schedule
its entries in the drift monitors' state (``streams.drift.erase``), its broker records
(``connectors.kafka_erase``), optionally request retraining, and append one audit entry. The
report (printed, and written to ``<home>/erasures/<id>.json``) names only keys, never the id or any text.

An agent user is a scrubber pseudonym (``<EMAIL_1a2b3c4d>``, as the scrubbed text shows it): it is resolved to the
conversations whose rows contain it (a read; nothing is written), and each is erased whole, so the pseudonym is
never written anywhere either (the audit subject is its keyed hash).
"""
from __future__ import annotations

import asyncio
import getpass
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.delta_erase import erase_table, match_column, open_table
from connectors.erasure_key import ErasureKeys, erasure_keys
from schemas.tables import CONV_KEY, DATASET_CONVERSATIONS_TABLE
from trainers.lineage import conversation_rows, conversation_tables, datasets_of

if TYPE_CHECKING:
    from schemas.settings import Settings


@dataclass
class ErasurePlan:
    subject: str                                   # conv_key:<key> or user_key:<key> (the audit subject)
    kind: str                                      # conversation | agent_user
    conv_keys: list[str]
    conversation_ids: list[str] = field(repr=False)  # in memory only: the older tables' fallback and broker search
    trace_ids: list[str] = field(repr=False)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {uri, column, rows}
    datasets: list[dict[str, Any]] = field(default_factory=list)
    adapters: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t["rows"] for t in self.tables.values())


def _so(settings: "Settings") -> dict[str, str] | None:
    return settings.lake_storage_options or None


def _string_hits(t: pa.Table, needle: str) -> pa.Array:
    """Rows of ``t`` with ``needle`` in any string (or list-of-string) column."""
    hit = pa.array([False] * t.num_rows)
    for name in t.column_names:
        col = t.column(name).combine_chunks()
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            hit = pc.or_(hit, pc.fill_null(pc.match_substring(col, needle), False))
        elif pa.types.is_list(col.type) and pa.types.is_string(col.type.value_type):
            flat = pc.fill_null(pc.match_substring(pc.list_flatten(col), needle), False)
            parents = pc.filter(pc.list_parent_indices(col), flat)
            mask = pc.is_in(pa.array(range(t.num_rows)), value_set=pc.unique(parents))
            hit = pc.or_(hit, mask)
    return hit


def resolve_agent_user(settings: "Settings", pseudonym: str) -> tuple[set[str], set[str]]:
    """(conv_keys, conversation_ids) of every conversation with a row whose text contains ``pseudonym``."""
    keys, ids = set(), set()
    for _, uri in conversation_tables(settings):
        dt = open_table(uri, _so(settings))
        if dt is None or match_column(dt) is None or uri.endswith(DATASET_CONVERSATIONS_TABLE):
            continue
        t = dt.to_pyarrow_table()
        found = t.filter(_string_hits(t.drop_columns([c for c in (CONV_KEY,) if c in t.column_names]), pseudonym))
        if CONV_KEY in found.column_names:
            keys.update(k for k in found.column(CONV_KEY).to_pylist() if k)
        if "conversation_id" in found.column_names:
            ids.update(c for c in found.column("conversation_id").to_pylist() if c)
    return keys, ids


def plan(settings: "Settings", *, conversation: str | None = None, agent_user: str | None = None,
         keys: ErasureKeys | None = None) -> ErasurePlan:
    """What an erasure would remove; a ValueError (one line) when there is nothing to erase."""
    if (conversation is None) == (agent_user is None):
        raise ValueError("name exactly one of --conversation C or --agent-user PSEUDONYM")
    keys = keys or erasure_keys(settings)
    if conversation is not None:
        if not conversation.strip():
            raise ValueError("--conversation must not be empty")
        conv_keys, ids = {keys.conv(conversation)}, {conversation}
        subject, kind = f"conv_key:{keys.conv(conversation)}", "conversation"
    else:
        if len(agent_user.strip()) < 6:
            raise ValueError("--agent-user must be a scrubber pseudonym such as <EMAIL_1a2b3c4d> (6+ characters)")
        conv_keys, ids = resolve_agent_user(settings, agent_user)
        conv_keys |= {keys.conv(c) for c in ids}
        subject, kind = f"user_key:{keys.user(agent_user)}", "agent_user"
    tables: dict[str, dict[str, Any]] = {}
    trace_ids: set[str] = set()
    merged_rows: dict[str, dict[str, Any]] = {}
    id_of = {keys.conv(c): c for c in ids}
    for k in sorted(conv_keys):
        found = conversation_rows(settings, k, id_of.get(k))
        for name, info in found.items():
            t = tables.setdefault(name, {"uri": info["uri"], "column": info["column"], "rows": 0})
            t["rows"] += len(info["rows"])
            trace_ids.update(r["trace_id"] for r in info["rows"] if r.get("trace_id"))
            merged_rows.setdefault(name, {"rows": []})["rows"].extend(info["rows"])
    if not tables:
        what = "conversation" if kind == "conversation" else "agent user"
        raise ValueError(f"no rows of that {what} in any table under {settings.lake} (live or replay); nothing "
                         f"erased — check the id (and that the lake and erasure key are this deployment's)")
    from trainers.registry import list_adapters

    adapters = {r["adapter_id"]: r for r in list_adapters(settings)}
    datasets = datasets_of(merged_rows, adapters)
    affected = sorted({a for d in datasets for a in d["adapters"]})
    return ErasurePlan(subject=subject, kind=kind, conv_keys=sorted(conv_keys), conversation_ids=sorted(ids),
                       trace_ids=sorted(trace_ids), tables=tables, datasets=datasets,
                       adapters=[adapters[a] for a in affected if a in adapters])


def scrub_dataset_files(adapter_dir: str, conv_keys: set[str], keys: ErasureKeys) -> int:
    """Drop the erased conversations' rows from the dataset JSONL kept next to an adapter; returns rows dropped."""
    root = Path(adapter_dir) / "dataset"
    dropped = 0
    for path in sorted(root.glob("*.jsonl")) if root.is_dir() else []:
        kept, lines = [], path.read_text().splitlines()
        for line in lines:
            if line.strip() and keys.conv(json.loads(line).get("conversation_id")) in conv_keys:
                continue
            kept.append(line)
        if len(kept) != len(lines):
            dropped += len(lines) - len(kept)
            tmp = path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(f"{x}\n" for x in kept))
            os.replace(tmp, path)
    kf = root / "conversation_keys.json"
    if kf.is_file():
        data = json.loads(kf.read_text())
        kf.write_text(json.dumps({s: {k: n for k, n in part.items() if k not in conv_keys}
                                  for s, part in data.items()}, sort_keys=True) + "\n")
    return dropped


def labeling_db_url(settings: "Settings") -> str | None:
    """The labeling UI's database when there is one (``ui_db_url``, or ``<home>/ui/labeling.db`` if it exists)."""
    if settings.ui_db_url:
        return settings.ui_db_url
    path = Path(settings.home) / "ui" / "labeling.db"
    return f"sqlite:///{path}" if path.is_file() else None


def erase_labeling(url: str | None, trace_ids: list[str]) -> dict[str, Any] | None:
    """Delete the traces' labeling items (the human-queue record with its text), their assignments (answers,
    corrections) and outbox records naming them; then rewrite the database so the deleted rows' bytes are gone
    (SQLite: VACUUM and a truncating WAL checkpoint; PostgreSQL: VACUUM FULL of the three tables, which locks
    them briefly). None when there is no labeling database."""
    if url is None or not trace_ids:
        return None
    from sqlalchemy import String, cast, create_engine, delete, or_, select

    from connectors.labeling_db import Assignment, Item, Outbox

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            ids = list(conn.scalars(select(Item.id).where(Item.trace_id.in_(trace_ids))))
            assignments = conn.execute(delete(Assignment).where(Assignment.item_id.in_(ids))).rowcount if ids else 0
            items = conn.execute(delete(Item).where(Item.id.in_(ids))).rowcount if ids else 0
            names = or_(*(cast(Outbox.payload, String).contains(t) for t in trace_ids),
                        *(Outbox.key.contains(t) for t in trace_ids))
            outbox = conn.execute(delete(Outbox).where(names)).rowcount
        if items or assignments or outbox:
            if engine.dialect.name == "sqlite":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("VACUUM")
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            elif engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("VACUUM FULL items, assignments, outbox")
    finally:
        engine.dispose()
    return {"items": items, "assignments": assignments, "outbox": outbox}


def _mark_adapters(settings: "Settings", p: ErasurePlan, erasure_id: str) -> list[dict[str, Any]]:
    from trainers.registry import publish_event, write_row

    out = []
    now = datetime.now(timezone.utc)
    for latest in p.adapters:
        row = dict(latest, event="erasure", status="trained_on_erased_data", created_at=now,
                   date=now.strftime("%Y-%m-%d"))
        metrics = json.loads(row.get("metrics_json") or "{}")
        metrics["erasures"] = [*metrics.get("erasures", []), erasure_id]
        row["metrics_json"] = json.dumps(metrics, sort_keys=True, default=str)
        mark: dict[str, Any] = {"adapter_id": row["adapter_id"], "previous_status": latest["status"],
                                "registry_version": write_row(settings, row)}
        try:
            mark["event"] = list(asyncio.run(asyncio.wait_for(publish_event(settings, row), 60)))
        except Exception as exc:  # the Delta row is the record of truth; say the event did not go out
            mark["event_error"] = f"{exc.__class__.__name__}: {exc}"
        out.append(mark)
    return out


def _retrain(settings: "Settings", p: ErasurePlan, erasure_id: str, versions: dict[str, int]) -> list[dict[str, Any]]:
    """One train request per affected adapter, pinned to its dataset table's first version without the rows."""
    from connectors.kafka import producer
    from schemas.drift import TrainRequest
    from schemas.topics import TRAIN_REQUESTS

    reqs = []
    for a in p.adapters:
        table = a.get("dataset_table") or "sft_examples"
        over: dict[str, Any] = {"adapter_name": a["name"]}
        if table in versions:
            over["data.version"] = versions[table]
        reqs.append(TrainRequest(kind=a["kind"], overrides=over,
                                 reason=f"erasure {erasure_id}: retrain {a['adapter_id']} without the erased rows"))

    async def send() -> None:
        async with producer(settings) as prod:
            for r in reqs:
                await prod.send_and_wait(settings.topic(TRAIN_REQUESTS), key=r.request_id.encode(), value=r.to_json())
    asyncio.run(asyncio.wait_for(send(), 60))
    return [{"request_id": r.request_id, "kind": r.kind, "overrides": r.overrides} for r in reqs]


def _pending_dir(settings: "Settings") -> Path:
    return Path(settings.home) / "erasures"


def _save_pending(settings: "Settings", erasure_id: str, p: ErasurePlan) -> Path:
    """The plan, kept (mode 0600) until the erasure's audit entry is written, so an interrupted erasure can be
    finished: its rows are gone from the tables by then, and a new plan would find nothing."""
    path = _pending_dir(settings) / f"pending-{erasure_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"erasure_id": erasure_id, **asdict(p)}, fh, default=str)
    return path


def pending(settings: "Settings") -> list[tuple[str, ErasurePlan]]:
    """Interrupted erasures (id, plan), oldest first."""
    out = []
    for path in sorted(_pending_dir(settings).glob("pending-*.json"), key=lambda q: q.stat().st_mtime):
        data = json.loads(path.read_text())
        out.append((data.pop("erasure_id"), ErasurePlan(**data)))
    return out


def execute(settings: "Settings", p: ErasurePlan, *, retrain: bool = False, truncate_topics: bool = True,
            kafka_wait_s: float = 10.0, keys: ErasureKeys | None = None, erasure_id: str | None = None
            ) -> dict[str, Any]:
    """Carry out a plan; returns the erasure report (also written to ``<home>/erasures/<id>.json``). Every step is
    idempotent: an interrupted erasure is finished by executing its saved plan again (``pending``)."""
    from connectors.kafka_erase import erase_records

    keys = keys or erasure_keys(settings)
    erasure_id = erasure_id or uuid.uuid4().hex[:12]
    marker = _save_pending(settings, erasure_id, p)
    started = datetime.now(timezone.utc)
    tables, versions = {}, {}
    for name, t in sorted(p.tables.items()):
        values = p.conv_keys if t["column"] == CONV_KEY else p.conversation_ids
        res = erase_table(t["uri"], t["column"], values, storage_options=_so(settings))
        tables[name] = {k: v for k, v in res.as_dict().items() if k != "uri"}
        versions[name] = res.erasure_version
    dataset_rows = {a["adapter_id"]: scrub_dataset_files(a["path"], set(p.conv_keys), keys)
                    for a in p.adapters if a.get("path")}
    marks = _mark_adapters(settings, p, erasure_id)
    from streams.drift.erase import erase_drift_state

    drift = asyncio.run(erase_drift_state(settings, p.trace_ids, p.conversation_ids, erasure_id=erasure_id,
                                          truncate=truncate_topics, wait_s=kafka_wait_s))
    needles = [json.dumps(x).encode() for x in [*p.conversation_ids, *p.trace_ids]]
    kafka = [h.as_dict() for h in asyncio.run(erase_records(settings, needles, truncate=truncate_topics,
                                                            wait_s=kafka_wait_s))]
    labeling = erase_labeling(labeling_db_url(settings), p.trace_ids)
    pending = [h["expires_by"] for h in kafka if h["action"] == "pending" and h["expires_by"]]
    forever = [f"{h['topic']}:{h['partition']}" for h in kafka if h["action"] in ("pending", "leak", "compacted_kept")
               and not h["expires_by"]]
    report: dict[str, Any] = {
        "erasure_id": erasure_id, "subject": p.subject, "kind": p.kind, "conv_keys": p.conv_keys,
        "started_at": started.isoformat(), "finished_at": None, "tables": tables,
        "rows_deleted": sum(t["rows_deleted"] for t in tables.values()),
        "bytes_rewritten": sum(t["bytes_rewritten"] for t in tables.values()),
        "datasets": p.datasets, "dataset_file_rows_dropped": dataset_rows, "adapters_marked": marks,
        "kafka": kafka, "kafka_last_copy_expires_by": max(pending) if pending else None,
        "kafka_kept_forever": forever, "drift_state": drift, "labeling_db": labeling,
        "time_travel": {n: f"versions before {v} are gone" for n, v in versions.items()},
        "retrain_requests": _retrain(settings, p, erasure_id, versions) if retrain and p.adapters else [],
    }
    report["finished_at"] = datetime.now(timezone.utc).isoformat()
    from connectors.audit import append_sync

    entry = append_sync(settings, actor=f"cli:{getpass.getuser()}", action=f"erase.{p.kind}", subject=p.subject,
                        details={"erasure_id": erasure_id, "conversations": len(p.conv_keys),
                                 "rows_deleted": report["rows_deleted"],
                                 "tables": {n: t["rows_deleted"] for n, t in tables.items()},
                                 "datasets": [d["dataset_hash"] for d in p.datasets],
                                 "adapters": [m["adapter_id"] for m in marks],
                                 "kafka": {a: sum(h["action"] == a for h in kafka) for a in ("deleted", "pending")},
                                 "kafka_last_copy_expires_by": report["kafka_last_copy_expires_by"],
                                 "drift_state": {k: drift[k] for k in ("entries_removed", "remaining")},
                                 "labeling_db": labeling})
    report["audit_seq"] = entry.seq
    out = Path(settings.home) / "erasures" / f"{erasure_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    marker.unlink()  # it names the conversation ids (the broker search needs them): gone with the erasure
    report["report_path"] = str(out)
    return report
