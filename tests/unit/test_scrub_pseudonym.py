"""Pseudonyms: deterministic per (kind, normalised value) and key; rotation changes them; the key never shows."""
from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from streams.scrub import Pseudonymizer, RegexScrubber


def test_same_value_same_token_across_calls_and_formats() -> None:
    s = RegexScrubber(Pseudonymizer(SecretStr("tenant-a")))
    a = s.scrub("mail Jane.Doe@Example.com, phone (555) 123-4567, card 4111 1111 1111 1111").text
    b = s.scrub("MAIL jane.doe@example.com PHONE +1 555.123.4567 CARD 4111-1111-1111-1111").text
    toks_a = re.findall(r"<[A-Z_]+_[0-9a-f]{8}>", a)
    toks_b = re.findall(r"<[A-Z_]+_[0-9a-f]{8}>", b)
    assert len(toks_a) == 3 and toks_a == toks_b
    assert toks_a[0].startswith("<EMAIL_") and toks_a[1].startswith("<PHONE_") and toks_a[2].startswith("<CREDIT_CARD_")


def test_different_values_and_kinds_differ() -> None:
    p = Pseudonymizer("k")
    assert p.token("EMAIL", "a@x.io") != p.token("EMAIL", "b@x.io")
    assert p.token("PERSON", "Sam") != p.token("LOCATION", "Sam")


def test_key_rotation_changes_pseudonyms_and_key_id() -> None:
    old, new = Pseudonymizer("key-1"), Pseudonymizer("key-2")
    assert old.token("EMAIL", "a@x.io") != new.token("EMAIL", "a@x.io")
    assert old.key_id != new.key_id and re.fullmatch(r"[0-9a-f]{8}", old.key_id)
    assert Pseudonymizer("key-1").key_id == old.key_id


def test_key_never_in_repr_or_tokens() -> None:
    p = Pseudonymizer(SecretStr("super-secret-key-value"))
    assert "super-secret" not in repr(p)
    assert "super-secret" not in p.token("SECRET", "x")
    with pytest.raises(ValueError):
        Pseudonymizer("")


def test_surrogates_are_realistic_stable_and_typed() -> None:
    p = Pseudonymizer("k", surrogates=True)
    person = p.token("PERSON", "Maria Lopez")
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", person) and person == p.token("PERSON", "maria  lopez")
    assert p.token("EMAIL", "a@x.io").endswith("@example.com")
    assert re.fullmatch(r"555-01\d\d", p.token("PHONE", "555-123-4567"))
    assert p.token("SECRET", "hunter2").startswith("<SECRET_")  # no realistic fake for secrets
