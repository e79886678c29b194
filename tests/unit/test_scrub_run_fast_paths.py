"""The unstructured tier's fast paths give exactly what the plain ones do: run search, per-run facts and context
reads in _classify, cue lookups, house-number candidates, and the trace walker's write-back."""
from __future__ import annotations

import random
import re
from collections.abc import Iterator

from schemas.trace import ToolCall, Trace
from streams.scrub import Pseudonymizer, TieredScrubber, scrub_trace
from streams.scrub import lexicon as L
from streams.scrub.entities import (_CUE_ENDS, _HOUSE_NUMBER, _HOUSE_NUMBER_CANDIDATE, _LOC_CUES, _NUMBER_FIRST_NEXT,
                                    _OLD_DATE_MASK, _PERSON_CUES, _RUN, _RUN_FAST, _RUN_WIDE, _WIDE_AS_RUN, EntityDetector,
                                    _cue_flags, _cue_phrases, _intro_cue, _sentence_start)
from streams.scrub.base import piece_start
from streams.scrub.run_facts import _NOT_NAME_ENDINGS, _TOKEN_IN_RUN, _is_title, org_suffix, run_parts, word_key
from streams.scrub.regex import make_mask

_SEPS = [" ", " ", " ", " ", ", ", ". ", "\n", "\\n", ": ", ",", ":", " (", ") ", "\n\x1f\n", "  ", "\t", "! ", "? ",
         "-", "'", '"', "\u00a0", " \u2028", "\u3000"]


def _texts(seed: int, n: int) -> Iterator[str]:
    """Text dense in what the rules read: titles, cue words, non-name words, census names, places, organisation
    suffixes, particles, odd casing and whitespace, non-ASCII letters, numbers."""
    rng = random.Random(seed)
    pools = [sorted(L.TITLES), sorted(_PERSON_CUES), sorted(_LOC_CUES), sorted(L.NOT_NAME),
             sorted(L.names("first"))[:2000], sorted(L.names("last"))[:2000], sorted(L.COUNTRIES), sorted(L.CITIES),
             sorted(L.ORG_SUFFIX), sorted(L.PLACE_PREFIX), sorted(L.ORG_WORDS),
             ["springfield", "port hope", "silver lake", "running", "earlier", "llm", "de", "van", "bin", "&", "o'neil",
              "jean-luc", "šefka", "ΛΕΥΚΩΣΙΑ", "İstanbul", "straße", "x", "q", "a", "12", "1985", "3rd", "apt 4", "rue",
              "street", "ave.", "inc.", "j.", "co.", "my name is", "call me", "mr.", "dr", "to:", "from:", "cc"]]

    def case(w: str) -> str:
        r = rng.random()
        if r < 0.45:
            return w[:1].upper() + w[1:]
        if r < 0.6:
            return w.upper()
        if r < 0.65:
            return "".join(c.upper() if rng.random() < 0.3 else c for c in w)
        return w

    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 14)):
            parts.append(case(rng.choice(rng.choice(pools))))
            parts.append(rng.choice(_SEPS))
        yield "".join(parts)[:rng.randint(5, 200)]


def _reference_classify(det: EntityDetector, text: str, s: int, chunk: str) -> Iterator[tuple[str, int, int, float]]:
    """The rules as they were written before the run facts were cached and the context reads trimmed (kept here
    verbatim as the plain path), reading no context before the run's piece of a scrub_trace text."""
    s0, floor = s, piece_start(text, s)
    spans = [(m.start(), m.group()) for m in _TOKEN_IN_RUN.finditer(chunk)]
    toks = [t for _, t in spans]
    lows = [word_key(t) for t in toks]
    if len(lows) == 1 and (lows[0] in L.NOT_NAME or len(lows[0]) < 2):
        return
    e = s + len(chunk)
    before = text[max(floor, s - 24):s].lower()
    sent_start = _sentence_start(text, s, floor)
    whole = " ".join(lows)
    if len(toks) >= 2 and (org_suffix(lows[-1]) or any(t in L.ORG_SUFFIX for t in lows[1:]) and
                           lows[-1] not in L.STREET_SUFFIX):
        yield "ORGANIZATION", s, e, 0.8
        return
    if lows[0] in ("university", "bank", "institute", "college", "museum", "hospital") and len(toks) >= 3:
        yield "ORGANIZATION", s, e, 0.75
        return
    if whole in L.ORG_WORDS:
        yield "ORGANIZATION", s, e, 0.7
        return
    if whole in L.COUNTRIES or whole in L.US_STATES or whole in L.CITIES:
        yield "LOCATION", s, e, 0.85
        return
    if _is_title(toks[0]) and len(toks) >= 2:
        yield "PERSON", s + spans[1][0], e, 0.9
        return
    for k in range(len(lows) - 1):  # "Dear Mr. Okonjo": a title among the leading words that are not names
        if lows[k] not in L.NOT_NAME:
            break
        if lows[k] in L.TITLES and lows[k + 1] not in L.NOT_NAME:
            yield "PERSON", s + spans[k + 1][0], e, 0.9
            return
    if _is_title(before.rstrip().rsplit(" ", 1)[-1]):
        yield "PERSON", s, e, 0.9
        return
    if len(toks) >= 2 and lows[0] in L.PLACE_PREFIX and not _cue_phrases(before).isdisjoint(_LOC_CUES):
        yield "LOCATION", s, e, 0.7
        return
    while toks and lows[0] in L.NOT_NAME:
        if len(spans) < 2:
            return
        s, toks, lows, sent_start = s0 + spans[1][0], toks[1:], lows[1:], False
        spans = spans[1:]
        before = text[max(floor, s - 24):s].lower()
    if not toks or all(t in L.NOT_NAME for t in lows) or e - s < 2:
        return
    whole = " ".join(lows)
    if whole in L.COUNTRIES or whole in L.US_STATES or whole in L.CITIES:
        yield "LOCATION", s, e, 0.85
        return
    first_hit, last_hit = lows[0] in det.first, len(toks) >= 2 and lows[-1] in det.last
    phrases = _cue_phrases(before)
    person_cue = not phrases.isdisjoint(_PERSON_CUES)
    loc_cue = not phrases.isdisjoint(_LOC_CUES)
    placey = (lows[0] in L.PLACE_PREFIX and len(toks) >= 2) or (len(toks) == 1 and lows[0].endswith(L.PLACE_SUFFIX)) \
        or (len(toks) >= 2 and lows[-1] in ("lake", "city", "falls", "springs", "beach", "island", "valley", "bay"))
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
        yield "PERSON", s, e, 0.6
        return
    if len(toks) == 1 and nameish and not text[s:e].isascii():
        yield "PERSON", s, e, 0.55


def _reference_runs(det: EntityDetector, text: str) -> list[tuple[str, int, int, float]]:
    """Capitalised runs as found before (_RUN / _RUN_WIDE on the mask), classified by the reference, no memo; then
    names typed in lower case after a self-introduction, as _runs adds them."""
    mask, wide, out = make_mask(text), not text.isascii(), []
    # in a non-ASCII text's mask "?" is also any non-ASCII character; a literal "?" there is read as "'"
    for m in (_RUN_WIDE if wide else _RUN).finditer(make_mask(text.replace("?", "'")) if wide else mask):
        s, e = m.span()
        if wide and not text[s].isupper():
            continue
        whole = text[s:e]
        if " " not in whole and whole.lower() in L.NOT_NAME:
            continue
        # an upper-case word after a comma starts a new run
        cuts = [c.start() for c in re.finditer(r", [A-Z0-9]{2,}(?![a-z])", whole)]
        for a, b in zip([0] + [c + 2 for c in cuts], cuts + [len(whole)]):
            chunk, s1 = whole[a:b], s + a
            if chunk[-1] in ".,'-&":
                chunk = EntityDetector._trim(chunk)
                if not chunk:
                    continue
            found = list(_reference_classify(det, text, s1, chunk))
            if not found and (", " in chunk or ". " in chunk):
                for a2, part in run_parts(chunk):
                    part = EntityDetector._trim(part) if part[-1] in ".,'-&" else part
                    if part and not (" " not in part and part.lower() in L.NOT_NAME):
                        found.extend(_reference_classify(det, text, s1 + a2, part))
            out.extend(found)
    out.sort(key=lambda c: c[1])  # spans in text order (the detector classifies cut-off runs last)
    if _intro_cue(text, None):
        out.extend(det._lowercase_names(text))
    pos = 0
    for piece in text.split("\x1f"):
        if piece.islower():  # the plain rule: every lower-case piece (the detector skips those without a first name)
            out.extend(det.lowercase_pairs(piece, pos))
        pos += len(piece) + 1
    return out


def test_runs_equal_the_reference_rules_with_fresh_and_shared_memos() -> None:
    shared = EntityDetector()  # memos and run facts carried from text to text, as in a worker
    for text in _texts(1, 8000):
        expected = _reference_runs(shared, text)
        mask = make_mask(text)
        assert shared._runs(text, mask, text.lower()) == expected, text
        assert EntityDetector()._runs(text, mask) == expected, text


def test_classify_with_cached_run_facts_equals_the_reference() -> None:
    det = EntityDetector()
    for text in _texts(2, 5000):
        for m in _RUN.finditer(make_mask(text)) if text.isascii() else ():
            s, e = m.span()
            chunk = EntityDetector._trim(text[s:e])
            if not chunk:
                continue
            expected = tuple((k, a - s, b - s, sc) for k, a, b, sc in _reference_classify(det, text, s, chunk))
            assert det._classify(text, s, chunk, piece_start(text, s)) == expected, (text, chunk)


def test_cue_flags_equal_the_cue_phrase_sets() -> None:
    assert "" not in _CUE_ENDS and all(c and c == c.strip() for c in _PERSON_CUES | _LOC_CUES)
    rng = random.Random(4)
    words = sorted(_PERSON_CUES | _LOC_CUES | _CUE_ENDS) + ["mr.", "x1", "to,", "of:", "in,:", "by;", "", "ok"]
    for _ in range(20_000):
        before = "".join(rng.choice(words) + rng.choice(_SEPS) for _ in range(rng.randint(0, 5)))[-24:]
        phrases = _cue_phrases(before)
        assert _cue_flags(before) == (not phrases.isdisjoint(_PERSON_CUES), not phrases.isdisjoint(_LOC_CUES)), before


def _random_masks(seed: int, n: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    alphabet = [b"A", b"a", b"?", b" ", b", ", b"de ", b"del ", b"della ", b"van ", b"& ", b"&", b"'", b".", b"-",
                b"0", b"b", b"y ", b"??", b"\n", b",", b"xyzab "]
    for _ in range(n):
        mask = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        yield b"A" + b"a" * rng.randint(35, 45) + mask if rng.random() < 0.1 else mask


def test_fast_run_search_leaves_out_only_lone_one_letter_runs() -> None:
    for mask in _random_masks(5, 30_000):
        for m in (mask, mask.translate(_WIDE_AS_RUN)):
            plain = [x.span() for x in _RUN.finditer(m)]
            fast = [x.span() for x in _RUN_FAST.finditer(m)]
            kept = set(fast)
            assert fast == [sp for sp in plain if sp in kept], m
            assert all(e - s == 1 for s, e in plain if (s, e) not in kept), m


def test_wide_search_on_the_translated_mask_equals_run_wide() -> None:
    for mask in _random_masks(6, 30_000):
        assert [x.span() for x in _RUN_WIDE.finditer(mask)] == \
            [x.span() for x in _RUN.finditer(mask.translate(_WIDE_AS_RUN))], mask


def test_house_number_candidates_are_the_numbers_the_byte_checks_pass() -> None:
    rng = random.Random(7)
    alphabet = "0123456789 Aa?.-/:+$#bz\n%,"
    for _ in range(40_000):
        mask = make_mask("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))))
        expected = []
        for n in _HOUSE_NUMBER.finditer(mask):
            s, e = n.span()
            nxt = mask[e:e + 2]
            if (mask[e:e + 1] in (b" ", b"-") or  # what _NUMBER_FIRST_NEXT starts with
                    s >= 3 and mask[s - 1] == 32 and not (nxt[:1].isalnum() or (nxt[:1] == b" " and nxt[1:].islower()))):
                expected.append((s, e))
            if _NUMBER_FIRST_NEXT.match(mask, e, e + 12):
                assert mask[e:e + 1] in b" -", mask
        assert [m.span() for m in _HOUSE_NUMBER_CANDIDATE.finditer(mask)] == expected, mask


def test_old_dates_have_four_digits_in_a_row() -> None:
    rng = random.Random(8)
    for _ in range(50_000):
        mask = make_mask("".join(rng.choice("0123456789/.- a") for _ in range(rng.randint(0, 20))))
        assert all(b"0000" in m.group() for m in _OLD_DATE_MASK.finditer(mask)), mask


def test_addresses_and_dates_unchanged_on_address_heavy_text() -> None:
    """House-number candidates and the date prefilter on text full of numbers, street words and places."""
    rng = random.Random(9)
    words = ["12", "4", "1356", "46", "307", "Oak", "Street", "St.", "rue", "Nationale", "ul.", "Siostrzana",
             "Wilgenlaan", "Hauptstraße", "Apt.", "Suite", "#4", "Springfield,", "IL", "62704", "Paris", "born",
             "on", "1985-04-12", "03/04/1975", "at", "15:00", "1:1", "71%", "PO", "Box", "APO", "AE", "USS", "Unit"]
    shared = EntityDetector()
    for _ in range(5000):
        text = "".join(rng.choice(words) + rng.choice([" ", " ", ", ", "\n", " - "]) for _ in range(rng.randint(1, 12)))
        fresh = EntityDetector().detect(text, make_mask(text))
        assert shared.detect(text, make_mask(text), text.lower()) == fresh, text
        # plain: every house number, no candidate filter and no four-digit prefilter
        plain = EntityDetector(["ADDRESS", "DATE_OF_BIRTH"])
        got = [c for c in fresh if c[0] in ("ADDRESS", "DATE_OF_BIRTH")]
        assert got == _plain_addresses_and_dates(plain, text), text


def _plain_addresses_and_dates(det: EntityDetector, text: str) -> list[tuple[str, int, int, float]]:
    mask, out, low = make_mask(text), [], text.lower()
    if b"0" not in mask:
        return out
    if "PO A" in text:
        from streams.scrub.entities import _MILITARY
        out += [("ADDRESS", m.start(), m.end(), 0.9) for m in _MILITARY.finditer(text)]
    from streams.scrub.entities import _ADDR, _DOB, _OLD_YEAR, _STREET_FIRST
    end = -1
    for n in _HOUSE_NUMBER.finditer(mask):
        s, e = n.span()
        if s < end:
            continue
        if _NUMBER_FIRST_NEXT.match(mask, e, e + 12):
            m = _ADDR.match(text, s)
            if m and "\n" not in m.group():
                end = det._tail(text, m.end())
                out.append(("ADDRESS", s, end, 0.8))
                continue
        nxt = mask[e:e + 2]
        if s >= 3 and mask[s - 1] == 32 and not (nxt[:1].isalnum() or (nxt[:1] == b" " and nxt[1:].islower())):
            ws = det._street_word_start(text, max(0, s - 45), s)
            if ws >= 0:
                sm = _STREET_FIRST.match(text, ws)
                if sm and sm.end() == e:
                    end = det._tail(text, e)
                    out.append(("ADDRESS", ws, end, 0.75))
    if "born" in low or "dob" in low or "d.o.b" in low or "birth" in low:
        out += [("DATE_OF_BIRTH", m.start(1), m.end(1), 0.9) for m in _DOB.finditer(text)]
    for m in _OLD_DATE_MASK.finditer(mask):
        if _OLD_YEAR.match(text, m.end() - 4) and (m.start() == 0 or not text[m.start() - 1].isalnum()):
            out.append(("DATE_OF_BIRTH", m.start(), m.end(), 0.55))
    return out


def test_written_back_strings_keep_the_walk_order() -> None:
    """The walker writes every string back in piece order, then overwrites the scrubbed ones in place: a dict's
    keys keep the order they had (items that are not strings first, then strings, each in input order)."""
    s = TieredScrubber(Pseudonymizer("k"))
    long_doc = "Background for Maria Lopez: " + "notes " * 120  # scrubbed on its own
    args = {"to": "Call Maria Lopez", "n": 3, "doc": long_doc, "x": None, "plain": "nothing to see here",
            "short": "ok", "mail": "write to maria@corp.io", "nested": {"b": "Thanks, Maria", "a": 1}}
    for a in (args, {k: v for k, v in args.items() if k not in ("to", "doc", "mail", "nested")}):
        trace = Trace(trace_id="t", conversation_id="c", user_message="hello there", final_response="done",
                      tool_calls=[ToolCall(name="send", args=a)])
        out = scrub_trace(trace, s)[0].tool_calls[0].args
        scalars = [k for k, v in a.items() if not isinstance(v, str) or len(v) < 6]
        assert list(out) == scalars + [k for k in a if k not in scalars]
        assert "Maria" not in str(out) and "maria@corp.io" not in str(out)
        assert re.fullmatch(r"Call <PERSON_\w+>", out.get("to", "Call <PERSON_0>"))
