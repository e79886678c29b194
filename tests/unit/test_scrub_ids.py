"""The detectors added for hand-written PII: national ids, passports, obfuscated and reversed emails, postcodes,
tell-tale keys, identifiers, lower-case names, the strict tier — what each catches and what it leaves alone."""
from __future__ import annotations

import pytest

from schemas.trace import Trace
from streams.scrub import Pseudonymizer, StrictScrubber, TieredScrubber, scrub_trace
from streams.scrub.ids import insee_ok, ppsn_ok, steuer_id_ok, tfn_ok, verhoeff_ok

S = TieredScrubber(Pseudonymizer("k"))


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start:f.end]) for f in S.scrub(text).findings]


def test_checksums() -> None:
    assert verhoeff_ok("234567890124") and not verhoeff_ok("234567890125")
    assert steuer_id_ok("47291503863") and not steuer_id_ok("47291503864")
    assert insee_ok("185057800608491") and not insee_ok("185057800608492")
    assert tfn_ok("123456782") and not tfn_ok("123456783")
    assert ppsn_ok("1234567", "T") and not ppsn_ok("1234567", "A")


@pytest.mark.parametrize("text,value", [
    ("ref QQ 12 34 56 C ok", "QQ 12 34 56 C"), ("x 48291736Q y", "48291736Q"), ("x X1234567L y", "X1234567L"),
    ("x RSSMRA85T10A562S y", "RSSMRA85T10A562S"), ("x ABCPK1234F y", "ABCPK1234F"),
    ("x 2345 6789 0124 y", "2345 6789 0124"), ("x 1 85 05 78 006 084 91 y", "1 85 05 78 006 084 91"),
    ("x 23 905 871 644 y", "23 905 871 644"), ("x 046 454 286 y", "046 454 286"), ("x 8473621T y", "8473621T"),
])
def test_national_ids_by_shape_and_checksum(text: str, value: str) -> None:
    assert ("NATIONAL_ID", value) in kinds(text)


@pytest.mark.parametrize("text", [
    "order 48291736A shipped", "HTTP 500 from the upstream", "version 10.2.3 released", "room 2345 6789 0125",
    "call 415-555-0142 today", "the 2026-11-01 release", "Q3 2026 plan", "build 123456782 passed",
])
def test_no_id_without_a_cue_or_a_valid_shape(text: str) -> None:
    assert not [k for k, _ in kinds(text) if k in ("NATIONAL_ID", "PASSPORT")], kinds(text)


def test_cues_make_any_id_like_value_an_id_and_the_cue_word_stays() -> None:
    assert ("PASSPORT", "C4J8K2L9M") in kinds("Reisepass-Nr. C4J8K2L9M, gültig bis 2031")
    assert ("NATIONAL_ID", "123 456 782") in kinds("TFN 123 456 782 for the fund")
    out = S.scrub("my CCCD is 079203001234").text
    assert out.startswith("my CCCD is <NATIONAL_ID_") and "079203001234" not in out


def test_pseudonyms_are_never_scrubbed_again() -> None:
    once = S.scrub("passport 533401372, NI number QQ 12 34 56 C, Dr. Maria Lopez").text
    assert S.scrub(once).text == once


@pytest.mark.parametrize("text,value", [
    ("write to sarah dot okafor at gmail dot com", "sarah dot okafor at gmail dot com"),
    ("contact: j.p [at] telia [dot] se", "j.p [at] telia [dot] se"), ("mail a(at)wp.pl now", "a(at)wp.pl"),
    ("my email is liam.oconnor AT eircom.net", "liam.oconnor AT eircom.net"),
    ("reversed: ua.moc.gnorts@kcin", "ua.moc.gnorts@kcin"),
])
def test_obfuscated_and_reversed_emails(text: str, value: str) -> None:
    assert ("EMAIL", value) in kinds(text)


@pytest.mark.parametrize("text", ["look at google.com for it", "meet at 5 dot something", "at the dot com boom",
                                  "Ann at ann.lee@host.com"])
def test_prose_with_at_and_dot_is_no_email(text: str) -> None:
    assert [v for k, v in kinds(text) if k == "EMAIL"] in ([], ["ann.lee@host.com"])


def test_full_width_and_bidi_wrapped_values() -> None:
    r = S.scrub("mail ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ now")
    assert r.text == "mail " + S.scrub("john@example.com").text + " now"
    assert "\u2067" not in S.scrub("\u2067ali@example.ae\u2069 ok").text


def test_postcodes_and_vietnamese_addresses() -> None:
    for text, value in (("London NW1 6XE", "NW1 6XE"), ("Eircode D02 X285.", "D02 X285"), ("ON M5H 2M9", "M5H 2M9"),
                        ("ở 56 Trần Hưng Đạo, Quận 1", "56 Trần Hưng Đạo")):
        assert value in [v for k, v in kinds(text) if k == "ADDRESS"], (text, kinds(text))
    assert not [k for k, _ in kinds("We ship Q3 2026 and PR 12 4AB") if k == "ADDRESS"]


def test_tell_tale_keys_pairs_and_identifiers() -> None:
    t = Trace(trace_id="t", conversation_id="c", agent_id="bot/jane.doe@acme.io", user_message="hi",
              final_response="ok", metadata={"dob": "1990-01-01", "ni_number": "whatever 1", "plan": "basic"},
              tool_calls=[{"name": "crm_lookup_for_AB123456C", "args": {"fields": {"k": "tfn", "v": "459182737"}}}])
    out, findings = scrub_trace(t, S)
    assert out.metadata["dob"].startswith("<DATE_OF_BIRTH_") and out.metadata["ni_number"].startswith("<NATIONAL_ID")
    assert out.metadata["plan"] == "basic"
    assert out.tool_calls[0].args["fields"]["v"].startswith("<NATIONAL_ID_") and out.tool_calls[0].args["fields"]["k"] == "tfn"
    assert out.agent_id.startswith("bot/<EMAIL_") and out.tool_calls[0].name.startswith("crm_lookup_for_<NATIONAL_ID_")
    assert {(f.kind, f.field) for f in findings} >= {("EMAIL", "agent_id"), ("NATIONAL_ID", "tool_calls.name")}
    plain = Trace(trace_id="t", conversation_id="c", agent_id="agent-support", user_message="hi", final_response="ok")
    assert scrub_trace(plain, S)[0].agent_id == "agent-support"


def test_lower_case_names_only_in_lower_case_text_and_after_cues() -> None:
    assert ("PERSON", "john smith") in kinds("tell john smith that it moved")
    assert not kinds("see call logs and will check")


def test_strict_tier_catches_id_like_tokens_and_leaves_the_rest() -> None:
    strict = StrictScrubber()
    out = strict.scrub("ref ORD48213X, v1.2.3 on 2026-11-01, <PERSON_1a2b3c4d> and ines ferreira").text
    assert "ORD48213X" not in out and "<ID>" in out and "v1.2.3" in out and "2026-11-01" in out
    assert "<PERSON_1a2b3c4d>" in out and "ines ferreira" not in out
