"""Structured tier: every kind found, near misses left alone, overlaps resolved, typed pseudonyms."""
from __future__ import annotations

import pytest

from streams.scrub import Pseudonymizer, RegexScrubber
from streams.scrub.checks import iban_ok, luhn_ok


@pytest.fixture()
def scrubber() -> RegexScrubber:
    return RegexScrubber(Pseudonymizer("test-key"))


def kinds(scrubber: RegexScrubber, text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start:f.end]) for f in scrubber.scrub(text).findings]


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("write to Jane.Doe+tag@Example.co.uk today", "EMAIL", "Jane.Doe+tag@Example.co.uk"),
    ("call me at (555) 123-4567 please", "PHONE", "(555) 123-4567"),
    ("call me at 555-123-4567 please", "PHONE", "555-123-4567"),
    ("call me at 555.123.4567 please", "PHONE", "555.123.4567"),
    ("intl +1 (555) 123-4567 ok", "PHONE", "+1 (555) 123-4567"),
    ("uk +44 20 7946 0958 ok", "PHONE", "+44 20 7946 0958"),
    ("de +49-30-1234567 ok", "PHONE", "+49-30-1234567"),
    ("fr 0033 1 23 45 67 89 ok", "PHONE", "0033 1 23 45 67 89"),
    ("compact +15551234567 ok", "PHONE", "+15551234567"),
    ("with ext 555-123-4567x123 ok", "PHONE", "555-123-4567x123"),
    ("You can call 754 4311 today", "PHONE", "754 4311"),                   # short local number after a cue
    ("Phone:\\n21 232 730 9638\\n", "PHONE", "21 232 730 9638"),          # JSON-escaped newline before it
    ("9380 6377 office", "PHONE", "9380 6377"),                             # cue after the number
    ("Fax: 8715236109", "PHONE", "8715236109"),                             # bare digits next to a cue
    ("credit card 570008838734 lost", "CREDIT_CARD", "570008838734"),       # 12-digit Maestro with a card cue
    ("pay with 4111 1111 1111 1111 now", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("pay with 5500-0000-0000-0004 now", "CREDIT_CARD", "5500-0000-0000-0004"),
    ("amex 378282246310005.", "CREDIT_CARD", "378282246310005"),
    ("host 192.168.10.254 is down", "IP_ADDRESS", "192.168.10.254"),
    ("v6 2001:db8:85a3::8a2e:370:7334 up", "IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334"),
    ("link-local fe80::1ff:fe23:4567:890a, ok", "IP_ADDRESS", "fe80::1ff:fe23:4567:890a"),
    ("iban GB82 WEST 1234 5698 7654 32 thanks", "IBAN", "GB82 WEST 1234 5698 7654 32"),
    ("iban DE89370400440532013000.", "IBAN", "DE89370400440532013000"),
    ("ssn 123-45-6789 on file", "US_SSN", "123-45-6789"),
    ("db postgres://admin:hunter2@db.internal:5432/app", "SECRET", "admin:hunter2"),
    ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345 set", "SECRET", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345"),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789 set", "SECRET", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("aws AKIAIOSFODNN7EXAMPLE set", "SECRET", "AKIAIOSFODNN7EXAMPLE"),
    ("slack xoxb-123456789012-abcdefghijkl set", "SECRET", "xoxb-123456789012-abcdefghijkl"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fwpM set", "SECRET",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fwpM"),
    ("Authorization: Bearer abcDEF123456ghiJKL789 x", "SECRET", "abcDEF123456ghiJKL789"),
    ("login with password=hunter22 now", "SECRET", "hunter22"),
    ('{"api_key": "q8Zr2LmX9vTt"}', "SECRET", "q8Zr2LmX9vTt"),
    ("set access_token=Zx8Qm2Lp9Rt4Vb7Nc1Kd then", "SECRET", "Zx8Qm2Lp9Rt4Vb7Nc1Kd"),
])
def test_each_kind_found(scrubber: RegexScrubber, text: str, kind: str, value: str) -> None:
    res = scrubber.scrub(text)
    assert (kind, value) in kinds(scrubber, text)
    assert value not in res.text
    assert f"<{kind}_" in res.text


def test_pem_private_key_removed_whole(scrubber: RegexScrubber) -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nq8Zr2LmX9vTt==\n-----END RSA PRIVATE KEY-----"
    res = scrubber.scrub(f"here it is:\n{pem}\nbye")
    assert "MIIEpAIBAAKCAQEA7" not in res.text and "PRIVATE KEY" not in res.text
    assert res.text.startswith("here it is:\n<SECRET_") and res.text.endswith("\nbye")


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112 is invalid",          # Luhn fails
    "iban GB82 WEST 1234 5698 7654 33 is wrong",    # mod-97 fails
    "iban DE89370400440532013001",                  # mod-97 fails
    "ssn 000-12-3456 and 666-12-3456 are not issued",
    "release v1.2.3.4 and version 10.0.0.1 shipped",
    "meet on 2024-01-15 or 15/01/2024 at 12:30:45",
    "order 48213 costs 1999 dollars, pi is 3.14159",
    "the password is incorrect, token count: 12, sort key: name",
    "an email-like a@b and user @handle",
    "C++ std::vector and dead::beef",
    "order number 123456 shipped, ticket #4821337, account no. 12345678",  # numbers, but no phone cue
    "reference 5551234567 attached",                                       # bare digits without a phone cue
])
def test_near_misses_left_alone(scrubber: RegexScrubber, text: str) -> None:
    res = scrubber.scrub(text)
    assert res.findings == [], kinds(scrubber, text)
    assert res.text == text


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")
    assert not iban_ok("XX82WEST12345698765432")  # unknown country


def test_overlap_card_beats_phone_and_offsets_refer_to_input(scrubber: RegexScrubber) -> None:
    text = "pay 4111-1111-1111-1111 or mail a.b@c.io"
    res = scrubber.scrub(text)
    assert [f.kind for f in res.findings] == ["CREDIT_CARD", "EMAIL"]
    assert text[res.findings[0].start:res.findings[0].end] == "4111-1111-1111-1111"
    assert text[res.findings[1].start:res.findings[1].end] == "a.b@c.io"


def test_kinds_subset_and_validation() -> None:
    only_email = RegexScrubber(Pseudonymizer("k"), kinds=["EMAIL"])
    res = only_email.scrub("a.b@c.io and 4111 1111 1111 1111")
    assert res.counts() == {"EMAIL": 1} and "4111 1111 1111 1111" in res.text
    with pytest.raises(ValueError, match="unknown structured kinds"):
        RegexScrubber(Pseudonymizer("k"), kinds=["EMAIL", "NOPE"])


def test_threshold_drops_low_score_kind() -> None:
    strict = RegexScrubber(Pseudonymizer("k"), thresholds={"PHONE": 0.99})
    assert strict.scrub("call 555-123-4567").findings == []
    assert RegexScrubber(Pseudonymizer("k")).scrub("call 555-123-4567").counts() == {"PHONE": 1}
