"""The scrubber contract, checked for every registered scrubber (``SCRUBBERS``): scrub(text) -> ScrubResult,
findings consistent with the input, idempotent on its own output, no planted structured value survives, never
raises on hostile text, time linear in the input."""
from __future__ import annotations

import time

import pytest

from streams.scrub import SCRUBBERS, Pseudonymizer, ScrubResult

PLANTED = {  # structured values every scrubber must catch, in a sentence each
    "EMAIL": ("write to maria.lopez@corp.io today", "maria.lopez@corp.io"),
    "PHONE": ("call me on +44 20 7946 0958", "7946 0958"),
    "CREDIT_CARD": ("card 4111 1111 1111 1111 expires soon", "4111 1111 1111 1111"),
    "IBAN": ("IBAN GB33 BUKB 2020 1555 5555 55 please", "GB33 BUKB 2020 1555 5555 55"),
    "US_SSN": ("my SSN is 536-22-8726", "536-22-8726"),
    "IP_ADDRESS": ("login from 81.2.69.160", "81.2.69.160"),
    "SECRET": ("key sk-live-Zx8fQ2mN4pR7tV1wY3bC6dE9 leaked", "sk-live-Zx8fQ2mN4pR7tV1wY3bC6dE9"),
    "NATIONAL_ID": ("NI number QQ 12 34 56 C on file", "QQ 12 34 56 C"),
    "PASSPORT": ("passport 533401372 expires", "533401372"),
}
HOSTILE = ["", "\x00\x01\x02" * 1000, "@" * 20_000, "a@" * 20_000, "0" * 100_000, "1 " * 50_000,
           "\ud800\udfff broken surrogates \udc00", "\u202e" * 5000 + "moc.x@y", "ＡＢ１２" * 5000,
           "Mr. " * 10_000, "-----BEGIN RSA PRIVATE KEY-----" + "A" * 50_000, "x [at] y " * 5000,
           "passport " * 10_000, "QQ 12 34 56 C " * 3000, "\u200b" * 10_000 + "jo@x.io"]


@pytest.fixture(params=sorted(SCRUBBERS))
def scrubber(request):
    return SCRUBBERS[request.param](Pseudonymizer("contract-key"))


def test_scrub_returns_a_result_with_findings_inside_the_input(scrubber) -> None:
    text = " ".join(t for t, _ in PLANTED.values())
    res = scrubber.scrub(text)
    assert isinstance(res, ScrubResult) and isinstance(res.text, str)
    last = 0
    for f in res.findings:
        assert 0 <= f.start < f.end <= len(text) and f.start >= last and f.replacement
        assert f.replacement in res.text
        last = f.end


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_no_planted_structured_value_survives(scrubber, kind) -> None:
    text, value = PLANTED[kind]
    res = scrubber.scrub(text)
    assert value not in res.text, (kind, res.text)
    assert res.findings


def test_idempotent_on_its_own_output(scrubber) -> None:
    text = " ".join(t for t, _ in PLANTED.values()) + " Dr. Maria Lopez lives at 12 Oak Street, Boston."
    once = scrubber.scrub(text).text
    assert scrubber.scrub(once).text == once


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_never_raises_on_hostile_text(scrubber, i) -> None:
    res = scrubber.scrub(HOSTILE[i])
    assert isinstance(res.text, str)


def test_time_is_linear_in_the_input(scrubber) -> None:
    unit = "Hi, I'm Ana Ruiz, NI QQ 12 34 56 C, mail ana [at] x [dot] es, call 555-123-4567. "

    salt = iter(range(10**6))

    def cost(n: int) -> float:
        text = f"{next(salt)} " + unit * n  # a new text each time: no memo hit
        t0 = time.process_time()
        scrubber.scrub(text)
        return time.process_time() - t0

    cost(50)
    small, big = min(cost(200) for _ in range(3)), min(cost(1600) for _ in range(3))
    assert big < small * 8 * 3, (small, big)  # 8x the input: well under 24x the time
