"""The erasure key: pseudonymous keys that name a conversation (or an agent user) without identifying it.

``conv_key = HMAC-SHA256(key, "conv" 0x1f conversation_id)``, 32 hex characters, is stamped on every row of
conversation data (``schemas.tables.CONV_KEY``). An erasure deletes ``WHERE conv_key = '...'``, so the Delta log's
delete predicate and the audit entry hold the key, never the id. Without the key, a conv_key tells nothing about
the conversation; with it, the key of a known id can be recomputed (that is how `alignloop erase` finds the rows).

The key is ``settings.erasure_key`` when set (every writer must share it: set it when writers run on several
hosts). Unset, it is generated once per home into ``<home>/erasure.key`` (mode 0600, 32 random bytes in hex),
published atomically so concurrent first writers agree. Losing the key loses the ability to find a conversation's
rows by id (its rows stay, keyed by the old key): back it up with the lake. It is never logged or printed.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.settings import Settings

KEY_FILE = "erasure.key"
KEY_CHARS = 32  # 128 bits: collisions are out of reach and the column stays small


def key_path(settings: "Settings") -> Path:
    return Path(settings.home) / KEY_FILE


def _read(path: Path) -> bytes | None:
    for _ in range(50):  # a concurrent creator links a complete file, so an empty read is never seen; belt and braces
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return None
        if text:
            return bytes.fromhex(text)
        time.sleep(0.02)
    raise ValueError(f"{path} is empty; delete it to generate a new erasure key, or set ALIGNLOOP_ERASURE_KEY")


def erasure_secret(settings: "Settings") -> bytes:
    """The key bytes: the setting, else ``<home>/erasure.key`` (created on first use)."""
    if settings.erasure_key is not None:
        raw = settings.erasure_key.get_secret_value().encode()
        if not raw:
            raise ValueError("ALIGNLOOP_ERASURE_KEY is empty; set it to a long random string or unset it")
        return raw
    path = key_path(settings)
    found = _read(path)
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # atomic and exclusive: the first creator wins, every other one reads its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    found = _read(path)
    assert found is not None
    return found


class ErasureKeys:
    """Pseudonymous keys under one erasure key: ``conv(conversation_id)`` for rows, ``user(pseudonym)`` for audit
    subjects. Cached per conversation (a conversation has many turns); the cache is bounded."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the erasure key must not be empty")
        self._secret = secret
        self._cache: dict[str, str] = {}

    def __repr__(self) -> str:  # never show the key
        return "ErasureKeys(<secret>)"

    def _mac(self, kind: str, value: str) -> str:
        return hmac.new(self._secret, f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:KEY_CHARS]

    def conv(self, conversation_id: str | None) -> str | None:
        if not conversation_id:
            return None
        hit = self._cache.get(conversation_id)
        if hit is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            hit = self._cache[conversation_id] = self._mac("conv", conversation_id)
        return hit

    __call__ = conv

    def user(self, pseudonym: str) -> str:
        return self._mac("user", pseudonym)

    def trace(self, trace_id: str) -> str:
        """The key of a trace id in an erasure command to the drift monitors (``drift.erase``)."""
        return self._mac("trace", trace_id)


def erasure_keys(settings: "Settings") -> ErasureKeys:
    return ErasureKeys(erasure_secret(settings))
