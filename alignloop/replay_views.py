"""``alignloop replay diff`` and ``alignloop replay curate``: reading a finished replay against the live tables.

Both need a finished replay (its manifest says ``complete``); curation also needs the configs the replay ran
with, unchanged (their hashes are in the manifest), since it judges candidates with the same fast judges.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from alignloop.errors import UserError

if TYPE_CHECKING:
    from schemas.settings import Settings

DIFF_COLUMNS = ["trace_id", "agent_id", "policy_id", "metadata_json", "outcome", "verdicts_json", "processed_at"]


def finished_manifest(settings: "Settings", name: str) -> dict[str, Any]:
    from connectors.replay_store import check_name, list_replays, read_manifest

    try:
        check_name(name)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    manifest = read_manifest(settings, name)
    if manifest is None:
        known = ", ".join(list_replays(settings)) or "none yet"
        raise UserError(f"no replay named {name!r} in {settings.lake} (replays: {known}); run alignloop replay "
                        f"--into {name} first")
    if manifest.get("status") != "complete":
        raise UserError(f"replay {name} has not finished; re-run its command to resume it: {manifest.get('command')}")
    return manifest


def _rows(uri: str, settings: "Settings", columns: list[str] | None, trace_ids: list[str]) -> list[dict[str, Any]]:
    from connectors.delta_sink import read_table

    t = read_table(uri, columns=columns, storage_options=settings.lake_storage_options or None)
    if not t.num_columns:
        return []
    return t.filter(pc.is_in(t.column("trace_id"), value_set=pa.array(trace_ids, pa.string()))).to_pylist()


def diff_replay(settings: "Settings", name: str, *, examples: int = 5) -> dict[str, Any]:
    """The replay's verdicts against the live ``traces`` (joined on trace_id), and the curated rows it would
    add or drop against the live ``sft_examples`` and rule-made ``preferences`` for the same traces."""
    from connectors.replay_store import replay_table_uri
    from schemas.tables import PREFERENCES_TABLE, SFT_EXAMPLES_TABLE, TRACES_TABLE
    from streams.curation.rules import sft_row
    from streams.replay.diff import curated_changes, diff_verdicts
    from streams.replay.rows import judged_from_row

    manifest = finished_manifest(settings, name)
    replay = _all_rows(replay_table_uri(settings.lake, name, TRACES_TABLE), settings)
    ids = sorted({r["trace_id"] for r in replay})
    live = _rows(settings.table_uri(TRACES_TABLE), settings, DIFF_COLUMNS, ids)
    out = diff_verdicts(live, replay, examples=examples)
    out["name"], out["replay_content_hash"] = name, manifest.get("content_hash")
    live_sft = {r["example_id"] for r in _rows(settings.table_uri(SFT_EXAMPLES_TABLE), settings,
                                                ["example_id", "trace_id"], ids)}
    curated = manifest.get("curated")
    if curated:
        new_sft = {r["example_id"] for r in _all_rows(replay_table_uri(settings.lake, name, SFT_EXAMPLES_TABLE),
                                                       settings, ["example_id"])}
    else:  # not curated yet: the same rule over the replayed verdicts
        new_sft = {r["example_id"] for r in (sft_row(judged_from_row(x)) for x in replay) if r is not None}
    out["curated"] = {"sft_examples": curated_changes(live_sft, new_sft)}
    live_prefs = {r["pref_id"] for r in _rows(settings.table_uri(PREFERENCES_TABLE), settings,
                                               ["pref_id", "trace_id", "source"], ids) if r["source"] == "rule"}
    if curated:
        new_prefs = {r["pref_id"] for r in _all_rows(replay_table_uri(settings.lake, name, PREFERENCES_TABLE),
                                                      settings, ["pref_id"])}
        out["curated"]["preferences"] = curated_changes(live_prefs, new_prefs)
    else:
        out["curated"]["preferences"] = {"note": f"run alignloop replay curate {name} to compare preference pairs"}
    return out


def _all_rows(uri: str, settings: "Settings", columns: list[str] | None = None) -> list[dict[str, Any]]:
    from connectors.delta_sink import read_table

    t = read_table(uri, columns=columns, storage_options=settings.lake_storage_options or None)
    return t.to_pylist() if t.num_columns else []


def curate(settings: "Settings", name: str, progress: Any = None) -> dict[str, Any]:
    """Land the replay's curated rows in its namespace; records the new table versions in the manifest."""
    from deltalake import DeltaTable

    from alignloop.configs import load_configs
    from alignloop.replay import config_hashes
    from connectors.replay_store import replay_table_uri, write_manifest
    from schemas.tables import PREFERENCES_TABLE, SFT_EXAMPLES_TABLE
    from streams.replay.curate import curate_replay

    manifest = finished_manifest(settings, name)
    paths = manifest["request"]["configs"]
    s = settings.model_copy(update={"policy_path": paths["policy"], "judges_config": paths["judges"],
                                    "scrub_config": paths["scrub"]})
    if config_hashes(s) != manifest["request"]["config_hashes"]:
        raise UserError(f"the configs replay {name} ran with have changed since ({', '.join(paths.values())}); "
                        "curate it with the same configs, or replay again into a new --into")
    landed = curate_replay(s, load_configs(s), name, on_batch=progress)
    versions = {}
    for table in (SFT_EXAMPLES_TABLE, PREFERENCES_TABLE):
        try:
            versions[table] = DeltaTable(replay_table_uri(s.lake, name, table),
                                         storage_options=s.lake_storage_options or None).version()
        except Exception:  # nothing curated into this table (no row ever written)
            versions[table] = None
    manifest["curated"] = {"versions": versions, "landed_last_run": landed}
    write_manifest(s, name, manifest)
    return manifest["curated"]
