"""What a scrubbed trace is a function of, as one short hash: the scrub code and its word lists, the trace
contract it rebuilds, the config and the pseudonym key (by its id, never the key). Two scrubbers with the same
version turn the same raw record into the same scrubbed trace, so a replay may reuse the text the live spine
scrubbed under its version instead of scrubbing it again (``streams.replay``); any change to any of these parts
changes the version, and the replay scrubs again.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from schemas import trace as trace_contract

from streams.scrub.config import ScrubConfig

_PACKAGE = Path(__file__).parent
_ROOT = _PACKAGE.parent.parent  # files are named relative to it: the same tree hashes the same wherever it lives


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over the scrub package's source and data files and the Trace contract's source, with their paths."""
    h = hashlib.sha256()
    files = sorted(p for p in _PACKAGE.rglob("*") if p.is_file() and p.suffix in (".py", ".txt"))
    for p in [*files, Path(trace_contract.__file__)]:
        h.update(p.resolve().relative_to(_ROOT.resolve()).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def scrub_version(config: ScrubConfig, key_id: str) -> str:
    """The version of scrubbing under ``config`` and the key whose id is ``key_id``: 16 hex characters."""
    h = hashlib.sha256()
    for part in (code_digest(), config.model_dump_json(), key_id):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
