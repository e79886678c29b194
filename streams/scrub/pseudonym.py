"""Deterministic typed pseudonyms: ``<KIND_xxxxxxxx>`` from a keyed HMAC-SHA256 of the normalised value.

The same (kind, normalised value) under the same tenant key always gives the same token, so a scrubbed conversation
stays readable ("<PERSON_1a2b3c4d> asked <PERSON_1a2b3c4d>'s bank...") and joins across traces still work.

Key rotation: pseudonyms are a function of the key, so a new key gives new pseudonyms for every value (old and new
data no longer join on pseudonyms — that is the point of rotating). Every scrubbed trace carries ``pii_key_id`` in
its metadata: a short HMAC of a fixed label under the key, which identifies the key without revealing it. To rotate,
set the new ``ALIGNLOOP_PII_HMAC_KEY`` and restart the workers; rows written before and after can be told apart by
``pii_key_id``. The key itself is never logged, printed or stored.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

from pydantic import SecretStr

_NON_DIGITS: Final = re.compile(r"\D")
_SPACES: Final = re.compile(r"\s+")
_KEY_ID_LABEL: Final = b"alignloop/pii-key-id/v1"

# Surrogate pools: small, generic and unrelated to any benchmark's data; chosen by the HMAC so they are stable.
_SURROGATE_FIRST: Final = ("Alex", "Robin", "Sam", "Jordan", "Taylor", "Casey", "Morgan", "Jamie", "Riley", "Avery",
                           "Quinn", "Drew", "Kim", "Lee", "Noel", "Sasha")
_SURROGATE_LAST: Final = ("Smith", "Jones", "Brown", "Miller", "Davis", "Garcia", "Wilson", "Moore", "Clark", "Hall",
                          "Young", "King", "Wright", "Green", "Baker", "Adams")
_SURROGATE_CITY: Final = ("Springfield", "Riverton", "Lakeside", "Fairview", "Greenville", "Oakdale", "Milton",
                          "Ashford")
_SURROGATE_STREET: Final = ("Main St", "Oak Ave", "Pine Rd", "Maple Dr", "Cedar Ln", "Elm St", "Park Ave", "Hill Rd")
_SURROGATE_ORG: Final = ("Acme Corp", "Globex Ltd", "Initech", "Umbrella Inc", "Stark Industries", "Wayne Holdings")


def normalise(kind: str, value: str) -> str:
    """Canonical form so that formatting variants of one value map to one pseudonym."""
    v = value.strip()
    if kind == "EMAIL":
        return v.lower()
    if kind == "PHONE":
        d = _NON_DIGITS.sub("", v.split("x")[0].split("ext")[0])
        if d.startswith("00"):
            d = d[2:]
        if len(d) == 11 and d.startswith("1"):  # NANP: +1 555 123 4567 == 555-123-4567
            d = d[1:]
        return d
    if kind in ("CREDIT_CARD", "US_SSN"):
        return _NON_DIGITS.sub("", v)
    if kind == "IBAN":
        return v.replace(" ", "").upper()
    if kind == "IP_ADDRESS":
        import ipaddress

        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            return v.lower()
    if kind == "SECRET":
        return v
    return _SPACES.sub(" ", v).casefold()


class Pseudonymizer:
    """Keyed, deterministic pseudonyms (and optional realistic surrogates) for one tenant key."""

    def __init__(self, key: SecretStr | str | bytes, *, digest_chars: int = 8, surrogates: bool = False) -> None:
        if isinstance(key, SecretStr):
            key = key.get_secret_value()
        raw = key.encode() if isinstance(key, str) else bytes(key)
        if not raw:
            raise ValueError("pii_hmac_key must not be empty")
        if not 6 <= digest_chars <= 64:
            raise ValueError("digest_chars must be between 6 and 64")
        self._key = raw
        self.digest_chars = digest_chars
        self.surrogates = surrogates
        self.key_id = hmac.new(raw, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:8]
        self._cache: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(key_id={self.key_id!r}, surrogates={self.surrogates})"

    def digest(self, kind: str, value: str) -> str:
        msg = f"{kind}\x1f{normalise(kind, value)}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def token(self, kind: str, value: str) -> str:
        """``<KIND_xxxxxxxx>`` (or a realistic surrogate when enabled and the kind has one)."""
        ck = (kind, value)
        hit = self._cache.get(ck)
        if hit is not None:
            return hit
        h = self.digest(kind, value)
        out = (self._surrogate(kind, h) if self.surrogates else None) or f"<{kind}_{h[: self.digest_chars]}>"
        if len(self._cache) > 50_000:  # bounded: a long-running worker must not grow without limit
            self._cache.clear()
        self._cache[ck] = out
        return out

    @staticmethod
    def _surrogate(kind: str, h: str) -> str | None:
        """Realistic but obviously fictional values; secrets and identifiers stay tags (no fake that could work)."""
        n = int(h[:12], 16)
        if kind == "PERSON":
            return f"{_SURROGATE_FIRST[n % 16]} {_SURROGATE_LAST[(n >> 4) % 16]}"
        if kind == "EMAIL":
            return f"user.{h[:8]}@example.com"
        if kind == "PHONE":  # 555-01xx is reserved for fiction in the NANP
            return f"555-01{n % 100:02d}"
        if kind == "LOCATION":
            return _SURROGATE_CITY[n % len(_SURROGATE_CITY)]
        if kind == "ADDRESS":
            return f"{100 + n % 900} {_SURROGATE_STREET[(n >> 10) % len(_SURROGATE_STREET)]}"
        if kind == "ORGANIZATION":
            return _SURROGATE_ORG[n % len(_SURROGATE_ORG)]
        if kind == "IP_ADDRESS":  # TEST-NET-3 documentation range
            return f"203.0.113.{n % 254 + 1}"
        return None
