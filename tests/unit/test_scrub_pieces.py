"""scrub_trace joins a trace's short strings into one text and remembers what each string held (PieceMemo): both
are exact only if a string gets what it would get alone, whatever stands next to it. These tests check that through
the public functions, on the simulator's traffic, the PII corpora and strings built to end or start with a cue."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from alignloop.bench._pii_corpus import load_corpus
from alignloop.simulate import Knobs, Simulator
from schemas.trace import ToolCall, Trace
from streams.scrub import Pseudonymizer, RegexScrubber, TieredScrubber, scrub_trace
from streams.scrub.memo import PieceMemo
from streams.scrub.trace import LONG_PIECE, MIN_PIECE

DATA = Path(__file__).resolve().parents[1] / "data"
# zero-width characters and bidi controls: scrub() drops them from its text, scrub_trace leaves them in the string
INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# what a neighbouring string may end with: cues, titles, street words, numbers ...
TAILS = ["Dr.", "Mr", "visit", "I live in", "call me", "my name is", "rue", "ul.", "born on", "dob:", "tell",
         "12", "Main St 4", "Dear", "lives in", "Attn:", "Inc", "card", "version", "+1", "cc", "from", "Rua",
         "Что?", "Phường", "my name is\n", "\t", ", ", "Quận 1", "1985-03-12", "\\n", "<PERSON_1a2b3c4d>"]
# ... and what the string itself may start with: names, places, addresses, numbers, wide and fullwidth text
HEADS = ["Smith", "Paris", "john smith", "12 Oak Street", "Siostrzana 48", "12/03/1984", "4111 1111 1111 1111",
         "555-0142", "Inc.", "de la Cruz", "Oak Street", "Springfield, IL 62704", "Anna", "jo@x.org", "1.2.3.4",
         "SW1A 1AA", "Đường Lê Lợi", "Ａnna Ｓmith", "j\u200bo@x.org", "Heiðarsson", "? Anna", "\u00a0Smith",
         "AB123456C", "\\nBoston", "Oak St, Springfield", "１２ Oak Street", "Quận 1", "Lindenstraße 5"]


def _strings(trace: Trace) -> list[str]:
    out = [trace.user_message, trace.final_response, *(c.content for c in trace.context), *trace.candidates]
    for tc in trace.tool_calls:
        out += [v for v in tc.args.values() if isinstance(v, str)]
        if isinstance(tc.result, str):
            out.append(tc.result)
    return [s for s in out if MIN_PIECE <= len(s) < LONG_PIECE]


@pytest.fixture(scope="module")
def pool() -> list[str]:
    strings: list[str] = []
    for name in ("pii_corpus.jsonl", "pii_corpus_holdout.jsonl"):
        for case in load_corpus(DATA / name):
            strings += _strings(case.trace)
    sim = Simulator(seed=5, knobs=Knobs(size_bytes=2000))
    for _, value, _, _ in sim.records(300):
        strings += _strings(Trace.model_validate_json(value))
    return sorted(set(strings))


def _neighbourhoods(pool: list[str], seed: int, n: int) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        strings = []
        for _ in range(rng.randint(2, 5)):
            r = rng.random()
            s = (rng.choice(pool) + " " + rng.choice(TAILS) if r < 0.3 else
                 rng.choice(HEADS) + " " + rng.choice(pool) if r < 0.6 else
                 rng.choice(TAILS + HEADS) if r < 0.7 else rng.choice(pool))
            if MIN_PIECE <= len(s) < LONG_PIECE:
                strings.append(s)
        out.append(strings)
    return out


def _in_one_trace(strings: list[str]) -> Trace:
    return Trace(trace_id="t", conversation_id="c", user_message="hi", final_response="ok",
                 tool_calls=[ToolCall(name="t", args={"items": strings})])


@pytest.mark.parametrize("make", [TieredScrubber, RegexScrubber], ids=["full", "structured"])
def test_each_joined_string_is_scrubbed_as_it_would_be_alone(pool: list[str], make) -> None:
    joined, alone = make(Pseudonymizer("k")), make(Pseudonymizer("k"))
    joined.piece_memo = None  # every string goes through the joined text
    differ = []
    for strings in _neighbourhoods(pool, seed=1, n=1500):
        out = scrub_trace(_in_one_trace(strings), joined)[0].tool_calls[0].args["items"]
        differ += [(s, o) for s, o in zip(strings, out) if INVISIBLE.sub("", o) != alone.scrub(s).text]
    assert differ == []


def test_context_from_the_string_before_is_not_read() -> None:
    s = TieredScrubber(Pseudonymizer("k"))
    out = scrub_trace(_in_one_trace(["Please forward this to Mr", "Oak Street is closed today", "visit",
                                     "Paris office hours"]), s)[0].tool_calls[0].args["items"]
    assert out[1] == "Oak Street is closed today"  # no title before it: "Mr" ends another string
    assert out[3] == s.scrub("Paris office hours").text
    # a phone in one string, a date starting the next: the phone's digits are not read again as an id
    out = scrub_trace(_in_one_trace(["phone ＋３４ ６１２ ３４５ ６７８", "1985-03-12 was the date"]), s)[0]
    assert "NATIONAL_ID" not in out.tool_calls[0].args["items"][0]
    # in a non-ASCII text a literal "?" does not swallow the name after it
    assert "Anna" not in s.scrub("Что? Anna Kowalski sent it").text


def test_a_warm_piece_memo_gives_what_no_memo_gives(pool: list[str]) -> None:
    warm, cold = TieredScrubber(Pseudonymizer("k")), TieredScrubber(Pseudonymizer("k"))
    cold.piece_memo = None
    sim = Simulator(seed=9, knobs=Knobs(size_bytes=2000))
    traces = [Trace.model_validate_json(v) for _, v, _, _ in sim.records(600)]
    traces += [c.trace for c in load_corpus(DATA / "pii_corpus.jsonl")]
    traces += [_in_one_trace(x) for x in _neighbourhoods(pool, seed=2, n=300)]
    for _ in range(2):  # the second round: every string is in the memo
        for t in traces:
            a, fa = scrub_trace(t, warm)
            b, fb = scrub_trace(t, cold)
            assert a.model_dump_json() == b.model_dump_json() and fa == fb, t.trace_id
    assert warm.piece_memo is not None and warm.piece_memo.hits > len(traces)


def test_piece_memo_is_bounded_and_never_holds_a_separator() -> None:
    memo = PieceMemo(budget_chars=100)
    for i in range(30):
        memo.put(f"string number {i:03d}", ())
        assert memo.held <= 100
    assert memo.get("string number 029") == () and memo.get("string number 000") is None
    memo.put("a\x1fb and more", (("PERSON", 0, 1, "<P>"),))
    assert memo.get("a\x1fb and more") is None
