"""Structured PII and secrets: bounded regexes plus checksums (Luhn, IBAN mod-97, SSN ranges).

Speed matters (the stream budget is ~60-80 us per 2 KB trace). Python's ``re`` scans fast only for patterns that
start with a literal, so the text is first turned into a 1:1 byte *mask* (digits -> ``0``, capitals -> ``A``) and
the numeric and IBAN detectors search that mask for literal-led shapes, then run their exact patterns only inside
the few windows found. Every other detector sits behind a substring test or a literal-led search. All quantifiers
are bounded, so no input backtracks catastrophically.
"""
from __future__ import annotations

import ipaddress
import re
import unicodedata
from bisect import bisect_right
from operator import itemgetter
from collections.abc import Callable, Iterable
from typing import Final

from streams.scrub.base import Finding, Scrubber, ScrubResult
from streams.scrub.checks import iban_ok, luhn_ok, ssn_ok
from streams.scrub.emails import find_obfuscated_emails, find_reversed_email
from streams.scrub.ids import find_ids
from streams.scrub.memo import PieceMemo, ScrubMemo
from streams.scrub.pseudonym import Pseudonymizer
from streams.scrub.credentials import find_secrets, lower_same_length

STRUCTURED_KINDS: Final = ("EMAIL", "PHONE", "CREDIT_CARD", "IP_ADDRESS", "IBAN", "US_SSN", "SECRET", "NATIONAL_ID",
                           "PASSPORT")
# Higher wins when spans overlap (then longer wins): a Luhn-valid card beats the phone shape it also fits.
PRIORITY: Final = {"SECRET": 90, "IBAN": 80, "CREDIT_CARD": 70, "EMAIL": 65, "US_SSN": 60, "NATIONAL_ID": 58,
                   "PASSPORT": 57, "IP_ADDRESS": 55,
                   "PHONE": 50, "DATE_OF_BIRTH": 45, "ADDRESS": 40, "ORGANIZATION": 30, "PERSON": 25, "LOCATION": 20}
Span = tuple[str, int, int, float]
_START = itemgetter(1)

# zero-width characters and bidi controls (embeddings, overrides, isolates, marks): removed before detection
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_MASK: Final = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"0" * 10 + b"A" * 26)
# on the mask: a digit group of 7+ chars of digits/separators; every numeric kind contains one
_NUM_WINDOW = re.compile(rb"0[0 \-.()/]{5,200}0")
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-'")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?!\d)")
_CARD12 = re.compile(r"(?<![\d-])\d{12}(?![\d-])")
_CARD_CUE = re.compile(r"(?i)(?:card|\bcc\b|visa|mastercard|maestro|amex|debit|credit)[^\n\d]{0,30}$")
_SSN_SHAPES: Final = (b"000-00-0000", b"000 00 0000", b"000.00.0000")
_SSN_SHAPE = re.compile(b"|".join(re.escape(sh) for sh in _SSN_SHAPES))  # any of them, in one search
_TWELVE_DIGITS = re.compile(rb"[0?]{12}")  # on the mask: where a 12-digit run (ASCII or not) can be
_SSN = re.compile(r"(?<![\d-])(\d{3})([- .])(\d{2})\2(\d{4})(?![\d-])")
_PHONE = re.compile(
    r"(?:(?<=\\[nrt])|(?<![\w+/.-]))"  # a JSON-escaped "\n" before the number counts as a break
    r"(?:\+\d{7,14}(?!\d)|\d{10,11}(?!\d)|"
    r"(?:\+\d{1,3}[ .-]?|00\d{1,3}[ .-]?|1[ .-])?"
    r"(?:\(\d{1,5}\)[ .-]?|\d{1,5}[ .-])"
    r"(?:\d{1,4}[ .-]?){1,4}\d{2,4})"
    r"(?:[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?"
    r"(?![\w@]|-\d)"
)
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}$")
_SSN_LIKE = re.compile(r"\d{3}([- .])\d{2}\1\d{4}$")
_DATEISH = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d|\w)"
)
_VERSION_CUE = re.compile(r"(?i)\b(?:version|ver\.?|release|build|v)[ \t]*$")  # word-bounded: "server." is no cue
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_HEXCOLON = frozenset("0123456789abcdefABCDEF:.")
# A phone match is digits plus these (before its extension): deleting them leaves the digits to count.
_PHONE_PUNCT = str.maketrans("", "", "+ .-()")
_IBAN = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")


def make_mask(text: str) -> bytes:
    """1:1 with ``text`` (one byte per code point): digits -> 0, A-Z -> A, non-ASCII -> ?."""
    return text.encode("ascii", "replace").translate(_MASK)


def find_emails(text: str) -> Iterable[Span]:
    at = text.find("@")
    while at != -1:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        if start >= 2 and text[start - 1] == "\\" and text[start] in "nrt":  # "...\\nname@x.io" (escaped newline)
            start += 1
        while start < at and text[start] in ".'-":  # a local part can't start with these
            start += 1
        m = _EMAIL_DOMAIN.match(text, at + 1) if start < at else None
        if m:
            yield "EMAIL", start, m.end(), 1.0
            at = text.find("@", m.end())
        else:
            rev = find_reversed_email(text, at, _EMAIL_LOCAL, _EMAIL_DOMAIN)  # "moc.elpmaxe@nhoj" (RTL-reversed)
            if rev:
                yield rev
            at = text.find("@", rev[2] if rev else at + 1)


# "number"/"no."/"#" alone would make order and ticket numbers phones; only phone words count as cues
_PHONE_CUE_BEFORE = re.compile(r"(?i)(?:call|phone|tel|telephone|mobile|cell|fax|desk|reach|text|whatsapp|"
                               r"registered|dial|ring|sms|message|messages|answering)[^\n\d]{0,24}$")
_PHONE_CUE_AFTER = re.compile(r"(?i)[ \t-]{0,3}\(?(?:office|fax|mobile|cell|home|work|tel|phone)\b")


def _phone_cue(text: str, s: int, e: int) -> bool:
    return bool(_PHONE_CUE_BEFORE.search(text, max(0, s - 40), s) or _PHONE_CUE_AFTER.match(text, e))


def _windows(mask: bytes) -> list[tuple[int, int, int]]:
    """Merged ``(start, end, digits)`` regions around digit groups, widened for prefixes and split numbers."""
    out: list[list[int]] = []
    n = len(mask)
    for m in _NUM_WINDOW.finditer(mask):
        s, e = m.span()
        s, e = s - 4 if s > 4 else 0, e + 24 if e + 24 < n else n
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1][1] = e
        else:
            out.append([s, e])
    return [(a, b, mask.count(b"0", a, b)) for a, b in out]


def find_numbers(text: str, mask: bytes) -> Iterable[Span]:
    for ws, we, digits in _windows(mask):
        if digits >= 13:
            for m in _CARD.finditer(text, ws, we):
                d = m.group().replace(" ", "").replace("-", "")
                if 13 <= len(d) <= 19 and d[0] != "0" and luhn_ok(d):
                    yield "CREDIT_CARD", m.start(), m.end(), 1.0
        if digits >= 12 and _TWELVE_DIGITS.search(mask, ws, we):  # 12-digit Maestro numbers: Luhn plus a card cue
            for m in _CARD12.finditer(text, ws, we):
                if luhn_ok(m.group()) and _CARD_CUE.search(text, max(0, m.start() - 40), m.start()):
                    yield "CREDIT_CARD", m.start(), m.end(), 0.9
        if digits >= 9 and _SSN_SHAPE.search(mask, ws, we):
            for m in _SSN.finditer(text, ws, we):
                if ssn_ok(m.group(1), m.group(3), m.group(4)):
                    yield "US_SSN", m.start(), m.end(), 0.9
        if digits >= 6:
            for m in _PHONE.finditer(text, ws, we):
                s = m.group()
                core = s.split("x")[0].split("e")[0]
                nd = len(core.translate(_PHONE_PUNCT))  # the digits
                intl = s[0] == "+" or (s.startswith("00") and s[2:3] not in ("0", ""))
                if s.isdigit() and not _phone_cue(text, m.start(), m.end()):
                    continue  # a bare run of digits is a phone only next to a phone cue
                if intl:
                    if not 8 <= nd <= 15:
                        continue
                # domestic: 10 digits (NANP), or 11 with a trunk prefix 1 / 0 (e.g. UK 020 ...); 7-9 digits
                # ("9380 6377") only next to a phone cue ("call me on", "mobile")
                elif _SSN_LIKE.match(core) or not (nd == 10 or (nd == 11 and core.lstrip("(")[0] in "10") or (
                        6 <= nd <= 15 and _phone_cue(text, m.start(), m.end()))):
                    continue
                if _DATEISH.match(core.strip()):
                    continue
                if _DOTTED_QUAD.match(core):  # IPs / versions, not phones
                    continue
                yield "PHONE", m.start(), m.end(), 0.85
        if digits >= 4 and b"0.0" in mask[ws:we]:
            for m in _IPV4.finditer(text, ws, we):
                if not _VERSION_CUE.search(text, max(0, m.start() - 10), m.start()):
                    yield "IP_ADDRESS", m.start(), m.end(), 0.95


def find_ipv6(text: str) -> Iterable[Span]:
    last_end = -1
    n = len(text)
    for h in _IPV6_HINT.finditer(text):
        if h.start() < last_end:
            continue
        s, e = h.start(), h.end()
        while s > 0 and e - s < 45 and text[s - 1] in _HEXCOLON:
            s -= 1
        while e < n and e - s < 45 and text[e] in _HEXCOLON:
            e += 1
        last_end = e
        if (s > 0 and (text[s - 1].isalnum() or text[s - 1] == "_")) or (e < n and (text[e].isalnum() or text[e] == "_")):
            continue
        cand = text[s:e].rstrip(".")
        if not any(c.isdigit() for c in cand) or sum(c not in ":." for c in cand) < 3:
            continue
        try:
            ipaddress.IPv6Address(cand)
        except ValueError:
            continue
        yield "IP_ADDRESS", s, s + len(cand), 0.95


def find_iban(text: str, mask: bytes) -> Iterable[Span]:
    i = mask.find(b"AA00")
    while i != -1:
        if i == 0 or not text[i - 1].isalnum():
            m = _IBAN.match(text, i)
            s = m.group() if m else ""
            while s and not iban_ok(s):  # the optional tail may have eaten a following word; retry shorter
                cut = s.rfind(" ")
                s = s[:cut] if cut >= 15 else ""
            if s:
                yield "IBAN", i, i + len(s), 1.0
                i = mask.find(b"AA00", i + len(s))
                continue
        i = mask.find(b"AA00", i + 1)


def resolve(cands: list[Span]) -> list[Span]:
    """Keep non-overlapping spans: highest priority first, then longest, then earliest."""
    if len(cands) < 2:
        return cands
    by_start = sorted(cands, key=_START)
    prev_end = -1
    for c in by_start:  # the common case: no overlaps at all, so every span is kept
        if c[1] < prev_end or c[1] >= c[2]:
            break
        prev_end = c[2]
    else:
        return by_start
    return resolve_by_priority(cands)


def resolve_by_priority(cands: list[Span]) -> list[Span]:
    """``resolve`` without its no-overlap fast path (the general rule; tests check the fast path against it)."""
    order = sorted(cands, key=lambda c: (-PRIORITY.get(c[0], 10), -(c[2] - c[1]), c[1]))
    starts: list[int] = []  # kept spans, sorted by start; each check is a bisect, not a scan of all kept spans
    kept: list[Span] = []
    for c in order:
        i = bisect_right(starts, c[1])
        if (i and kept[i - 1][2] > c[1]) or (i < len(kept) and kept[i][1] < c[2]):
            continue
        starts.insert(i, c[1])
        kept.insert(i, c)
    return kept


def apply(text: str, spans: list[Span], pseudo: Pseudonymizer) -> ScrubResult:
    """Replace sorted, non-overlapping spans with pseudonyms; findings keep input offsets."""
    if not spans:
        return ScrubResult(text, [])
    parts: list[str] = []
    findings: list[Finding] = []
    pos = 0
    for kind, s, e, score in spans:
        rep = pseudo.token(kind, text[s:e])
        parts.append(text[pos:s])
        parts.append(rep)
        findings.append(Finding(kind, s, e, score, rep))
        pos = e
    parts.append(text[pos:])
    return ScrubResult("".join(parts), findings)


def needs_view(text: str) -> bool:
    """Whether ``text`` must be scrubbed through ``normalised_view``: it has invisible characters (a zero-width
    space can split an email so that no pattern sees it) or compatibility forms NFKC folds (full-width
    "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", ligatures). ASCII text never does."""
    return not text.isascii() and (_INVISIBLE.search(text) is not None or not unicodedata.is_normalized("NFKC", text))


def normalised_view(text: str, detect: Callable[[str], list[Span]], pseudo: Pseudonymizer) -> ScrubResult:
    """Detect on ``text`` with invisible characters removed and each character NFKC-folded; replace the spans
    found in ``text`` itself (invisible characters dropped, everything else kept as written). Findings keep
    offsets into ``text``; pseudonyms are of the folded value, so a full-width email joins its ASCII twin."""
    parts: list[str] = []
    src: list[int] = []  # view index -> text index
    for i, c in enumerate(text):
        if c.isascii():
            parts.append(c)
            src.append(i)
        elif not _INVISIBLE.match(c):
            n = unicodedata.normalize("NFKC", c)
            parts.append(n)
            src.extend([i] * len(n))
    view = "".join(parts)
    src.append(len(text))
    out: list[str] = []
    findings: list[Finding] = []
    pos = 0
    for kind, s, e, score in resolve(detect(view)):
        a, b = src[s], src[e - 1] + 1 if e else 0
        if a < pos:  # two spans inside one folded character: the first one has it
            continue
        rep = pseudo.token(kind, view[s:e])
        out.append(_INVISIBLE.sub("", text[pos:a]))
        out.append(rep)
        findings.append(Finding(kind, a, b, score, rep))
        pos = b
    out.append(_INVISIBLE.sub("", text[pos:]))
    return ScrubResult("".join(out), findings)


class DetectingScrubber(Scrubber):
    """What every scrubber here shares around its own ``detect``: the memo, invisible-character handling,
    overlap resolution and pseudonym replacement. Texts shorter than ``min_len`` cannot hold a finding."""

    min_len = 6
    pseudo: Pseudonymizer
    memo: ScrubMemo
    ident_memo: dict[str, tuple[str, tuple[str, ...]]]  # scrub_trace's memo of scrubbed identifiers (tool names)
    piece_memo: PieceMemo | None  # scrub_trace's memo of short strings; None where a rule reads across strings

    @property
    def key_id(self) -> str:
        return self.pseudo.key_id

    @property
    def enabled_kinds(self) -> frozenset[str]:
        """The kinds this scrubber replaces (scrub_trace replaces values under tell-tale keys only as these)."""
        return frozenset(self.kinds)

    def detect(self, text: str, mask: bytes | None = None, low: str | None = None) -> list[Span]:
        raise NotImplementedError

    def scrub(self, text: str) -> ScrubResult:
        if len(text) < self.min_len:
            return ScrubResult(text, [])
        return self.memo.get(text, self._scrub)

    def _scrub(self, text: str) -> ScrubResult:
        if needs_view(text):
            return normalised_view(text, self.detect, self.pseudo)
        return apply(text, resolve(self.detect(text)), self.pseudo)

    def replacements(self, text: str) -> list[tuple[str, int, int, str]]:
        """``(kind, start, end, replacement)`` of each finding ``scrub(text)`` makes, in order, without building
        the scrubbed text or Finding objects: ``scrub_trace`` splices the replacements into its strings itself."""
        if len(text) < self.min_len or self.memo.holds(text) or needs_view(text):
            return [(f.kind, f.start, f.end, f.replacement) for f in self.scrub(text).findings]  # the memo's path
        token, out = self.pseudo.token, []
        seen: dict[tuple[str, str], str] = {}  # a value often recurs within one text (a name in several fields)
        for kind, s, e, _ in resolve(self.detect(text)):
            value = (kind, text[s:e])
            rep = seen.get(value)
            if rep is None:
                rep = seen[value] = token(kind, value[1])
            out.append((kind, s, e, rep))
        return out


class RegexScrubber(DetectingScrubber):
    """Structured tier: emails, phones, cards (Luhn), IPv4/IPv6, IBAN (mod-97), US SSN, secrets and credentials."""

    name = "regex"
    version = "1"
    supported = STRUCTURED_KINDS

    def __init__(self, pseudonymizer: Pseudonymizer, kinds: Iterable[str] | None = None,
                 thresholds: dict[str, float] | None = None, default_threshold: float = 0.5) -> None:
        self.pseudo = pseudonymizer
        self.memo = ScrubMemo()
        self.ident_memo = {}
        self.piece_memo = PieceMemo()
        self.kinds = frozenset(kinds if kinds is not None else STRUCTURED_KINDS)
        unknown = self.kinds - set(STRUCTURED_KINDS)
        if unknown:
            raise ValueError(f"unknown structured kinds {sorted(unknown)}; known: {list(STRUCTURED_KINDS)}")
        self.thresholds = {k: (thresholds or {}).get(k, default_threshold) for k in STRUCTURED_KINDS}
        k = self.kinds
        self._email, self._iban, self._secret = "EMAIL" in k, "IBAN" in k, "SECRET" in k
        self._ipv6 = "IP_ADDRESS" in k
        self._numeric = bool(k & {"PHONE", "CREDIT_CARD", "US_SSN", "IP_ADDRESS"})
        self._ids = bool(k & {"NATIONAL_ID", "PASSPORT"})

    def detect(self, text: str, mask: bytes | None = None, low: str | None = None) -> list[Span]:
        """Candidate spans ``(kind, start, end, score)`` of enabled kinds above threshold, overlaps unresolved.
        ``mask`` and ``low`` (``text.lower()``): when the caller already has them."""
        out: list[Span] = []
        if self._email:
            if "@" in text:
                out.extend(find_emails(text))
            low = lower_same_length(text, low)
            out.extend(find_obfuscated_emails(text, low))
        if self._numeric or self._iban or self._ids:
            mask = mask if mask is not None else make_mask(text)
            if self._numeric and b"0" in mask:
                out.extend(find_numbers(text, mask))
            if self._ids and b"0" in mask:
                out.extend(find_ids(text, mask, lower_same_length(text, low), out))  # after numbers: skips theirs
            if self._iban and b"AA00" in mask:
                out.extend(find_iban(text, mask))
        if self._ipv6 and text.count(":") > 1:  # an IPv6 address has at least two colons
            out.extend(find_ipv6(text))
        if self._secret:
            out.extend(find_secrets(text, low))
        th = self.thresholds
        return [c for c in out if c[0] in self.kinds and c[3] >= th[c[0]]]
