"""National identifiers and passport numbers: checksummed or distinctive shapes, or any id-like value after a cue.

Kinds ``NATIONAL_ID`` (UK NINO, French INSEE, German Steuer-ID, Spanish DNI/NIE, Italian codice fiscale, Indian
Aadhaar/PAN, Canadian SIN, Australian TFN, Irish PPSN, Vietnamese CCCD, and any id after a national-id word) and
``PASSPORT`` (an id after a passport word). Candidates are found on the byte mask from digit groups (a literal-led
search), never by scanning for cue words: only the 60 characters before a candidate are searched for a cue.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from streams.scrub.base import piece_start
from streams.scrub.checks import luhn_ok

Span = tuple[str, int, int, float]
ID_KINDS: Final = ("NATIONAL_ID", "PASSPORT")

# A run of alphanumeric groups with digits: an optional letter prefix ("QQ ", "Y-"), groups that contain a digit
# joined by one separator, an optional 1-2 letter suffix (" C", "-R", "TA").
_ID_SEQ = re.compile(r"(?<![A-Za-z0-9])(?P<pre>[A-Z]{1,3}[ -]?)?[A-Za-z]{0,8}\d[A-Za-z0-9]{0,24}"
                     r"(?:[ ./-]\d[A-Za-z0-9]{0,12}){0,6}(?:-?[A-Za-z]{1,2}|[ -][A-Z]{1,2})?(?![A-Za-z0-9])")
# where a sequence can be, on the mask: a digit group of 7+ characters, three digits in a row (every PAN, codice
# fiscale, DNI has them), or digits and capitals alternating ("C4J8K2L9M"). Literal-led ("0"), so re skips ahead.
_A_DIGIT = re.compile(r"\d")  # the same class as _ID_SEQ's digits
_SEQ_MASK = re.compile(rb"0(?:[0 \-.()/]{5,200}0|00|A0A0)")
_TAG_HEAD = re.compile(r"<[A-Z][A-Z_]{1,30}_$")
_DATE_SHAPE = re.compile(r"\d{1,4}([-./])\d{1,2}\1\d{1,4}")  # where a sequence can be (on the mask)
_PASSPORT_CUE = re.compile(r"(?:passports?|passeport|pasaporte|passaporto|reisepass|pass-?nr|h\u1ed9 chi\u1ebfu|"
                           r"travel document|document (?:no|number|#))(?![a-z])")
_ID_CUE = re.compile(
    r"(?<![a-z])(?:ni (?:number|no)|nino|national insurance|national[ _-]?id|nat(?:ional)? id|id[ _-]?(?:number|no|card)|"
    r"identity (?:number|card|no)|identification|ssn|social security|social insurance|sin|tfn|tax file|tax[ _-]?id|"
    r"tin|ppsn?|pps (?:number|no)|aadhaa?r|uid|pan|dni|nie|nif|insee|s\u00e9curit\u00e9 sociale|securite sociale|"
    r"num\u00e9ro de s\u00e9cu|steuer[ -]?id|idnr|steuer-?identifikationsnummer|steuernummer|codice fiscale|cf|cccd|"
    r"cmnd|c\u0103n c\u01b0\u1edbc|personnummer|bsn|pesel|nric|national number|personal number)(?![a-z])")
_NINO = re.compile(r"([A-Z]{2}) ?(\d\d) ?(\d\d) ?(\d\d) ?([A-D])")
_NINO_BAD_PREFIX: Final = frozenset({"BG", "GB", "NK", "KN", "NT", "ZZ"})
_CF = re.compile(r"(?i)[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]")
_PAN = re.compile(r"(?i)[A-Z]{3}[PCHFATBLJG][A-Z]\d{4}[A-Z]")
_DNI = re.compile(r"(?i)(\d{8})[ -]?([A-Z])")
_NIE = re.compile(r"(?i)([XYZ])[ -]?(\d{7})[ -]?([A-Z])")
_PPSN = re.compile(r"(?i)(\d{7})([A-W])([ABHW]?)")
_DIGITS = re.compile(r"\D")
_AADHAAR_GROUPS = re.compile(r"\d{4}([ -])\d{4}\1\d{4}")
_STEUER_GROUPS = re.compile(r"\d{2} \d{3} \d{3} \d{3}")
_DNI_LETTERS: Final = "TRWAGMYFPDXBNJZSQVHLCKE"
_VERHOEFF_D: Final = ("0123456789", "1234067895", "2340178956", "3401289567", "4012395678", "5987604321",
                      "6598710432", "7659821043", "8765932104", "9876543210")
_VERHOEFF_P: Final = ("0123456789", "1576283094", "5803796142", "8916043527", "9453126870", "4286573901",
                      "2793806415", "7046913258")


def verhoeff_ok(digits: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = int(_VERHOEFF_D[c][int(_VERHOEFF_P[i % 8][int(ch)])])
    return c == 0


def steuer_id_ok(d: str) -> bool:
    """German tax id: 11 digits, ISO 7064 MOD 11,10 check digit."""
    if len(d) != 11 or d[0] == "0":
        return False
    prod = 10
    for ch in d[:10]:
        t = (int(ch) + prod) % 10 or 10
        prod = t * 2 % 11
    check = 11 - prod
    return (0 if check == 10 else check) == int(d[10])


def insee_ok(s: str) -> bool:
    s = s.upper()
    if len(s) != 15 or s[0] not in "12":
        return False
    body = s[:13].replace("2A", "19").replace("2B", "18")
    return body.isdigit() and s[13:].isdigit() and 97 - int(body) % 97 == int(s[13:])


def tfn_ok(d: str) -> bool:
    return len(d) == 9 and sum(int(a) * w for a, w in zip(d, (1, 4, 3, 7, 5, 8, 6, 9, 10))) % 11 == 0


def ppsn_ok(digits: str, letter: str) -> bool:
    return "WABCDEFGHIJKLMNOPQRSTUV"[sum(int(c) * w for c, w in zip(digits, range(8, 1, -1))) % 23] == letter.upper()


def _shape(seq: str) -> bool:
    """Whether ``seq`` (an id-like sequence) is a national id by its own shape and checksum, with no cue."""
    m = _NINO.fullmatch(seq)
    if m and m.group(1) not in _NINO_BAD_PREFIX:
        return True
    if _CF.fullmatch(seq) or _PAN.fullmatch(seq):
        return True
    m = _DNI.fullmatch(seq)
    if m and _DNI_LETTERS[int(m.group(1)) % 23] == m.group(2).upper():
        return True
    m = _NIE.fullmatch(seq)
    if m and _DNI_LETTERS[int("XYZ".index(m.group(1).upper()).__str__() + m.group(2)) % 23] == m.group(3).upper():
        return True
    m = _PPSN.fullmatch(seq)
    if m and ppsn_ok(m.group(1), m.group(2)):
        return True
    compact = seq.replace(" ", "").replace("-", "").replace(".", "")
    if len(compact) == 15 and insee_ok(compact):
        return True
    if not compact.isdigit():
        return False
    n = len(compact)
    # Unformatted digit runs are phone or order numbers as often as ids: without a cue only in the usual grouping.
    if n == 12 and _AADHAAR_GROUPS.fullmatch(seq) and compact[0] in "23456789" and verhoeff_ok(compact):
        return True
    if n == 11 and _STEUER_GROUPS.fullmatch(seq) and steuer_id_ok(compact):
        return True
    # SIN (Luhn) and TFN (weighted): 9 digits written in three groups
    return n == 9 and len(seq) == 11 and seq[3] == seq[7] and seq[3] in " -" and (luhn_ok(compact) or tfn_ok(compact))


def find_ids(text: str, mask: bytes, low: str, taken: list[Span] = ()) -> Iterable[Span]:  # type: ignore[assignment]
    """``(kind, start, end, score)`` of national ids and passport numbers; ``low`` is ``text.lower()``, 1:1.
    ``taken``: spans other structured detectors found (emails, phones, cards, IPs); their digits are not looked at."""
    if taken:  # blank them out of the mask: most digit groups in traffic are theirs
        blanked = bytearray(mask)
        for t in taken:
            blanked[t[1]:t[2]] = b" " * (t[2] - t[1])
        mask = bytes(blanked)
    scanned, pieces = -1, "\x1f" in text
    for w in _SEQ_MASK.finditer(mask):
        if text[w.end():w.end() + 1] == "@":
            continue  # digits of an email's local part
        ws = w.start() - 16 if w.start() > 16 else 0
        if pieces and "\x1f" in text[ws:w.start()]:  # never reach back into another piece of scrub_trace's text
            ws = piece_start(text, w.start())
        stop, pos = w.end(), max(ws, scanned)  # windows overlap: a sequence is looked at once
        while True:
            # a sequence has a digit within its first 13 characters, so none starts before the next digit - 12:
            # the search begins there (the same leftmost match; most searches then end at once, with no digit near)
            d = _A_DIGIT.search(text, pos, stop + 40)
            if d is None or d.start() - 12 > stop:
                break
            found = _ID_SEQ.search(text, max(pos, d.start() - 12), stop + 40)  # bounded: where a sequence starts ...
            if not found or found.start() > stop:
                break
            m = _ID_SEQ.match(text, found.start()) or found  # ... and unbounded: where it ends
            s, e = m.span()
            pos = e if e > pos else pos + 1
            if text[e:e + 1] == "@":  # an email's local part ("patel235@..."): the email detector's
                continue
            seq = m.group()
            if s and text[s - 1] == "_" and _TAG_HEAD.search(text, max(0, s - 32), s):
                continue  # the digest of a pseudonym ("<PASSPORT_2e322456>"): scrubbed already
            if _DATE_SHAPE.fullmatch(seq):  # dates are the DOB detector's
                continue
            compact = _DIGITS.sub("", seq)
            if len(compact) < 3 or sum(c.isalnum() for c in seq) < 6:
                continue
            pre = m.end("pre") if m.group("pre") else s  # "TFN 123 456 782": the prefix may be the cue itself
            before = low[s - 60 if s > 60 else 0:pre]
            cut = before.rfind("\x1f")  # never read a cue from another field's piece
            if cut >= 0:
                before = before[cut:]
            kind = "PASSPORT" if _PASSPORT_CUE.search(before) else "NATIONAL_ID" if _ID_CUE.search(before) else None
            if kind is None and e - s <= 24 and _shape(seq):
                kind = "NATIONAL_ID"
            elif kind is not None and pre > s and (_ID_CUE.search(low, s, pre) or _PASSPORT_CUE.search(low, s, pre)):
                s = pre  # the cue word stays
            if kind is not None:
                yield kind, s, e, 0.85
        scanned = pos
