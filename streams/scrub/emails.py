"""Emails written to dodge a scanner: "name dot surname at host dot com", "x [at] y [dot] z", "a(at)b.pl",
"A AT B DOT CO DOT UK", and addresses stored back to front for right-to-left display ("moc.elpmaxe@nhoj").

Both run only where a cheap substring test says they can match (an "@" that did not parse, or "dot"/"[at]"/
" at " next to a mail word), so ordinary text costs a few substring tests.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Pattern

Span = tuple[str, int, int, float]

_OPEN, _CLOSE = r"[\[\(\{<]", r"[\]\)\}>]"
_AT = rf"(?:\s*{_OPEN}\s*at\s*{_CLOSE}\s*|\s+at\s+|@)"
_DOT = rf"(?:\s*{_OPEN}\s*dot\s*{_CLOSE}\s*|\s+dot\s+|\.)"
_WORD = r"[a-z0-9_%+'-]{1,40}"
# matched on the lower-cased text
_OBFUSCATED = re.compile(rf"(?<![a-z0-9_%+'.-])({_WORD}(?:{_DOT}{_WORD}){{0,4}})({_AT})({_WORD}(?:{_DOT}{_WORD}){{1,4}})"
                         r"(?![a-z0-9_-])")
_BRACKETED = re.compile(rf"{_OPEN}\s*(?:at|dot)\s*{_CLOSE}")
_WORD_DOT = re.compile(r"\s(?:dot)\s")
_MAIL_CUE = re.compile(r"(?:e-?mail|mail|contact|write|reach|send|address|alias|ping|sender|from|to)\b[^\n]{0,30}$")
_DOMAIN_AFTER_AT = re.compile(r"[a-z0-9-]{1,40}\.[a-z]")
_GTLD: Final = frozenset("com org net edu gov mil int info biz io co me app dev ai name pro mobi tech online site "
                         "email xyz cloud".split())


def _tld_ok(tld: str) -> bool:
    return tld in _GTLD or (len(tld) == 2 and tld.isalpha())


def _anchors(text: str, low: str) -> list[int]:
    """Where an obfuscated email can be: "[at]"-like and "dot" markers, " AT ", and a plain " at " before a
    dotted name. Substring finds only (a regex scan of the whole text would cost more than every detector here)."""
    out: list[int] = []
    if "dot" in low or "at]" in low or "at)" in low or "at}" in low or "at>" in low or " AT " in text:
        for marker, hay in (("at]", low), ("at)", low), ("at}", low), ("at>", low), ("dot", low), (" AT ", text)):
            i = hay.find(marker)
            while i != -1:
                out.append(i)
                i = hay.find(marker, i + 3)
    i = low.find(" at ")
    while i != -1:
        # "x at host.com", not "Ann at ann.lee@host.com" (a plain email, find_emails')
        if _DOMAIN_AFTER_AT.match(low, i + 4) and "@" not in low[i + 4:i + 68].split(None, 1)[0]:
            out.append(i)
        i = low.find(" at ", i + 4)
    return out


def find_obfuscated_emails(text: str, low: str) -> Iterable[Span]:
    """Spans of obfuscated emails (plain ones are ``find_emails``'): one obfuscation at least, a real TLD."""
    anchors = _anchors(text, low)
    if not anchors:
        return
    done = -1
    for a in sorted(anchors):
        if a < done:
            continue
        for m in _OBFUSCATED.finditer(low, a - 130 if a > 130 else 0, a + 130):
            if m.start() >= done and m.start() <= a < m.end() and _accept(text, low, m):
                done = m.end()
                yield "EMAIL", m.start(), m.end(), 0.9
                break


def _accept(text: str, low: str, m: re.Match[str]) -> bool:
    local, at, domain = m.group(1), m.group(2), m.group(3)
    if not _tld_ok(re.split(_DOT, domain)[-1]):
        return False
    whole = m.group()
    if at == "@" and not (_BRACKETED.search(whole) or _WORD_DOT.search(whole)):
        return False  # a plain email: find_emails has it
    plain_at = at.strip() == "at" and not _BRACKETED.search(at)
    if plain_at and not (_WORD_DOT.search(whole) or _BRACKETED.search(whole)):
        # "liam.oconnor AT eircom.net": a plain " at " needs an address-like side or a mail word before it
        cased_at = text[m.start(2):m.end(2)].strip() == "AT"
        return ((cased_at or any(c in local for c in "._0123456789")) and "." in domain) or bool(
            _MAIL_CUE.search(low, max(0, m.start() - 40), m.start()))
    return True


def find_reversed_email(text: str, at: int, local_chars: frozenset[str], domain: Pattern[str]) -> Span | None:
    """The email around ``text[at] == "@"`` read backwards ("ua.moc.gnorts@kcin" is "kcin@strong.com.au"
    reversed), as ``(kind, start, end, score)`` in ``text``'s offsets; None when it is not one."""
    lo, hi = max(0, at - 120), min(len(text), at + 65)
    rev = text[lo:hi][::-1]
    rat = hi - 1 - at  # the "@" in rev
    start = rat
    while start > 0 and rat - start < 64 and rev[start - 1] in local_chars:
        start -= 1
    while start < rat and rev[start] in ".'-":
        start += 1
    m = domain.match(rev, rat + 1) if start < rat else None
    if not m or not _tld_ok(m.group().rsplit(".", 1)[-1].lower()):
        return None
    return "EMAIL", hi - m.end(), hi - start, 0.9
