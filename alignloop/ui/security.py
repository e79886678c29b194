"""Passwords (argon2-cffi), signed session cookies (itsdangerous), CSRF tokens and roles for the labeling UI."""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

if TYPE_CHECKING:
    from schemas.settings import Settings

COOKIE = "alignloop_session"
LOGIN_CSRF_COOKIE = "alignloop_login_csrf"
MAX_PASSWORD = 1024
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    if not 8 <= len(password) <= MAX_PASSWORD:
        raise ValueError("a password needs 8 to 1024 characters")
    return _hasher.hash(password)


def check_password(pw_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(pw_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY = None


def burn_time(password: str) -> None:
    """Hash once for an unknown user, so a login's timing does not tell which names exist."""
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = _hasher.hash("not-a-real-password")
    check_password(_DUMMY, password)


def secret_key(settings: "Settings") -> str:
    """ALIGNLOOP_UI_SECRET_KEY, else a random key kept in <home>/ui/secret (created 0600 on first use)."""
    if settings.ui_secret_key is not None:
        return settings.ui_secret_key.get_secret_value()
    path = Path(settings.home) / "ui" / "secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class Signer:
    def __init__(self, key: str, ttl_s: int):
        self._s, self.ttl_s = TimestampSigner(key, salt="alignloop-ui-session"), ttl_s

    def sign(self, sid: str) -> str:
        return self._s.sign(sid).decode()

    def unsign(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self._s.unsign(cookie, max_age=self.ttl_s).decode()
        except (BadSignature, SignatureExpired):
            return None


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def db_url(settings: "Settings") -> str:
    if settings.ui_db_url:
        return settings.ui_db_url
    path = Path(settings.home) / "ui" / "labeling.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"
