"""Unstructured tier without a model: person names, street addresses, places, organisations, dates of birth.

Fast heuristics rather than NER, so the stream stays fast: capitalised runs are found on the same 1:1 byte mask
the structured tier uses (a literal-led search, quick in ``re``) and classified by name grammar — organisation
suffixes, street grammar, place morphology, titles, a census first-name/surname list — and by context cues
("my name is", "Mr.", "born on", "lives in"). Scores below the configured threshold are dropped.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from operator import itemgetter
from typing import Final

from streams.scrub import lexicon as L
from streams.scrub.base import piece_end, piece_start
from streams.scrub.places import find_postcodes, find_vn_addresses
from streams.scrub.run_facts import _Run, _run_facts, run_parts
from streams.scrub.regex import lower_same_length, make_mask

Span = tuple[str, int, int, float]
UNSTRUCTURED_KINDS: Final = ("PERSON", "ADDRESS", "LOCATION", "ORGANIZATION", "DATE_OF_BIRTH")
_RUN_KINDS: Final = frozenset({"PERSON", "LOCATION", "ORGANIZATION"})  # what capitalised runs can be

# On the mask (A-Z -> "A", digits -> "0", non-ASCII -> "?"): runs of capitalised or upper-case tokens.
_PART = rb"(?:de|da|del|della|van|von|der|den|di|du|la|le|bin|ibn|al|dos|das|y|e|&)"
_RUN = re.compile(rb"A[a-zA?'.&-]{0,40}(?:(?: |, )(?:" + _PART + rb" )?A[a-zA?'.&-]{0,40}){0,5}")
# non-ASCII text: a token may also start with a non-ASCII capital ("Šefka", "ΛΕΥΚΩΣΙΑ"), checked with isupper()
_RUN_WIDE = re.compile(rb"[A?][a-zA?'.&-]{0,40}(?:(?: |, )(?:" + _PART + rb" )?[A?][a-zA?'.&-]{0,40}){0,5}")
# What _runs searches: the runs of _RUN that can be entities, found faster. A token never gives characters back
# (what follows one is never a token character); a run goes on only where " " or ", " and a capital (or a particle,
# 1-5 of [a-z&], and one) follow, tested before the group is entered; and a lone one-letter run ("I", "Q") is left
# out: it is never an entity. Tests check it against _RUN.
_GOES_ON = rb",? (?:A|[a-z&]{1,5} A)"
_RUN_FAST = re.compile(rb"A(?=[a-zA?'.&-]|" + _GOES_ON + rb")[a-zA?'.&-]{0,40}+"
                       rb"(?:(?=" + _GOES_ON + rb")(?: |, )(?:" + _PART + rb" )?A[a-zA?'.&-]{0,40}+){0,5}+")
# _RUN_WIDE treats "A" and "?" alike everywhere, so on a non-ASCII text's mask with "?" made "A" the _RUN patterns
# find its runs, and their search is literal-led (a class-led one tests every position: slow).
_WIDE_AS_RUN: Final = bytes.maketrans(b"?", b"A")


def wide_run_mask(text: str, mask: bytes) -> bytes:
    """The mask a non-ASCII text's runs are searched on: non-ASCII characters as "A" (a token may start with one),
    a literal "?" as "'" (inside a token, as in an ASCII text's mask, but never its start: "Что? Anna" keeps Anna)."""
    if "?" in text:
        mask = make_mask(text.replace("?", "'"))
    return mask.translate(_WIDE_AS_RUN)
# Context cues: the last one to three words before a run (set lookups; a regex anchored at the end would be tried
# at every position of the context).
_PERSON_CUES: Final = frozenset("""my name is|name is|name's|i am|i'm|this is|call me|named|called|dear|hi|hello|hey|
thanks|thank you|regards|sincerely|signed|by|with|contact|ask|tell|meet|met|and|commenter|assistant to|married|
son of|daughter of|wife|husband|friend|colleague|patient|client|customer|user|employee|author|producer|director|
manager|ceo|founder|cc|attn|from:|to:|spoke to|talked to|speak to|speak with|according to|name|name?|kid|child|boss|
neighbour|neighbor|partner|says|said|starring|featuring|actor|actress|singer""".replace("\n", "").split("|"))
_LOC_CUES: Final = frozenset("""in|from|to|near|visit|visiting|visited|across|around|toward|towards|left|entered|of|
flew to|moved to|born in|live in|lives in|lived in|living in|based in|city of|town of|travel to|trip to|located in|
returned to""".replace("\n", "").split("|"))


def _cue_phrases(before: str) -> frozenset[str]:
    """The last one, two and three words before a run (and without trailing ',' / ':'), for cue lookups."""
    if not before[-1:].isspace():
        return frozenset()
    ws = before.split()[-3:]
    out = set()
    for i in range(len(ws)):
        p = " ".join(ws[i:])
        out.add(p)
        out.add(p.rstrip(",:"))
    return frozenset(out)


# Every cue phrase ends with one of these words, so a context whose last word is none of them has no cue.
_CUE_ENDS: Final = frozenset(c.rsplit(" ", 1)[-1] for c in _PERSON_CUES | _LOC_CUES)
_NO_CUE: Final = (False, False)
_TITLES: Final = L.TITLES


def _cue_flags(before: str) -> tuple[bool, bool]:
    """Whether ``_cue_phrases(before)`` holds a person cue and a place cue. Most contexts end in a word that ends
    no cue: that is one set lookup, not the phrase set built and searched."""
    if not before[-1:].isspace():
        return _NO_CUE
    last = before.rsplit(None, 1)[-1:]  # the last word, as before.split()[-1]; [] when all whitespace
    if not last or (last[0] not in _CUE_ENDS and last[0].rstrip(",:") not in _CUE_ENDS):
        return _NO_CUE
    phrases = _cue_phrases(before)
    return not phrases.isdisjoint(_PERSON_CUES), not phrases.isdisjoint(_LOC_CUES)


# "\x1f" (scrub_trace's piece separator) is whitespace to re: the gaps here never cross it
_NAME_LOWER_CUE = re.compile(r"(?:my name is|name is|i am|i'm|this is|call me)[^\S\x1f]+([a-z][a-z'-]{1,30})"
                             r"(?:[^\S\x1f]+([a-z][a-z'-]{1,30}))?")
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
          r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE = (r"(\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}|" + _MONTH +
         r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+\d{4})")
_DOB = re.compile(r"(?i)(?:born(?:\s+on)?|\bdob\b|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|birthday)[^\n]{0,30}?" + _DATE)
_OLD_DATE_MASK = re.compile(rb"00?[/.-]00?[/.-]0000(?!0)")  # literal-led: fast skip
_OLD_YEAR = re.compile(r"19\d\d|200\d|201[0-2]")
_DOB_CUES: Final = ("born", "dob", "d.o.b", "birth")
# Street grammar, number first (the common case in free text): "12 Oak Street", "46 rue Nationale",
# "28171 ul. Siostrzana 48", "307 Alvaro Cunqueiro 55" (number, 1-4 words, house number), then unit and place tail.
def _alt(words: frozenset[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


_NUM = r"\d{1,6}[A-Za-z]?(?:[ -]\d{1,5})?"
_W = r"[^\W\d_][\w'’.-]{0,30}"
_UW = r"[^\W\d_a-z][\w'’.-]{0,30}"  # a word that does not start lower-case
_ADDR = re.compile(
    _NUM + r"\s+(?:"
    r"(?:[NSEW]\.?\s+)?(?:" + _W + r"\s+){0,4}?(?i:" + _alt(L.STREET_SUFFIX) + r")(?![\w-])\.?(?:\s+\d{1,5}\b)?"
    r"|(?i:" + _alt(L.STREET_PREFIX) + r")\.?\s+" + _W + r"(?:\s+" + _W + r"){0,3}(?:\s+\d{1,5}\b\.?)?"
    r"|" + _UW + r"(?:\s+" + _W + r"){0,3}\s+\d{1,5}\b\.?"
    r")"
)
_SEP = r"(?:,\s*|[ \t]*(?:\n|\\n)[ \t]*(?:,\s*)?|[ \t]+)"  # also a JSON-escaped "\n"
_UNIT = re.compile(_SEP + r"(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|Room|Bldg|#)\.?\s*#?\d{1,5}[A-Za-z]?")
_TAIL = re.compile(_SEP +
                   r"((?:[^\W\d_][\w'’.-]{1,30}|\d{4,5}(?:-\d{4})?)(?:[ -](?:[^\W\d_][\w'’.-]{1,30}|"
                   r"\d{4,5}(?:-\d{4})?)){0,4})")
_STREET_FIRST = re.compile(r"[^\W\d_][\w'’.-]{0,40}(?:\s[^\W\d_][\w'’.-]{0,30}){0,3}\s\d{1,5}\b")
_MILITARY = re.compile(r"(?:(?:USNS|USNV|USS|USCGC)\s+[A-Z][\w'-]+|PSC\s+\d{4},?\s+Box\s+\d{4}|Unit\s+\d{4},?\s+Box"
                       r"\s+\d{4})\s*\n?\s*[ADF]PO\s+A[AEP]\s+\d{5}")
# a glued street suffix ("...straat", "...weg") at the end of a " "-separated word: a necessary condition for one
_GLUED_AT_WORD_END = re.compile("(?:" + _alt(frozenset(L.STREET_SUFFIX_GLUED)) + r")(?= |\Z)")
# On the mask: a digit group of at most 6 that does not follow a digit, "A", "a", "?" or one of ".-/:+$#" (no house
# number does). Literal-led (the lookbehind comes after the first "0"), so re skips ahead fast.
_HOUSE_NUMBER = re.compile(rb"0(?<![0Aa?.\-/:+$#]0)0{0,5}(?!0)")
# The house numbers _addresses can use, with its cheap byte checks done in the search instead of per number in
# Python: followed by " " or "-" (what a number-first match starts with), or preceded by a space at offset 3 or
# more and followed by neither a letter or digit nor a space and a lower-case letter (number after the street).
_HOUSE_NUMBER_CANDIDATE = re.compile(rb"0(?<![0Aa?.\-/:+$#]0)(?:(?<=[\x00-\xff]{2} 0)(?P<after>)|)0{0,5}(?!0)"
                                     rb"(?:(?=[ -])|(?(after)(?![A-Za-z0-9]| [a-z])|(?!)))")
_MEMO_MAX = 50_000
_START = itemgetter(1)
_LOWER_WORD = re.compile(r"[^\W\d_][^\W\d_'’-]*(?:['’-][^\W\d_]+)?")
# ASCII characters that end a _LOWER_WORD word, as spaces: split() then gives every word it can start with
_ASCII_NON_WORD: Final = {c: " " for c in range(128) if not chr(c).isalpha() and chr(c) not in "'-"}
_APOSTROPHE_OR_HYPHEN = re.compile("['’-]")
# ASCII bytes that are not letters, as spaces: split() then gives an ASCII text's maximal runs of letters
_ASCII_LETTERS_ONLY: Final = bytes(c if chr(c).isascii() and chr(c).isalpha() else 32 for c in range(256))
_LOWER_CUES: Final = frozenset("tell ask cc dear hi hello hey thanks regards is was for with from to by contact and "
                               "meet call email message ping loop manager named called".split())
_CAPS_AFTER_COMMA = re.compile(r", [A-Z0-9]{2,}(?![a-z])")
# after a building number on the mask: (another number,) then a capitalised/non-ASCII word or a short street word
_NUMBER_FIRST_NEXT = re.compile(rb"(?:[ -]0{1,5})? (?:[A?]|[a-z]{2,6}\.? [A?])")


def _sentence_start(text: str, s: int, floor: int = 0) -> bool:
    """Whether the run at ``s`` starts a sentence; ``floor``: the start of its piece (nothing before it is read)."""
    prev_char = text[max(floor, s - 12):s].rstrip(" \t\"'(")[-1:] if s > floor else ""  # bounded: no O(n) copy
    return prev_char in ("", ".", "!", "?", "\n", ":", "}", "]", ">", "\x1f") or text[max(floor, s - 2):s] == "\\n"


def _intro_cue(text: str, low: str | None) -> bool:
    """A self-introduction cue in ``text`` ("my name is", "I'm", "call me", ...), exactly as cased here. Each test is
    a pass over the text, so the lower-cased text (already at hand) rules most texts out in five passes, not nine."""
    if low is not None and not ("name" in low or "i'm" in low or "i am" in low or "this is" in low
                                or "call me" in low):
        return False
    return ("name" in text or "i'm" in text or "i am" in text or "this is" in text or "call me" in text
            or "Name" in text or "I'm" in text or "I am" in text or "This is" in text)


class EntityDetector:
    """Candidate spans of the unstructured kinds; ``detect(text, mask)`` shares the structured tier's mask."""

    def __init__(self, kinds: Iterable[str] = UNSTRUCTURED_KINDS) -> None:
        self.kinds = k = frozenset(kinds)
        self.first, self.last = L.names("first"), L.names("last")
        self._pair_firsts = self.first - L.NOT_NAME  # the words a lower-case pair can start with
        self._pair_heads = frozenset(_APOSTROPHE_OR_HYPHEN.split(w, 1)[0].encode() for w in self._pair_firsts
                                     if w.isascii())  # their letters before any "'" or "-", for ASCII texts
        self._memo: dict[tuple, tuple[Span, ...]] = {}  # raw context key -> verdict (see _runs)
        self._run_facts: dict[str, _Run] = {}  # run -> _run_facts(run)
        self._address, self._dob = "ADDRESS" in k, "DATE_OF_BIRTH" in k
        self._names = bool(k & _RUN_KINDS)
        self._all_names = _RUN_KINDS <= k  # then nothing _runs finds needs filtering by kind
        self.strict_names = False  # the strict tier's lower-case name rule (see lowercase_pairs)

    def detect(self, text: str, mask: bytes, low: str | None = None) -> list[Span]:
        """``low``: ``text.lower()`` when the caller already has it (the structured tier needs it too)."""
        out: list[Span] = []
        digits = b"0" in mask
        if self._address and digits:
            out.extend(self._addresses(text, mask))
            out.extend(find_postcodes(text, mask))
            out.extend(find_vn_addresses(text))
        if self._dob and digits:
            if low is None:
                low = text.lower()
            if "born" in low or "dob" in low or "d.o.b" in low or "birth" in low:  # _DOB_CUES, unrolled
                out.extend(("DATE_OF_BIRTH", m.start(1), m.end(1), 0.9) for m in _DOB.finditer(text))
            # without a cue, a full numeric date in a birth-year range is still likely a DOB in support traffic
            for m in _OLD_DATE_MASK.finditer(mask) if b"0000" in mask else ():  # a year: four digits in a row
                if _OLD_YEAR.match(text, m.end() - 4) and (m.start() == 0 or not text[m.start() - 1].isalnum()):
                    out.append(("DATE_OF_BIRTH", m.start(), m.end(), 0.55))
        if self._names:
            runs = self._runs(text, mask, low)
            if self._all_names:
                out.extend(runs)
            else:
                k = self.kinds
                out.extend(s for s in runs if s[0] in k)
        return out

    # -- addresses ---------------------------------------------------------------------------------------------
    def _addresses(self, text: str, mask: bytes) -> list[Span]:
        out: list[Span] = []
        pieces = "\x1f" in text
        if "PO A" in text:
            for m in _MILITARY.finditer(text):
                out.append(("ADDRESS", m.start(), m.end(), 0.9))
        end = -1
        for n in _HOUSE_NUMBER_CANDIDATE.finditer(mask):  # the numbers of _HOUSE_NUMBER the checks below can pass
            s, e = n.span()
            if s < end:
                continue
            # number first ("12 Oak Street", "46 rue Nationale"): the next word is capitalised or a street word
            if mask[e:e + 1] in b" -" and _NUMBER_FIRST_NEXT.match(mask, e, e + 12):  # it starts with " " or "-"
                m = _ADDR.match(text, s, piece_end(text, s) if pieces else len(text))
                if m and "\n" not in m.group():
                    end = self._tail(text, m.end())
                    out.append(("ADDRESS", s, end, 0.8))
                    continue
            # house number after the street name ("Wilgenlaan 40", "ul. Siostrzana 48"): a street word close before
            nxt = mask[e:e + 2]
            if s >= 3 and mask[s - 1] == 32 and not (nxt[:1].isalnum() or (nxt[:1] == b" " and nxt[1:].islower())):
                a = s - 45 if s > 45 else 0
                if pieces and "\x1f" in text[a:s]:
                    a = piece_start(text, s)  # a street word in the string before is not this one's
                ws = self._street_word_start(text, a, s)
                if ws >= 0:
                    sm = _STREET_FIRST.match(text, ws)
                    if sm and sm.end() == e:
                        end = self._tail(text, e)
                        out.append(("ADDRESS", ws, end, 0.75))
        return out

    @staticmethod
    def _street_word_start(text: str, a: int, b: int) -> int:
        """Start of the first street word ("rue", "ul.", "...straat") in the last few words before a house number."""
        window = text[a:b]
        low = window.lower()  # per word as w.lower() below: lower() maps no character to or from a space
        if L.STREET_PREFIX.isdisjoint(low.split(" ")) and not _GLUED_AT_WORD_END.search(low):
            return -1  # the common case: no street word at all
        pos = a
        for w in window.split(" "):
            wl = w.lower()
            if wl in L.STREET_PREFIX or (len(wl) > 4 and wl.endswith(L.STREET_SUFFIX_GLUED)):
                return pos if text.find("\n", pos, b) < 0 else -1  # street word and number on one line
            pos += len(w) + 1
        return -1

    @staticmethod
    def _tail(text: str, pos: int) -> int:
        """Extend over a unit, city, region, postal code and country after the street part."""
        for _ in range(5):
            u = _UNIT.match(text, pos)
            if u:
                pos = u.end()
                continue
            t = _TAIL.match(text, pos)
            if not t:
                break
            seg = t.group(1)
            words = re.split(r"[ -]", seg)
            good = 0
            for w in words:
                if not (w.lower() in L.COUNTRIES or w in L.STATE_ABBR or w[:1].isdigit() or w == "nan"
                        or (w[:1].isupper() and w.lower() not in L.NOT_NAME)):
                    break
                good += 1
            sep = text[pos:t.start(1)]
            if not good or (sep.strip(" \t") == "" and not (words[0] in L.STATE_ABBR or words[0][:1].isdigit()
                                                            or words[0].isupper() or words[0].lower() in L.COUNTRIES)):
                break  # a bare space continues only into a postal code, a state code, an upper-case city, a country
            if good < len(words):  # keep the place words, stop before the sentence goes on
                pos = t.start(1) + len(" ".join(words[:good]))
                break
            pos = t.end()
        return pos

    # -- capitalised runs: people, places, organisations ----------------------------------------------------------
    def _runs(self, text: str, mask: bytes, low: str | None = None) -> list[Span]:
        out: list[Span] = []
        wide = not text.isascii()
        memo, not_name = self._memo, L.NOT_NAME
        get = memo.get
        tags = "<" in text  # pseudonyms (a text scrubbed before): their runs are skipped
        rest: list[tuple[int, int]] = []
        # scrub_trace's joined strings: a run's context starts no earlier than its own string (``floor``)
        floor, sep = 0, text.find("\x1f")
        for m in _RUN_FAST.finditer(wide_run_mask(text, mask) if wide else mask):  # wide: as _RUN_WIDE
            s, e = m.span()
            if 0 <= sep < s:
                floor, sep = piece_start(text, s), text.find("\x1f", s)
            if wide and not text[s].isupper():
                continue
            chunk = text[s:e]
            if " " not in chunk and chunk.lower() in not_name:  # "I", "The", "Monday": most runs, decided at once
                continue
            if tags and text[s - 1:s] == "<" and text[e:e + 1] == "_":  # a pseudonym already ("<PASSPORT_2e322456>")
                continue
            if ", " in chunk:
                # "Arjun Mehta, PAN AFZPM", "Kulusuk, HSIL Ltd": an upper-case word after a comma starts a new run (a
                # cue or an organisation); the rest is classified apart, after this loop
                cut = _CAPS_AFTER_COMMA.search(chunk)
                if cut:
                    rest.append((s + cut.start() + 2, e))
                    e = s + cut.start()
                    chunk = text[s:e]
            # the common path, inline (_emit does the same for the cut-off runs): a call per run costs ~3 us a trace
            if chunk[-1] in ".,'-&":
                chunk = self._trim(chunk)
                if not chunk:
                    continue
                e = s + len(chunk)
            # The verdict depends only on the run and a little context, and agent traffic repeats boilerplate, so
            # verdicts are memoised (bounded) by the raw context: one slice (context, run, next two characters) and
            # the run's place in it, hashed once. On a miss _classify reads only a few context features: what the
            # run itself tells is cached per run (_run), and runs recur in new contexts far more than new runs come.
            lo = s - 24 if s - 24 > floor else floor
            raw_key = (text[lo:e + 2], s - lo, e - s)
            hit = get(raw_key)
            if hit is None:
                hit = self._verdict(text, s, chunk, lo)
                if len(memo) >= _MEMO_MAX:
                    memo.clear()
                memo[raw_key] = hit
            if hit:  # usually empty: most runs are not entities
                for k, a, b, sc in hit:
                    out.append((k, s + a, s + b, sc))
        if rest:
            self._cut_runs(text, rest, out)
            out.sort(key=_START)  # the cut-off runs came last: keep spans in text order
        if _intro_cue(text, low):  # checked here: most texts have none, and then no generator is made
            out.extend(self._lowercase_names(text, low))
        if not self.strict_names:
            pos = 0
            for piece in text.split("\x1f") if "\x1f" in text else (text,):  # scrub_trace's joined fields
                # typed all in lower case ("tell john smith that ..."), with a first name in it (set operations in C
                # rule out the code, URLs and log lines most lower-case pieces are)
                if piece.islower() and (not piece.isascii() or not self.first.isdisjoint(
                        piece.translate(_ASCII_NON_WORD).split())):
                    out.extend(self.lowercase_pairs(piece, pos))
                pos += len(piece) + 1
        else:
            out.extend(self.lowercase_pairs(text, 0))
        return out

    def _emit(self, text: str, s: int, e: int, chunk: str, out: list[Span]) -> None:
        """Classify the run ``chunk`` at ``s`` (memoised) and add its spans to ``out``."""
        memo = self._memo
        if chunk[-1] in ".,'-&":
            chunk = self._trim(chunk)
            if not chunk:
                return
            e = s + len(chunk)
        # The verdict depends only on the run and a little context, and agent traffic repeats boilerplate, so
        # verdicts are memoised (bounded) by the raw context: one slice (context, run, next two characters) and
        # the run's place in it, hashed once. On a miss _classify reads only a few context features: what the
        # run itself tells is cached per run (_run), and runs recur in new contexts far more than new runs come.
        floor = piece_start(text, s) if "\x1f" in text else 0
        lo = s - 24 if s - 24 > floor else floor
        raw_key = (text[lo:e + 2], s - lo, e - s)
        hit = memo.get(raw_key)
        if hit is None:
            hit = self._verdict(text, s, chunk, lo)
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            memo[raw_key] = hit
        for k, a, b, sc in hit:
            out.append((k, s + a, s + b, sc))

    def _cut_runs(self, text: str, rest: list[tuple[int, int]], out: list[Span]) -> None:
        """The runs cut off after a comma (each may be cut again)."""
        while rest:
            s, e = rest.pop()
            chunk = text[s:e]
            cut = _CAPS_AFTER_COMMA.search(chunk)
            if cut:
                rest.append((s + cut.start() + 2, e))
                e = s + cut.start()
                chunk = text[s:e]
            self._emit(text, s, e, chunk, out)

    def _verdict(self, text: str, s: int, chunk: str, floor: int = 0) -> tuple[Span, ...]:
        """The run's spans: as a whole, or — when the whole is no entity — its parts ("Bruno, Stacey, Paul").
        ``floor``: no context before it is read (the start of the run's piece, or further on)."""
        hit = self._classify(text, s, chunk, floor)
        if not hit and (", " in chunk or ". " in chunk):  # a list of names, or two sentences
            hit = self._classify_parts(text, s, chunk, floor)
        return hit

    def lowercase_pairs(self, text: str, base: int = 0) -> list[Span]:
        """Lower-case "first last" names: a census first name then a census surname, or a first name and a word
        that is not a common one after a cue ("tell", "ask", "cc", "is", "for", ...). ``strict_names`` also takes
        first names that are surnames too ("john smith") without a cue."""
        # A pair starts at a word in ``first`` and not in NOT_NAME, followed by another word: set operations in C
        # rule out most texts before any word's position is read. A word's letters up to any "'" or "-" are one of
        # the text's maximal runs of letters; in ASCII text those come from a bytes translate and split (~6 us per
        # 750 characters, where the word regex's findall takes ~30).
        if text.isascii():
            if self._pair_heads.isdisjoint(text.encode().translate(_ASCII_LETTERS_ONLY).split()):
                return []
        elif self._pair_firsts.isdisjoint(_LOWER_WORD.findall(text)[:-1]):
            return []
        out: list[Span] = []
        words = [(m.start(), m.end(), m.group()) for m in _LOWER_WORD.finditer(text)]
        first, last, not_name = self.first, self.last, L.NOT_NAME
        prev = ""
        for (s1, _, w1), (_, e2, w2) in zip(words, words[1:]):
            cue, prev = prev in _LOWER_CUES, w1
            if w1 not in first or w1 in not_name or w2 in not_name or len(w2) < 2:
                continue
            if w2 in last and (cue or self.strict_names or w1 not in last):
                out.append(("PERSON", base + s1, base + e2, 0.7))
            elif cue and len(w2) >= 3 and w2 not in first:
                out.append(("PERSON", base + s1, base + e2, 0.6))
        return out

    def _classify_parts(self, text: str, s: int, chunk: str, floor: int = 0) -> tuple[Span, ...]:
        out: list[Span] = []
        for a, part in run_parts(chunk):
            part = self._trim(part) if part[-1] in ".,'-&" else part
            if part and not (" " not in part and part.lower() in L.NOT_NAME):
                out.extend((k, a + x, a + y, sc) for k, x, y, sc in self._classify(text, s + a, part, floor))
        return tuple(out)

    @staticmethod
    def _trim(chunk: str) -> str:
        while chunk and chunk[-1] in ".,'-&":
            if chunk[-1] == "." and (chunk.lower().rsplit(" ", 1)[-1] in L.ORG_SUFFIX or len(chunk) >= 2
                                     and chunk[-2].isupper() and (len(chunk) == 2 or chunk[-3] == " ")):
                break  # "Inc.", "J."
            chunk = chunk[:-1]
        return chunk

    def _lowercase_names(self, text: str, low: str | None = None) -> Iterable[Span]:
        """'my name is john smith': names typed in lower case, only right after a self-introduction (the caller
        checks ``_intro_cue`` first)."""
        low = lower_same_length(text, low)
        for m in _NAME_LOWER_CUE.finditer(low):
            w1, w2 = m.group(1), m.group(2)
            if w1 in self.first and w1 not in L.NOT_NAME:
                end = m.end(2) if w2 and (w2 in self.last or w2 in self.first) else m.end(1)
                yield "PERSON", m.start(1), end, 0.8

    def _run(self, chunk: str) -> _Run:
        """``_run_facts(chunk)``, cached (bounded): runs recur in new contexts far more often than new runs come,
        so each is tokenised and looked up in the word lists once."""
        runs = self._run_facts
        r = runs.get(chunk)
        if r is None:
            r = _run_facts(chunk, self.first, self.last)
            if len(runs) >= _MEMO_MAX:
                runs.clear()
            runs[chunk] = r
        return r

    def _classify(self, text: str, s: int, chunk: str, floor: int = 0) -> tuple[Span, ...]:
        """The run ``chunk`` at ``s``: its spans, with offsets relative to ``s``. The rules that need only the
        run were applied in ``_run_facts``; these read the context: a title just before, person and place cues
        among the last words before, the start of a sentence, a "," or ":" after; none from before ``floor``."""
        verdict, place_prefix, kept, place, words, first_hit, last_hit, placey, nameish, upper = \
            self._run_facts.get(chunk) or self._run(chunk)
        if verdict is not None:  # decided by the run alone
            return verdict
        n = len(chunk)
        before = text[s - 24 if s - 24 > floor else floor:s].lower()
        # people: a title just before
        last = before.rstrip().rsplit(" ", 1)[-1]
        if last.lower() in _TITLES:  # _is_title, inlined
            return (("PERSON", 0, n, 0.9),)
        if place_prefix and _cue_flags(before)[1]:
            return (("LOCATION", 0, n, 0.7),)  # "in NEW BRIGHTON", "to Port Hope"
        if kept < 0:  # nothing left once the leading words that are not names are dropped
            return ()
        if kept:  # leading words that are not names were dropped ("The", "Please", "Monday"): context moves too
            s1 = s + kept
            before = text[s1 - 24 if s1 - 24 > floor else floor:s1].lower()
        if place:
            return (("LOCATION", kept, n, 0.85),)
        if not before[-1:].isspace() or (not kept and last.isprintable() and last not in _CUE_ENDS
                                         and last.rstrip(",:") not in _CUE_ENDS):
            # no cue: none unless a space comes last; and with no word dropped, ``last`` (with no whitespace in
            # it: printable) is the last word _cue_flags would look at, which here ends no cue
            person_cue = loc_cue = False
        else:
            person_cue, loc_cue = _cue_flags(before)
        if loc_cue and not first_hit and not person_cue:
            return (("LOCATION", kept, n, 0.7 if placey or upper else 0.6),)
        if person_cue and words <= 4:
            return (("PERSON", kept, n, 0.75),)
        if placey and not first_hit:
            return (("LOCATION", kept, n, 0.55),)
        # the start of a sentence, read only where a rule below uses it (never after a dropped word)
        sent_start = not kept and (first_hit or nameish) and _sentence_start(text, s, floor)
        if first_hit and words <= 3 and not (sent_start and words == 1):
            return (("PERSON", kept, n, 0.8 if words >= 2 else 0.65),)
        if last_hit and words <= 3:
            return (("PERSON", kept, n, 0.7),)
        if 2 <= words <= 3 and nameish:
            return (("PERSON", kept, n, 0.55 if not sent_start else 0.5),)
        if words == 1 and nameish and (first_hit or sent_start and text[s + n:s + n + 1] in (",", ":")):
            return (("PERSON", kept, n, 0.6),)  # "Lukas, can I ...", "Agoti: What a ..." (addressing, dialogue turn)
        if words == 1 and nameish and not text[s + kept:s + n].isascii():
            return (("PERSON", kept, n, 0.55),)  # "Šebková", "Heiðarsson": a capitalised word with Latin diacritics
        return ()
