"""``replay curate``: the live curation rules (``streams.curation``) over a replay's ``traces``, landed as new
versions of the replay's own ``sft_examples`` and ``preferences`` tables.

The same ``CurationHook`` the live monitor runs, with sinks in the replay namespace: each row's source offset is
its app transaction, so curating twice (or after a crash) lands nothing twice.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.delta_sink import read_table
from connectors.replay_store import replay_sink, replay_table_uri
from schemas.tables import PREFERENCES_TABLE, SFT_EXAMPLES_TABLE, TRACES_TABLE
from streams.curation.sink import CurationHook
from streams.replay.rows import judged_from_row

if TYPE_CHECKING:
    from schemas.settings import Settings
    from streams.configs import AreaConfigs


def curation_hook(settings: "Settings", configs: "AreaConfigs", name: str) -> CurationHook:
    from streams.pipeline import fast_judges_for
    from streams.scrub import build_scrubber

    return CurationHook(replay_sink(settings, name, SFT_EXAMPLES_TABLE, "sft"),
                        replay_sink(settings, name, PREFERENCES_TABLE, "prefs"),
                        fast_judges_for(configs, build_scrubber(settings, configs.scrub)))


def replay_rows(settings: "Settings", name: str, table: str = TRACES_TABLE) -> list[dict[str, Any]]:
    t = read_table(replay_table_uri(settings.lake, name, table), storage_options=settings.lake_storage_options or None)
    return t.to_pylist() if t.num_columns else []


def curate_replay(settings: "Settings", configs: "AreaConfigs", name: str, *, batch: int = 5000,
                  on_batch: Any = None) -> dict[str, int]:
    """Curate every trace of replay ``name``; returns {"sft": rows landed now, "preferences": rows landed now}."""
    hook = curation_hook(settings, configs, name)
    rows = sorted(replay_rows(settings, name), key=lambda r: (r["src_topic"], r["src_partition"], r["src_offset"]))
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        hook.write([judged_from_row(r) for r in chunk])
        if on_batch is not None:
            on_batch(len(chunk))
    return dict(hook.counts)
