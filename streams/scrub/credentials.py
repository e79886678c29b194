"""Secrets and credentials: userinfo in URLs, PEM private keys, vendor token shapes (on a word mask, so only long
runs are searched), ``Bearer``/``Basic`` values, and values after secret-looking keys in free text."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from streams.scrub.checks import is_secret_key, is_weak_secret_key, shannon_bits

Span = tuple[str, int, int, float]
_URL_USERINFO = re.compile(r"([^\s:/@]{1,128}:[^\s/@]{1,256})@")
_PEM = re.compile(
    r"-----BEGIN [A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]{0,16384}?-----END [A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,-]{0,16384})"
)
# On the word mask (token characters -> ``a``): a run of 16+ is where a vendor token or a JWT can be.
_WORDMASK: Final = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.",
                                   b"a" * 65)
_LONG_RUN = b"a" * 16
_RUN = re.compile(rb"a{16,8192}")
# Vendor token shapes, tried only on long runs: OpenAI/Anthropic/Stripe keys, GitHub, AWS, Google, Slack, GitLab,
# JWT. Each may start mid-run (``key=sk-...``), so each is searched within the run, not anchored to it.
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?:sk|rk)(?:-(?:proj|ant|live|test|svcacct|admin)|_(?:live|test))?[-_][A-Za-z0-9_-]{20,256}"
    r"|gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255}"
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])"
    r"|AIza[0-9A-Za-z_-]{35}|xox[abposr]-[A-Za-z0-9-]{10,250}|glpat-[A-Za-z0-9_-]{20,64}"
    r"|eyJ[A-Za-z0-9_-]{5,4096}\.[A-Za-z0-9_-]{5,4096}\.[A-Za-z0-9_-]{5,4096}"
    r")"
)
_SCHEME_VALUE = re.compile(r"\s{1,3}([A-Za-z0-9._~+/=-]{16,4096})")  # after "Bearer" / "Basic" / "token"
_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"  # for str.strip: the key around a cue, in C
_KV_CUES: Final = ("pass", "pwd", "secret", "token", "key", "auth")
_KV_VALUE = re.compile(
    r"[\"']?\s{0,3}(:|=>|=|\bis\b)\s{0,3}"
    r"(?:\"([^\"\n]{1,512})\"|'([^'\n]{1,512})'|([^\s\"',;&<>]{4,512}))"
)
_PLACEHOLDERS: Final = frozenset({"null", "none", "true", "false", "redacted", "undefined", "required", "invalid",
                                  "incorrect", "wrong", "missing", "expired", "empty", "changed", "correct"})


def lower_same_length(text: str, low: str | None = None) -> str:
    """``text.lower()`` with offsets kept: a few capitals ("İ") lower to two characters, which would shift spans.
    ``low``: ``text.lower()`` when the caller already has it."""
    if low is None:
        low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower()[:1] for c in text)


def _find_kv(text: str, low: str) -> Iterable[Span]:
    """``password=...``, ``"api_key": "..."``, ``my password is ...``: the value after a secret-looking key."""
    seen: set[int] = set()
    for cue in _KV_CUES:
        i = low.find(cue)
        while i != -1:
            # the key: key characters around the cue, at most 40 on either side
            head = low[i - 40 if i > 40 else 0:i]
            tail = low[i + len(cue):i + 40]
            ks = i - (len(head) - len(head.rstrip(_KEY_CHARS)))
            ke = i + len(cue) + len(tail) - len(tail.lstrip(_KEY_CHARS))
            i = low.find(cue, ke)
            if ks in seen:
                continue
            seen.add(ks)
            key = low[ks:ke]
            if not is_secret_key(key) and key not in ("auth", "authorization"):
                continue
            m = _KV_VALUE.match(text, ke)
            if not m:
                continue
            g = 2 if m.group(2) is not None else 3 if m.group(3) is not None else 4
            v = m.group(g)
            if v.lower().strip(".") in _PLACEHOLDERS or set(v) <= {"*", "x", "X", "•"}:
                continue
            if is_weak_secret_key(key) and (len(v) < 16 or shannon_bits(v) < 3.0):
                continue
            if m.group(1) == "is" and v.isalpha() and v.islower():  # prose: "the password is incorrect"
                continue
            if low.startswith(("bearer ", "basic "), m.start(g)):  # the scheme detector handles these
                continue
            yield "SECRET", m.start(g), m.end(g), 0.9


def find_secrets(text: str, low: str | None = None) -> Iterable[Span]:
    """``low``: ``text.lower()`` when the caller already has it."""
    # substring tests cost ~1 ns/char each, so gate on rare single characters (memchr-fast) where possible
    if "@" in text:
        idx = text.find("://")
        while idx != -1:
            m = _URL_USERINFO.match(text, idx + 3)
            if m:
                yield "SECRET", m.start(1), m.end(1), 1.0
            idx = text.find("://", idx + 3)
    if "-----BEGIN" in text:
        for m in _PEM.finditer(text):
            yield "SECRET", m.start(), m.end(), 1.0
    wmask = text.encode("ascii", "replace").translate(_WORDMASK)
    i = wmask.find(_LONG_RUN)
    while i != -1:
        r = _RUN.match(wmask, i)
        end = r.end() if r else i + 16
        for m in _TOKEN.finditer(text, i, end):
            yield "SECRET", m.start(), m.end(), 1.0
        i = wmask.find(_LONG_RUN, end)
    low = lower_same_length(text, low)
    for cue in ("bearer", "basic"):
        i = low.find(cue)
        while i != -1:
            m = _SCHEME_VALUE.match(text, i + len(cue))
            if m and (i == 0 or not low[i - 1].isalnum()):
                yield "SECRET", m.start(1), m.end(1), 0.95
            i = low.find(cue, i + len(cue))
    if "=" in text or ":" in text or " is " in low:
        yield from _find_kv(text, low)
