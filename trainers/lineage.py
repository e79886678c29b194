"""Lineage both ways: adapter -> dataset -> table versions, offset ranges, judge/scrubber/policy versions, rollouts;
conversation -> every table row, dataset and adapter that includes it.

The join key is the pseudonymous ``conv_key`` (``connectors.erasure_key``): rows carry it, and the trainer records
every dataset's keys in the Delta table ``dataset_conversations`` (``record_dataset``). A conversation lookup is
one filtered column scan per table (Parquet projection + predicate), so it stays well under a second on a million
rows (``alignloop bench erasure`` measures it).
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.delta_erase import match_column, matching, open_table
from schemas.tables import (CONV_KEY, DATASET_CONVERSATIONS_TABLE, LABELS_TABLE, PREFERENCES_TABLE,
                            SFT_EXAMPLES_TABLE, TABLES, TRACES_TABLE)

if TYPE_CHECKING:
    from schemas.settings import Settings
    from trainers.dataset import DatasetBundle

LIVE_TABLES = (TRACES_TABLE, SFT_EXAMPLES_TABLE, PREFERENCES_TABLE, LABELS_TABLE, DATASET_CONVERSATIONS_TABLE)
ROLLOUTS_TABLE = "rollouts"  # written by the rollout controller (another area); read when present
REPLAY_DIR = "replay"
_ID_COLUMNS = ("trace_id", "example_id", "pref_id", "label_id", "dataset_hash", "adapter_id", "split", "rows",
               "src_topic", "src_partition", "src_offset", "date", "offset", "topic", "partition")


def _so(settings: "Settings") -> dict[str, str] | None:
    return settings.lake_storage_options or None


def replay_table_uris(settings: "Settings") -> list[str]:
    """Every Delta table of every replay namespace (``<lake>/replay/<name>/<table>``)."""
    try:
        from connectors.replay_store import replay_tables  # type: ignore[import-not-found]
    except ImportError:  # the replay area is not merged: list the namespaces ourselves
        replay_tables = None
    if replay_tables is not None:
        return list(replay_tables(settings))
    import pyarrow.fs as pafs

    lake = settings.lake.rstrip("/")
    fs, root = pafs.FileSystem.from_uri(lake if "://" in lake else str(Path(lake).resolve()))
    out: list[str] = []
    base = f"{root}/{REPLAY_DIR}"
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return out
    for ns in sorted(fs.get_file_info(pafs.FileSelector(base)), key=lambda i: i.path):
        if ns.type != pafs.FileType.Directory:
            continue
        for table in sorted(fs.get_file_info(pafs.FileSelector(ns.path)), key=lambda i: i.path):
            if fs.get_file_info(f"{table.path}/_delta_log").type == pafs.FileType.Directory:
                out.append(f"{settings.lake.rstrip('/')}/{REPLAY_DIR}/{ns.base_name}/{table.base_name}")
    return out


def conversation_tables(settings: "Settings") -> list[tuple[str, str]]:
    """(name, uri) of every table that may hold a conversation's rows: live ones, then replay namespaces."""
    live = [(t, settings.table_uri(t)) for t in LIVE_TABLES]
    root = settings.lake.rstrip("/") + "/"
    return live + [(uri[len(root):] if uri.startswith(root) else uri, uri) for uri in replay_table_uris(settings)]


def record_dataset(settings: "Settings", bundle: "DatasetBundle", adapter_id: str | None) -> int:
    """Append the dataset's conversation keys (one row per split and key) to ``dataset_conversations``."""
    man, now = bundle.manifest, datetime.now(timezone.utc)
    rows = [{"dataset_hash": man["content_hash"], "dataset_table": man["table"],
             "dataset_version": man["delta_version"], "adapter_id": adapter_id, "kind": man["kind"], "split": split, CONV_KEY: key, "rows": n, "created_at": now}
            for split, keys in sorted(bundle.conversation_keys.items()) for key, n in sorted(keys.items())]
    if not rows:
        return 0
    from deltalake import write_deltalake

    schema, parts = TABLES[DATASET_CONVERSATIONS_TABLE]
    write_deltalake(settings.table_uri(DATASET_CONVERSATIONS_TABLE), pa.Table.from_pylist(rows, schema=schema),
                    mode="append", partition_by=parts or None, storage_options=_so(settings))
    return len(rows)


def _plain(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def conversation_rows(settings: "Settings", conv_key: str, conversation_id: str | None = None
                      ) -> dict[str, dict[str, Any]]:
    """{table: {"column", "rows": [identifying columns of each row], "version", "seconds"}} for every table with
    the conversation's rows (tables without conv_key are matched on ``conversation_id`` when it is given)."""
    out: dict[str, dict[str, Any]] = {}
    for name, uri in conversation_tables(settings):
        t0 = time.perf_counter()
        dt = open_table(uri, _so(settings))
        if dt is None:
            continue
        column = match_column(dt)
        value = conv_key if column == CONV_KEY else conversation_id
        if column is None or value is None:
            continue
        found = matching(dt, column, [value], [column, *_ID_COLUMNS])
        if found.num_rows:
            rows = [{k: _plain(v) for k, v in r.items() if k != column} for r in found.to_pylist()]
            out[name] = {"uri": uri, "column": column, "version": dt.version(), "rows": rows,
                         "seconds": round(time.perf_counter() - t0, 4)}
    return out


def _latest_adapters(settings: "Settings") -> dict[str, dict[str, Any]]:
    from trainers.registry import list_adapters

    return {r["adapter_id"]: r for r in list_adapters(settings)}


def rollouts_of(settings: "Settings", adapter_ids: set[str]) -> list[dict[str, Any]]:
    """Rows of the ``rollouts`` table (when present) that name one of ``adapter_ids`` in any string column."""
    dt = open_table(settings.table_uri(ROLLOUTS_TABLE), _so(settings))
    if dt is None or not adapter_ids:
        return []
    t = dt.to_pyarrow_table()
    hit = None
    for name in t.column_names:
        col = t.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            m = pc.fill_null(pc.is_in(col, pa.array(sorted(adapter_ids))), False)
            hit = m if hit is None else pc.or_(hit, m)
    if hit is None:
        return []
    return [{k: _plain(v) for k, v in r.items()} for r in t.filter(hit).to_pylist()]


def datasets_of(rows: dict[str, dict[str, Any]], adapters: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The datasets (and their adapters) among a conversation's ``dataset_conversations`` rows."""
    seen: dict[str, dict[str, Any]] = {}
    for r in rows.get(DATASET_CONVERSATIONS_TABLE, {}).get("rows", []):
        d = seen.setdefault(r["dataset_hash"], {"dataset_hash": r["dataset_hash"], "adapters": [], "splits": {}})
        d["splits"][r["split"]] = d["splits"].get(r["split"], 0) + int(r.get("rows") or 0)
        if r.get("adapter_id") and r["adapter_id"] not in d["adapters"]:
            d["adapters"].append(r["adapter_id"])
    for d in seen.values():
        for a in d["adapters"]:
            reg = adapters.get(a)
            if reg is not None:
                d.setdefault("table", reg.get("dataset_table"))
                d.setdefault("version", reg.get("dataset_version"))
    return sorted(seen.values(), key=lambda d: d["dataset_hash"])


def lineage_conversation(settings: "Settings", conv_key: str, conversation_id: str | None = None
                         ) -> dict[str, Any]:
    """Every table row, dataset and adapter that includes the conversation, with per-table timings."""
    t0 = time.perf_counter()
    rows = conversation_rows(settings, conv_key, conversation_id)
    adapters = _latest_adapters(settings)
    datasets = datasets_of(rows, adapters)
    ids = sorted({a for d in datasets for a in d["adapters"]})
    return {"conv_key": conv_key, "tables": rows, "datasets": datasets,
            "adapters": [{"adapter_id": a, "status": adapters.get(a, {}).get("status"),
                          "path": adapters.get(a, {}).get("path")} for a in ids],
            "rollouts": rollouts_of(settings, set(ids)), "seconds": round(time.perf_counter() - t0, 4)}


def _dataset_keys(settings: "Settings", dataset_hash: str) -> list[str]:
    dt = open_table(settings.table_uri(DATASET_CONVERSATIONS_TABLE), _so(settings))
    if dt is None:
        return []
    t = matching(dt, "dataset_hash", [dataset_hash], [CONV_KEY])  # not a dataset filter: erased files hold string_view
    return sorted(set(t.column(CONV_KEY).to_pylist()))


def _versions_in(settings: "Settings", table: str, version: int | None, keys: list[str]) -> dict[str, Any]:
    """Judge versions and policies of the dataset's rows at the pinned version (latest if an erasure removed it),
    and the scrubber key ids of their traces."""
    from deltalake import DeltaTable

    uri, note = settings.table_uri(table), None
    try:
        dt = DeltaTable(uri, version=version, storage_options=_so(settings))
    except Exception:  # the pinned version is gone (an erasure) or the table is: read what is left
        dt, note = open_table(uri, _so(settings)), f"version {version} is no longer readable; latest shown"
    out: dict[str, Any] = {"judge_versions": [], "policies": [], "scrubber_key_ids": [], "note": note}
    if dt is None or not keys or CONV_KEY not in {f.name for f in dt.schema().fields}:
        return out
    t = matching(dt, CONV_KEY, keys, ["judge_versions_json", "policy_id"])
    if "judge_versions_json" in t.column_names:
        out["judge_versions"] = sorted({json.dumps(json.loads(v), sort_keys=True)
                                        for v in t.column("judge_versions_json").to_pylist() if v})
    if "policy_id" in t.column_names:
        out["policies"] = sorted({p for p in t.column("policy_id").to_pylist() if p})
    traces = open_table(settings.table_uri(TRACES_TABLE), _so(settings))
    if traces is not None and CONV_KEY in {f.name for f in traces.schema().fields}:
        meta = matching(traces, CONV_KEY, keys, ["metadata_json"]).column("metadata_json").to_pylist()
        out["scrubber_key_ids"] = sorted({json.loads(m).get("pii_key_id") for m in meta if m} - {None})
    return out


def lineage_adapter(settings: "Settings", adapter_id: str) -> dict[str, Any]:
    """Tables and versions, offset ranges, judge/scrubber/policy versions, registry events and rollouts of one
    adapter (``<name>@<version>`` or a name: its latest version)."""
    from trainers.registry import show_adapter

    t0 = time.perf_counter()
    latest = show_adapter(settings, adapter_id)  # ValueError naming `alignloop models list` when unknown
    manifest = json.loads(latest["manifest_json"])
    ds = manifest.get("dataset", {})
    keys = _dataset_keys(settings, ds.get("content_hash", ""))
    from trainers.dataset import read_snapshot

    try:
        events, _ = read_snapshot(settings.table_uri("adapters"), None, _so(settings))
    except ValueError:
        events = []
    history = [{"event": r["event"], "status": r["status"], "at": _plain(r["created_at"])}
               for r in sorted(events, key=lambda r: r["created_at"]) if r["adapter_id"] == latest["adapter_id"]]
    return {
        "adapter_id": latest["adapter_id"], "kind": latest["kind"], "status": latest["status"],
        "base_model": latest["base_model"], "path": latest["path"],
        "dataset": {k: ds.get(k) for k in ("table", "uri", "delta_version", "labels_version", "content_hash",
                                            "row_count", "filters", "seed", "conversations")},
        "offset_ranges": ds.get("offset_ranges", {}), "conversation_keys": len(keys),
        "versions": _versions_in(settings, ds.get("table") or SFT_EXAMPLES_TABLE, ds.get("delta_version"), keys),
        "libraries": manifest.get("versions", {}), "gate": manifest.get("gate"), "registry_events": history,
        "rollouts": rollouts_of(settings, {latest["adapter_id"]}), "seconds": round(time.perf_counter() - t0, 4),
    }
