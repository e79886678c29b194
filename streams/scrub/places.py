"""Postcodes and Vietnamese addresses, for the unstructured tier's ADDRESS kind.

Postcodes are found on the byte mask (``A``: capital, ``0``: digit) by literal-led searches of their inward
parts, then checked on the text: UK (``SW1A 1AA``, ``M1 1AE``), Irish Eircodes (``D02 X285``), Canadian
(``M5H 2M9``). Vietnamese addresses are named by their administrative words (Phường, Quận, Đường, ...) and
are looked for only in non-ASCII text that has one.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

Span = tuple[str, int, int, float]

_UK = re.compile(r"(?<![A-Za-z0-9])[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}(?![A-Za-z0-9])")
_UK_INWARD = re.compile(rb" 0AA(?![A-Za-z0-9?])")
_EIR_ROUTING = re.compile(rb"A00 (?<![A-Za-z0-9?]A00 )[A0]{4}(?![A-Za-z0-9?])")
_EIR = re.compile(r"(?:[AC-FHKNPRTV-Y]\d{2}|D6W) [0-9AC-FHKNPRTV-Y]{4}")
_CA = re.compile(rb"A0A 0A0(?![A-Za-z0-9?])")
_CA_TEXT = re.compile(r"[ABCEGHJ-NPRSTVXY]\d[A-Z] \d[A-Z]\d")
_VN_WORDS: Final = ("Phường", "Quận", "Huyện", "Đường", "Phố", "Ngõ", "Hẻm", "Tỉnh", "Thành phố", "TP.", "Xã ")
_VN_UP = "A-ZÀ-ỸĐ"
_VN_WORD = rf"[{_VN_UP}][\wÀ-ỹđĐ]*"
_GAP = r"[^\S\x1f]"  # whitespace, but never scrub_trace's piece separator ("\x1f" is whitespace to re)
_VN = re.compile(
    rf"(?:[Ss]ố{_GAP}+)?\d{{1,5}}[A-Za-z]?(?:/\d{{1,4}})?{_GAP}+(?:(?:Đường|Phố|Ngõ|Hẻm){_GAP}+)?{_VN_WORD}"
    rf"(?:{_GAP}+{_VN_WORD}){{0,3}}"
    rf"|(?:Phường|Quận|Huyện|Xã|Tỉnh|Thành phố|TP\.){_GAP}*(?:\d{{1,3}}|{_VN_WORD}(?:{_GAP}+{_VN_WORD}){{0,3}})")


def find_postcodes(text: str, mask: bytes) -> Iterable[Span]:
    i = mask.find(b" 0AA")
    while i != -1:
        if _UK_INWARD.match(mask, i):
            m = _UK.search(text, max(0, i - 4), i + 4)
            if m:
                yield "ADDRESS", m.start(), m.end(), 0.8
        i = mask.find(b" 0AA", i + 4)
    if b"00 " in mask:
        for m in _EIR_ROUTING.finditer(mask):
            if _EIR.fullmatch(text, m.start(), m.end()):
                yield "ADDRESS", m.start(), m.end(), 0.8
    if b"0A 0" in mask:
        for m in _CA.finditer(mask):
            if _CA_TEXT.fullmatch(text, m.start(), m.end()):
                yield "ADDRESS", m.start(), m.end(), 0.8


def find_vn_addresses(text: str) -> Iterable[Span]:
    """In a text (or, in scrub_trace's joined text, a piece of it) that has an administrative word."""
    if text.isascii() or not any(w in text for w in _VN_WORDS):
        return
    pos = 0
    for piece in text.split("\x1f") if "\x1f" in text else (text,):
        if not piece.isascii() and any(w in piece for w in _VN_WORDS):
            for m in _VN.finditer(piece):
                if not m.group().isascii():  # a Vietnamese name in it: not "12 Oak" in a mixed text
                    yield "ADDRESS", pos + m.start(), pos + m.end(), 0.75
        pos += len(piece) + 1
