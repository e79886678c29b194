"""Replay namespaces in the lake: ``<lake>/replay/<name>/<table>`` plus ``<lake>/replay/<name>/manifest.json``.

A replay never writes a live table: every sink here points into its namespace, and its app transactions carry the
replay's name, so a re-run of the same replay skips what already landed (the live sink's scheme). Erasure and
lineage find every replay table through ``replay_tables(settings)``.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from connectors.delta_sink import DeltaSink, conv_keys_for
from schemas.tables import REPLAY_TABLES, TRACES_JUDGING_COLUMNS, TRACES_SCHEMA

if TYPE_CHECKING:
    from schemas.settings import Settings

REPLAY_DIR = "replay"
MANIFEST = "manifest.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str) -> str:
    """``name`` if it is a valid replay name, else ValueError naming the rule (it becomes a folder name)."""
    if not NAME_RE.match(name or ""):
        raise ValueError(f"replay name {name!r}: use letters, digits, '.', '_' or '-' (at most 100 characters)")
    return name


def replay_root(lake: str, name: str) -> str:
    return f"{lake.rstrip('/')}/{REPLAY_DIR}/{check_name(name)}"


def replay_table_uri(lake: str, name: str, table: str) -> str:
    """The URI of ``table`` in replay ``name`` under the lake root ``lake``."""
    if table not in REPLAY_TABLES:
        raise ValueError(f"a replay has no table {table!r} (known: {', '.join(sorted(REPLAY_TABLES))})")
    return f"{replay_root(lake, name)}/{table}"


def _fs(lake: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path) of a lake root: a local path or an object-store URI."""
    from pyarrow import fs

    if "://" in lake:
        return fs.FileSystem.from_uri(lake)
    from pathlib import Path

    return fs.LocalFileSystem(), str(Path(lake).resolve())


def list_replays(settings: "Settings") -> list[str]:
    """Names of every replay namespace in the lake (a folder under ``<lake>/replay``), sorted."""
    from pyarrow import fs

    filesystem, root = _fs(settings.lake)
    infos = filesystem.get_file_info(fs.FileSelector(f"{root}/{REPLAY_DIR}", allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == fs.FileType.Directory and NAME_RE.match(i.base_name))


def replay_tables(settings: "Settings") -> list[str]:
    """Table URIs of every replay namespace in ``settings``' lake: each existing Delta table (a folder with a
    ``_delta_log``) of each replay. Erasure deletes a person's rows from these as from the live tables."""
    from pyarrow import fs

    filesystem, root = _fs(settings.lake)
    out = []
    for name in list_replays(settings):
        for table in sorted(REPLAY_TABLES):
            log = filesystem.get_file_info(f"{root}/{REPLAY_DIR}/{name}/{table}/_delta_log")
            if log.type == fs.FileType.Directory:
                out.append(replay_table_uri(settings.lake, name, table))
    return out


def read_manifest(settings: "Settings", name: str) -> dict[str, Any] | None:
    """The replay's manifest, or None when no replay ``name`` was started."""
    from pyarrow import fs

    filesystem, root = _fs(settings.lake)
    path = f"{root}/{REPLAY_DIR}/{check_name(name)}/{MANIFEST}"
    if filesystem.get_file_info(path).type != fs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as fh:
        return json.loads(fh.read())


def write_manifest(settings: "Settings", name: str, manifest: dict[str, Any]) -> str:
    """Write the manifest atomically where the filesystem allows (temp file + move); returns its path."""
    filesystem, root = _fs(settings.lake)
    folder = f"{root}/{REPLAY_DIR}/{check_name(name)}"
    filesystem.create_dir(folder, recursive=True)
    data = (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()
    tmp = f"{folder}/.{MANIFEST}.tmp"
    with filesystem.open_output_stream(tmp) as fh:
        fh.write(data)
    filesystem.move(tmp, f"{folder}/{MANIFEST}")
    return f"{folder}/{MANIFEST}"


class LiveTraces:
    """The live ``traces`` rows a replay may reuse instead of scrubbing their records again: looked up by source
    partition and offset range in one snapshot of the live table (read when the replay process starts), and only
    rows stamped with ``scrub_version`` (rows from before that column, or scrubbed under other code, config or key,
    never match). The caller still checks each row's ``src_sha256`` against the record it read."""

    # every traces column but those judging decides (a replay judges again) and the erasure key (its sink stamps it)
    COLUMNS = [c for c in TRACES_SCHEMA.names if c not in TRACES_JUDGING_COLUMNS and c != "conv_key"]

    def __init__(self, uri: str, topic: str, scrub_version: str, storage_options: dict[str, str] | None = None):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        self.topic, self.scrub_version = topic, scrub_version
        try:
            self._dataset: Any = DeltaTable(uri, storage_options=storage_options).to_pyarrow_dataset()
        except TableNotFoundError:
            self._dataset = None
        if self._dataset is not None and "scrub_version" not in self._dataset.schema.names:
            self._dataset = None  # a table written before scrub versions: nothing in it can be reused

    def rows(self, spans: dict[int, tuple[int, int]]) -> dict[tuple[int, int], dict[str, Any]]:
        """{(partition, source offset): row} of the live rows in ``spans`` ({partition: (first, last offset)},
        inclusive), in one scan of the snapshot."""
        if self._dataset is None or not spans:
            return {}
        import operator
        from functools import reduce

        import pyarrow.dataset as ds

        offset, partition = ds.field("src_offset"), ds.field("src_partition")
        where = reduce(operator.or_, [(partition == p) & (offset >= first) & (offset <= last)
                                      for p, (first, last) in spans.items()])
        where = where & (ds.field("src_topic") == self.topic) & (ds.field("scrub_version") == self.scrub_version)
        columns = self._dataset.to_table(filter=where, columns=self.COLUMNS).to_pydict()  # faster than to_pylist
        names = list(columns)
        rows = [dict(zip(names, values)) for values in zip(*columns.values())]
        return {(r["src_partition"], r["src_offset"]): r for r in rows}


def replay_sink(settings: "Settings", name: str, table: str, writer: str) -> DeltaSink:
    """The idempotent sink of ``table`` in replay ``name``; its transactions are named after the replay and
    ``writer``, so each replay (and each step of it) resumes on its own."""
    schema, partition_by = REPLAY_TABLES[table]
    return DeltaSink(replay_table_uri(settings.lake, name, table), schema, partition_by,
                     name=f"replay-{name}-{writer}", storage_options=settings.lake_storage_options or None,
                     checkpoint_every=settings.checkpoint_every, conv_key=conv_keys_for(settings, schema))
