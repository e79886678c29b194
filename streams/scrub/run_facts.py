"""What a capitalised run tells by itself, before any context is read: tokens, word-list hits, name shape, and the
verdicts that need no context (organisation suffixes, known places, a title first). Cached per run by
``EntityDetector``: runs recur in new contexts far more often than new runs come.
"""
from __future__ import annotations

import re
from typing import Final, NamedTuple

from streams.scrub import lexicon as L

Span = tuple[str, int, int, float]
_PARTICLES: Final = frozenset({"de", "van", "von", "da", "del", "bin"})  # need not look like names
_NOT_NAME_ENDINGS: Final = ("tion", "sion", "ment", "ness", "ship", "ity", "ence", "ance", "ings", "ism", "ology",
                            "day", "days", "ers", "ies", "ful", "less", "ive", "ical", "ics")
_TOKEN_IN_RUN = re.compile(r"[^ ,]+")
_PART_BREAK = re.compile(r", |\. ")


def _is_title(tok: str) -> bool:
    return tok.lower() in L.TITLES


class _Run(NamedTuple):
    """What a capitalised run tells by itself (``_run_facts``); offsets are relative to the run."""

    verdict: tuple[Span, ...] | None  # decided without context: a non-name word, an organisation, a place, title first
    place_prefix: bool  # "New ...", "Port ...": a place after a place cue
    kept: int  # offset of the first word kept once leading non-name words are dropped; -1: none is kept
    place: bool  # the kept words are a known place
    words: int  # number of kept words
    first_hit: bool  # the first kept word is a census first name
    last_hit: bool  # two or more kept words, the last a census surname
    placey: bool  # place morphology: "Port Hope", "Springfield", "Silver Lake"
    nameish: bool  # every kept word looks like a name
    upper: bool  # the whole run is upper case


def org_suffix(w: str) -> bool:
    """``w`` (a word_key) is an organisation suffix, also glued: "co.ltd", "holdings"."""
    return w in L.ORG_SUFFIX or ("." in w[:-1] and w.rsplit(".", 1)[-1] in L.ORG_SUFFIX)


def word_key(tok: str) -> str:
    """A run's word as the word lists hold it: lower case, no "." or ",", no possessive ("Richard's")."""
    w = tok.lower().strip(".,")
    return w[:-2] if w.endswith(("'s", "’s")) and len(w) > 3 else w


def run_parts(chunk: str) -> list[tuple[int, str]]:
    """A run cut at ", " and at a sentence end ("Cyprus. Producer Aili"; not "Mr. X" or an initial "L. Kluge"):
    ``(offset, part)`` pairs, for runs that as a whole are no entity ("Bruno, Stacey, Laurie, Paul")."""
    out, start = [], 0
    for m in _PART_BREAK.finditer(chunk):
        head = chunk[start:m.start()]
        last = head.rsplit(" ", 1)[-1]
        if m.group() == ". " and (len(last) < 3 or last.lower() + "." in L.TITLES or last.lower() in L.TITLES):
            continue
        out.append((start, head))
        start = m.end()
    out.append((start, chunk[start:]))
    return [(a, p) for a, p in out if p]


def _decided(*verdict: Span) -> _Run:
    """A run whose verdict needs no context."""
    return _Run(verdict, False, -1, False, 0, False, False, False, False, False)


def _run_facts(chunk: str, first: frozenset[str], last: frozenset[str]) -> _Run:
    """The rules that need only the run (the first ones, which may decide it) and the facts the others read."""
    if " " in chunk or "," in chunk:
        spans = [(m.start(), m.group()) for m in _TOKEN_IN_RUN.finditer(chunk)]  # offsets survive ", " joins
        toks = [t for _, t in spans]
        lows = [word_key(t) for t in toks]
    else:  # one word (most runs): what the tokenising regex would give
        spans, toks, lows = [(0, chunk)], [chunk], [word_key(chunk)]
    n = len(chunk)
    if len(lows) == 1 and (lows[0] in L.NOT_NAME or len(lows[0]) < 2):  # "I", "The", "Monday": most runs
        return _decided()
    whole = " ".join(lows)
    # organisations: suffix grammar, "University of X", known names
    if len(toks) >= 2 and (org_suffix(lows[-1]) or not L.ORG_SUFFIX.isdisjoint(lows[1:]) and
                           lows[-1] not in L.STREET_SUFFIX):
        return _decided(("ORGANIZATION", 0, n, 0.8))
    if lows[0] in ("university", "bank", "institute", "college", "museum", "hospital") and len(toks) >= 3:
        return _decided(("ORGANIZATION", 0, n, 0.75))
    if whole in L.ORG_WORDS:
        return _decided(("ORGANIZATION", 0, n, 0.7))
    # places: gazetteer, then morphology with a cue
    if whole in L.COUNTRIES or whole in L.US_STATES or whole in L.CITIES:
        return _decided(("LOCATION", 0, n, 0.85))
    # people: a title first (a title just before is read in _classify)
    if _is_title(toks[0]) and len(toks) >= 2:
        return _decided(("PERSON", spans[1][0], n, 0.9))
    place_prefix = len(toks) >= 2 and lows[0] in L.PLACE_PREFIX
    # drop leading words that are not names ("The", "Please", "Monday")
    k = 0
    while k < len(lows) and lows[k] in L.NOT_NAME:
        if lows[k] in L.TITLES and k + 1 < len(lows) and lows[k + 1] not in L.NOT_NAME:
            return _decided(("PERSON", spans[k + 1][0], n, 0.9))  # "Dear Mr. Okonjo": a title after a dropped word
        k += 1
    if k == len(lows) or n - spans[k][0] < 2:
        return _Run(None, place_prefix, -1, False, 0, False, False, False, False, False)
    kept = spans[k][0]
    place = False  # with no word dropped, the whole run was looked up above
    if k:
        toks, lows = toks[k:], lows[k:]
        whole = " ".join(lows)
        place = whole in L.COUNTRIES or whole in L.US_STATES or whole in L.CITIES
    placey = (lows[0] in L.PLACE_PREFIX and len(toks) >= 2) or (len(toks) == 1 and lows[0].endswith(L.PLACE_SUFFIX)) \
        or (len(toks) >= 2 and lows[-1] in ("lake", "city", "falls", "springs", "beach", "island", "valley", "bay"))
    nameish = True
    for t, w in zip(toks, lows):
        if len(w) > 1 and w not in _PARTICLES and not (t[:1].isupper() and not t.isupper() and w not in L.NOT_NAME
                                                        and not w.endswith(_NOT_NAME_ENDINGS)):
            nameish = False
            break
    return _Run(None, place_prefix, kept, place, len(toks), lows[0] in first, len(toks) >= 2 and lows[-1] in last,
                placey, nameish, chunk.isupper())
