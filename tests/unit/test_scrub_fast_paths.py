"""The scrubber's fast paths give exactly what the plain ones do (scrub_trace's copies, replacements, resolve)."""
from __future__ import annotations

import random
import re

from schemas.trace import Trace
from streams.scrub import Pseudonymizer, TieredScrubber
from streams.scrub.entities import _HOUSE_NUMBER
from streams.scrub.regex import make_mask, resolve, resolve_by_priority
from streams.scrub import scrub_trace
from streams.scrub.trace import SEPARATOR


def test_unchanged_items_are_shared_and_changed_ones_copied() -> None:
    """scrub_trace's one fast path: a context item or tool call is copied only when scrubbing changed it."""
    s = TieredScrubber(Pseudonymizer("k"))
    trace = Trace(trace_id="t", conversation_id="c", user_message="hi", final_response="ok",
                  context=[{"role": "user", "content": "nothing to hide here"},
                           {"role": "user", "content": "mail maria@corp.io"}],
                  tool_calls=[{"name": "web.search", "args": {"q": "weather"}, "result": {"n": 1}},
                              {"name": "sms.send", "args": {"to": "+44 20 7946 0958"}, "result": "sent"}])
    before = trace.model_dump_json()
    out, _ = scrub_trace(trace, s)
    assert trace.model_dump_json() == before  # the input is never mutated
    assert out.context[0] is trace.context[0] and out.tool_calls[0] is trace.tool_calls[0]
    assert out.context[1] is not trace.context[1] and "maria@corp.io" not in out.context[1].content
    assert out.tool_calls[1] is not trace.tool_calls[1] and out.tool_calls[1].args["to"].startswith("<PHONE_")
    assert Trace.model_validate_json(out.model_dump_json()) == out
    assert out.tool_calls[1].model_fields_set == trace.tool_calls[1].model_fields_set | {"args", "result"}


def test_replacements_match_scrub() -> None:
    s = TieredScrubber(Pseudonymizer("k"))
    texts = ["Call Maria Lopez on 555-123-4567 or maria@corp.io", "nothing here", "x",
             "zero\u200bwidth maria@\u200bcorp.io", "Dr. Okonkwo lives at 12 Oak Street, Boston, MA 02115",
             SEPARATOR.join(["my name is john smith", "Thanks, Maria", "card 4111 1111 1111 1111", "Maria again"]),
             "password=hunter2hunter2 and Bearer abcdefghijklmnopqrstuvwxyz " * 10]
    for t in texts:
        assert s.replacements(t) == [(f.kind, f.start, f.end, f.replacement) for f in s.scrub(t).findings], t


def test_resolve_fast_path_keeps_the_same_spans() -> None:
    rng = random.Random(7)
    kinds = ["EMAIL", "PHONE", "PERSON", "LOCATION", "SECRET", "ADDRESS", "OTHER"]
    for _ in range(20_000):
        cands = []
        for _ in range(rng.randint(2, 6)):
            s = rng.randint(0, 40)
            cands.append((rng.choice(kinds), s, s + rng.randint(0, 9), 0.9))
        assert resolve(list(cands)) == resolve_by_priority(cands), cands


def test_house_number_candidates_match_the_byte_checks() -> None:
    rng = random.Random(3)
    alphabet = "0123456789 Aa?.-/:+$#bz\n"
    for _ in range(5_000):
        mask = make_mask("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
        expected = [(m.start(), m.end()) for m in re.finditer(rb"00*", mask)
                    if m.end() - m.start() <= 6 and not (m.start() > 0 and mask[m.start() - 1] in b"0Aa?.-/:+$#")]
        assert [m.span() for m in _HOUSE_NUMBER.finditer(mask)] == expected, mask


def test_strict_id_spans_match_the_plain_finditer() -> None:
    """The strict tier's id search (mask-led in ASCII text) finds exactly what the two patterns' finditer finds."""
    from streams.scrub.strict import _DATE, _DIGIT_GROUPS, _MIXED_ID, id_spans

    def plain(t: str) -> list[tuple[int, int]]:
        return [m.span() for m in _MIXED_ID.finditer(t)] + [
            m.span() for m in _DIGIT_GROUPS.finditer(t) if not _DATE.fullmatch(m.group())]

    texts = ["order AB12345C and ref x9y8z7w6, card 4111 1111 1111 1111 on 2024-01-02", "12 34567890.5",
             "a1b2c3d4e5 " * 3 + "Z" * 41 + "123", "call 0044-20-7946-0958, id 123456789012345678901234567890123",
             "ab1c2\u0663d tail 12345678", "x" * 39 + "123", "..12345678,", "A1B2C3 ٣٤٥٦٧٨٩٠١٢"]
    rng = random.Random(5)
    alphabet = "aZ09 -.,_x7Q3-  12345678\n/"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70))) for _ in range(20_000)]
    for t in texts:
        assert id_spans(t, make_mask(t)) == plain(t), t
