"""Model registry: Delta table ``adapters`` (append-only events; latest row per adapter wins) + ``models.registry``.

The Kafka event is keyed by adapter_id on a compacted topic, so the topic alone also holds every adapter's latest
state. Publishing is optional (``publish=False``) so training works with no broker.
"""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from schemas.registry import AdapterManifest, RegistryEvent

if TYPE_CHECKING:
    from schemas.settings import Settings

ADAPTERS = "adapters"


def registry_row(manifest: AdapterManifest, event: Literal["trained", "gated"]) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    gate = manifest.gate
    status = "trained" if gate is None else ("gate_passed" if gate.get("passed") else "gate_failed")
    return {
        "adapter_id": manifest.adapter_id, "name": manifest.name, "version": manifest.version, "kind": manifest.kind,
        "event": event, "status": status, "base_model": manifest.base_model, "path": manifest.path,
        "dataset_table": manifest.dataset.get("table"), "dataset_version": manifest.dataset.get("delta_version"),
        "dataset_hash": manifest.dataset.get("content_hash"), "seed": manifest.seed,
        "metrics_json": json.dumps(manifest.metrics, sort_keys=True, default=str),
        "gate_json": json.dumps(gate, sort_keys=True, default=str) if gate is not None else None,
        "manifest_json": manifest.model_dump_json(), "date": now.strftime("%Y-%m-%d"), "created_at": now,
    }


def write_row(settings: "Settings", row: dict[str, Any]) -> int:
    """Append one row to Delta ``adapters``; returns the table version written."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from schemas.tables import TABLES

    schema, parts = TABLES[ADAPTERS]
    uri = settings.table_uri(ADAPTERS)
    write_deltalake(uri, pa.Table.from_pylist([row], schema=schema), mode="append", partition_by=parts,
                    storage_options=settings.lake_storage_options or None)
    return int(DeltaTable(uri, storage_options=settings.lake_storage_options or None).version())


def registry_event(row: dict[str, Any]) -> RegistryEvent:
    """The ``models.registry`` event for an ``adapters`` row: the row, with the manifest and gate as objects."""
    fields = {k: v for k, v in row.items() if not k.endswith("_json")}
    return RegistryEvent(**fields, manifest=AdapterManifest.model_validate_json(row["manifest_json"]),
                         gate=json.loads(row["gate_json"]) if row.get("gate_json") else None)


async def publish_event(settings: "Settings", row: dict[str, Any]) -> tuple[int, int]:
    """Send the registry event (key = adapter_id); returns (partition, offset)."""
    from connectors.kafka import producer
    from schemas.topics import REGISTRY

    async with producer(settings) as prod:
        meta = await prod.send_and_wait(settings.topic(REGISTRY), key=row["adapter_id"].encode(),
                                        value=registry_event(row).model_dump_json().encode())
    return meta.partition, meta.offset


def register(settings: "Settings", manifest: AdapterManifest, event: Literal["trained", "gated"], *,
             publish: bool) -> dict[str, Any]:
    """Write the Delta row and (when asked) publish the event. A broker failure is reported, not swallowed."""
    row = registry_row(manifest, event)
    out: dict[str, Any] = {"adapter_id": row["adapter_id"], "status": row["status"],
                           "table_version": write_row(settings, row)}
    if publish:
        try:
            out["partition"], out["offset"] = asyncio.run(asyncio.wait_for(publish_event(settings, row), 60))
        except Exception as exc:  # the Delta row is the record of truth; say the event did not go out
            raise ValueError(f"registry row written, but publishing to {settings.topic('models.registry')} at "
                             f"{settings.kafka_bootstrap} failed ({exc.__class__.__name__}: {exc}); start the "
                             f"broker or rerun with --no-publish") from None
    return out


def list_adapters(settings: "Settings") -> list[dict[str, Any]]:
    """Latest row per adapter_id, newest first."""
    from trainers.dataset import read_snapshot

    try:
        rows, _ = read_snapshot(settings.table_uri(ADAPTERS), None, settings.lake_storage_options or None)
    except ValueError:
        return []
    latest: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["created_at"]):
        latest[r["adapter_id"]] = r
    return sorted(latest.values(), key=lambda r: r["created_at"], reverse=True)


def show_adapter(settings: "Settings", adapter_id: str) -> dict[str, Any]:
    for r in list_adapters(settings):
        if r["adapter_id"] == adapter_id or r["name"] == adapter_id:
            return r
    raise ValueError(f"no adapter {adapter_id!r} in the registry; see `alignloop models list`")


def mark_promoted(settings: "Settings", adapter_id: str, *, agent_id: str, rollout_id: str,
                  previous_policy_id: str, publish: bool = True) -> dict[str, Any]:
    """Record a promotion (issue 14): a new ``adapters`` row (event and status ``promoted``, the latest row's
    fields otherwise) and its ``models.registry`` event. Which agent, which rollout and the policy it replaced
    (kept in the flag for an instant rollback) go into ``metrics_json`` under ``promotion``."""
    latest = show_adapter(settings, adapter_id)
    metrics = json.loads(latest["metrics_json"]) if latest.get("metrics_json") else {}
    metrics["promotion"] = {"agent_id": agent_id, "rollout_id": rollout_id, "previous_policy_id": previous_policy_id}
    now = datetime.now(timezone.utc)
    row = {**latest, "event": "promoted", "status": "promoted", "metrics_json": json.dumps(metrics, sort_keys=True),
           "date": now.strftime("%Y-%m-%d"), "created_at": now}
    out: dict[str, Any] = {"adapter_id": adapter_id, "status": "promoted", "table_version": write_row(settings, row)}
    if publish:
        try:
            out["partition"], out["offset"] = asyncio.run(asyncio.wait_for(publish_event(settings, row), 60))
        except Exception as exc:  # the Delta row is the record of the promotion; the event only announces it
            logging.getLogger(__name__).warning("promotion of %s recorded, event not published: %s", adapter_id, exc)
    return out
