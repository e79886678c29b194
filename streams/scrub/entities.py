"""Unstructured tier without a model: person names, street addresses, places, organisations, dates of birth.

Fast heuristics rather than NER, so the stream stays fast: capitalised runs are found on the same 1:1 byte mask
the structured tier uses (a literal-led search, quick in ``re``) and classified by name grammar — organisation
suffixes, street grammar, place morphology, titles, a census first-name/surname list — and by context cues
("my name is", "Mr.", "born on", "lives in"). Scores below the configured threshold are dropped.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from streams.scrub import lexicon as L
from streams.scrub.regex import lower_same_length

Span = tuple[str, int, int, float]
UNSTRUCTURED_KINDS: Final = ("PERSON", "ADDRESS", "LOCATION", "ORGANIZATION", "DATE_OF_BIRTH")
_RUN_KINDS: Final = frozenset({"PERSON", "LOCATION", "ORGANIZATION"})  # what capitalised runs can be

# On the mask (A-Z -> "A", digits -> "0", non-ASCII -> "?"): runs of capitalised or upper-case tokens.
_PART = rb"(?:de|da|del|della|van|von|der|den|di|du|la|le|bin|ibn|al|dos|das|y|e|&)"
_RUN = re.compile(rb"A[a-zA?'.&-]{0,40}(?:(?: |, )(?:" + _PART + rb" )?A[a-zA?'.&-]{0,40}){0,5}")
# non-ASCII text: a token may also start with a non-ASCII capital ("Šefka", "ΛΕΥΚΩΣΙΑ"), checked with isupper()
_RUN_WIDE = re.compile(rb"[A?][a-zA?'.&-]{0,40}(?:(?: |, )(?:" + _PART + rb" )?[A?][a-zA?'.&-]{0,40}){0,5}")
_NOT_NAME_ENDINGS: Final = ("tion", "sion", "ment", "ness", "ship", "ity", "ence", "ance", "ings", "ism", "ology",
                            "day", "days", "ers", "ies", "ful", "less", "ive", "ical", "ics")
# Context cues: the last one to three words before a run (set lookups; a regex anchored at the end would be tried
# at every position of the context).
_PERSON_CUES: Final = frozenset("""my name is|name is|name's|i am|i'm|this is|call me|named|called|dear|hi|hello|hey|
thanks|thank you|regards|sincerely|signed|by|with|contact|ask|tell|meet|met|and|commenter|assistant to|married|
son of|daughter of|wife|husband|friend|colleague|patient|client|customer|user|employee|author|producer|director|
manager|ceo|founder|cc|attn|from:|to:|spoke to|talked to|speak to|speak with|according to""".replace("\n", "").split("|"))
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


_NAME_LOWER_CUE = re.compile(r"(?:my name is|name is|i am|i'm|this is|call me)\s+([a-z][a-z'-]{1,30})"
                             r"(?:\s+([a-z][a-z'-]{1,30}))?")
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
_MEMO_MAX = 50_000
_TOKEN_IN_RUN = re.compile(r"[^ ,]+")
_DIGIT_WORD = re.compile(r"\S*\d\S*")  # a word with a digit is never a cue; one key for all of them
# after a building number on the mask: (another number,) then a capitalised/non-ASCII word or a short street word
_NUMBER_FIRST_NEXT = re.compile(rb"(?:[ -]0{1,5})? (?:[A?]|[a-z]{2,6}\.? [A?])")


def _sentence_start(text: str, s: int) -> bool:
    prev_char = text[max(0, s - 12):s].rstrip(" \t\"'(")[-1:] if s else ""  # bounded: no O(n) copy per run
    return prev_char in ("", ".", "!", "?", "\n", ":", "}", "]", ">", "\x1f") or text[max(0, s - 2):s] == "\\n"


def _intro_cue(text: str, low: str | None) -> bool:
    """A self-introduction cue in ``text`` ("my name is", "I'm", "call me", ...), exactly as cased here. Each test is
    a pass over the text, so the lower-cased text (already at hand) rules most texts out in five passes, not nine."""
    if low is not None and not ("name" in low or "i'm" in low or "i am" in low or "this is" in low
                                or "call me" in low):
        return False
    return ("name" in text or "i'm" in text or "i am" in text or "this is" in text or "call me" in text
            or "Name" in text or "I'm" in text or "I am" in text or "This is" in text)


def _is_title(tok: str) -> bool:
    return tok.lower() in L.TITLES


class EntityDetector:
    """Candidate spans of the unstructured kinds; ``detect(text, mask)`` shares the structured tier's mask."""

    def __init__(self, kinds: Iterable[str] = UNSTRUCTURED_KINDS) -> None:
        self.kinds = k = frozenset(kinds)
        self.first, self.last = L.names("first"), L.names("last")
        self._memo: dict[tuple, tuple[Span, ...]] = {}
        self._address, self._dob = "ADDRESS" in k, "DATE_OF_BIRTH" in k
        self._names = bool(k & _RUN_KINDS)
        self._all_names = _RUN_KINDS <= k  # then nothing _runs finds needs filtering by kind

    def detect(self, text: str, mask: bytes, low: str | None = None) -> list[Span]:
        """``low``: ``text.lower()`` when the caller already has it (the structured tier needs it too)."""
        out: list[Span] = []
        digits = b"0" in mask
        if self._address and digits:
            out.extend(self._addresses(text, mask))
        if self._dob and digits:
            if low is None:
                low = text.lower()
            if "born" in low or "dob" in low or "d.o.b" in low or "birth" in low:  # _DOB_CUES, unrolled
                out.extend(("DATE_OF_BIRTH", m.start(1), m.end(1), 0.9) for m in _DOB.finditer(text))
            # without a cue, a full numeric date in a birth-year range is still likely a DOB in support traffic
            for m in _OLD_DATE_MASK.finditer(mask):
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
    def _addresses(self, text: str, mask: bytes) -> Iterable[Span]:
        if "PO A" in text:
            for m in _MILITARY.finditer(text):
                yield "ADDRESS", m.start(), m.end(), 0.9
        end = -1
        for n in _HOUSE_NUMBER.finditer(mask):
            s, e = n.span()
            if s < end:
                continue
            # number first ("12 Oak Street", "46 rue Nationale"): the next word is capitalised or a street word
            if _NUMBER_FIRST_NEXT.match(mask, e, e + 12):
                m = _ADDR.match(text, s)
                if m and "\n" not in m.group():
                    end = self._tail(text, m.end())
                    yield "ADDRESS", s, end, 0.8
                    continue
            # house number after the street name ("Wilgenlaan 40", "ul. Siostrzana 48"): a street word close before
            nxt = mask[e:e + 2]
            if s >= 3 and mask[s - 1] == 32 and not (nxt[:1].isalnum() or (nxt[:1] == b" " and nxt[1:].islower())):
                ws = self._street_word_start(text, max(0, s - 45), s)
                if ws >= 0:
                    sm = _STREET_FIRST.match(text, ws)
                    if sm and sm.end() == e:
                        end = self._tail(text, e)
                        yield "ADDRESS", ws, end, 0.75

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
        for m in (_RUN_WIDE if wide else _RUN).finditer(mask):
            s, e = m.span()
            if wide and not text[s].isupper():
                continue
            chunk = text[s:e]
            if " " not in chunk and chunk.lower() in not_name:  # "I", "The", "Monday": most runs, decided at once
                continue
            if chunk[-1] in ".,'-&":
                chunk = self._trim(chunk)
                if not chunk:
                    continue
                e = s + len(chunk)
            # The verdict depends only on the run and a little context, and agent traffic repeats boilerplate, so
            # classifications are memoised (bounded): first by the raw context (cheap), then by what _classify
            # actually reads from it (last words, sentence start, next characters), so "Running" after a
            # different phone number is still a hit.
            # The raw key is one slice (context, run, next two characters) and the run's place in it: the same
            # information as the three strings, hashed once.
            lo = s - 24 if s > 24 else 0
            raw_key = (text[lo:e + 2], s - lo, e - s)
            hit = get(raw_key)
            if hit is None:
                ctx = text[lo:s]
                nxt = text[e:e + 2]
                words = " ".join(ctx.lower().split()[-3:])
                if not ctx.isascii() or b"0" in mask[lo:s]:  # only words with a digit change (to "#")
                    words = _DIGIT_WORD.sub("#", words)
                key = (chunk, words, ctx[-1:].isspace(), _sentence_start(text, s), nxt)
                hit = memo.get(key)
                if hit is None:
                    hit = tuple((k, a - s, b - s, sc) for k, a, b, sc in self._classify(text, s, chunk))
                    memo[key] = hit
                if len(memo) >= _MEMO_MAX:
                    memo.clear()
                memo[raw_key] = hit
            if hit:  # usually empty: most runs are not entities
                for k, a, b, sc in hit:
                    out.append((k, s + a, s + b, sc))
        if _intro_cue(text, low):  # checked here: most texts have none, and then no generator is made
            out.extend(self._lowercase_names(text, low))
        return out

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

    def _classify(self, text: str, s: int, chunk: str) -> Iterable[Span]:
        s0 = s
        spans = [(m.start(), m.group()) for m in _TOKEN_IN_RUN.finditer(chunk)]  # offsets survive ", " joins
        toks = [t for _, t in spans]
        lows = [t.lower().strip(".,") for t in toks]
        if len(lows) == 1 and (lows[0] in L.NOT_NAME or len(lows[0]) < 2):  # "I", "The", "Monday": most runs
            return
        e = s + len(chunk)
        before = text[max(0, s - 24):s].lower()
        sent_start = _sentence_start(text, s)
        whole = " ".join(lows)
        # organisations: suffix grammar, "University of X", known names
        if len(toks) >= 2 and (lows[-1] in L.ORG_SUFFIX or any(t in L.ORG_SUFFIX for t in lows[1:]) and
                               lows[-1] not in L.STREET_SUFFIX):
            yield "ORGANIZATION", s, e, 0.8
            return
        if lows[0] in ("university", "bank", "institute", "college", "museum", "hospital") and len(toks) >= 3:
            yield "ORGANIZATION", s, e, 0.75
            return
        if whole in L.ORG_WORDS:
            yield "ORGANIZATION", s, e, 0.7
            return
        # places: gazetteer, then morphology with a cue
        if whole in L.COUNTRIES or whole in L.US_STATES or whole in L.CITIES:
            yield "LOCATION", s, e, 0.85
            return
        # people: a title first, or a title just before
        if _is_title(toks[0]) and len(toks) >= 2:
            yield "PERSON", s + spans[1][0], e, 0.9
            return
        if _is_title(before.rstrip().rsplit(" ", 1)[-1]):
            yield "PERSON", s, e, 0.9
            return
        if len(toks) >= 2 and lows[0] in L.PLACE_PREFIX and not _cue_phrases(before).isdisjoint(_LOC_CUES):
            yield "LOCATION", s, e, 0.7  # "in NEW BRIGHTON", "to Port Hope"
            return
        # drop leading words that are not names ("The", "Please", "Monday")
        while toks and lows[0] in L.NOT_NAME:
            if len(spans) < 2:
                return
            s, toks, lows, sent_start = s0 + spans[1][0], toks[1:], lows[1:], False
            spans = spans[1:]
            before = text[max(0, s - 24):s].lower()
        if not toks or all(t in L.NOT_NAME for t in lows) or e - s < 2:
            return
        whole = " ".join(lows)
        if whole in L.COUNTRIES or whole in L.US_STATES or whole in L.CITIES:
            yield "LOCATION", s, e, 0.85
            return
        first_hit, last_hit = lows[0] in self.first, len(toks) >= 2 and lows[-1] in self.last
        phrases = _cue_phrases(before)
        person_cue = not phrases.isdisjoint(_PERSON_CUES)
        loc_cue = not phrases.isdisjoint(_LOC_CUES)
        placey = (lows[0] in L.PLACE_PREFIX and len(toks) >= 2) or (len(toks) == 1 and lows[0].endswith(L.PLACE_SUFFIX)) or \
            (len(toks) >= 2 and lows[-1] in ("lake", "city", "falls", "springs", "beach", "island", "valley", "bay"))
        if loc_cue and not first_hit and not person_cue:
            yield "LOCATION", s, e, 0.7 if placey or chunk.isupper() else 0.6
            return
        if person_cue and len(toks) <= 4:
            yield "PERSON", s, e, 0.75
            return
        if placey and not first_hit:
            yield "LOCATION", s, e, 0.55
            return
        if first_hit and (len(toks) <= 3) and not (sent_start and len(toks) == 1):
            yield "PERSON", s, e, 0.8 if len(toks) >= 2 else 0.65
            return
        if last_hit and len(toks) <= 3:
            yield "PERSON", s, e, 0.7
            return
        nameish = all(t[:1].isupper() and not t.isupper() and w not in L.NOT_NAME and not w.endswith(_NOT_NAME_ENDINGS)
                      for t, w in zip(toks, lows) if len(w) > 1 and w not in ("de", "van", "von", "da", "del", "bin"))
        if 2 <= len(toks) <= 3 and nameish:
            yield "PERSON", s, e, 0.55 if not sent_start else 0.5
            return
        nxt = text[e:e + 2]
        if len(toks) == 1 and nameish and (first_hit or (sent_start and nxt[:1] in (",", ":") and nxt != ": ")
                                           or (sent_start and nxt in (", ", ": "))):
            yield "PERSON", s, e, 0.6  # "Lukas, can I ...", "Agoti: What a ..." (addressing or a dialogue turn)
