"""Bad input: pathological text is scrubbed in bounded time and never raises; library call == stream step.

The per-test timeout is a hang guard (a catastrophic-backtracking regex would take minutes), not a speed target.
"""
from __future__ import annotations

import json

import pytest

from alignloop.configs import load_configs
from schemas.settings import load_settings
from schemas.trace import Trace
from streams.scrub import Pseudonymizer, ScrubConfig, TieredScrubber, build_scrubber, scrub_trace

PATHOLOGICAL = {
    "100k_digits": "7" * 100_000,
    "digits_with_separators": "1 2-3.4 (5) " * 10_000,
    "at_signs": "a@" * 50_000,
    "long_local_part": "a" * 100_000 + "@",
    "dots_domain": "x@" + "a." * 50_000,
    "capitalised_words": "Aaaa Bbbb " * 10_000,
    "token_without_end": "sk-" + "a" * 100_000,
    "pem_without_end": "-----BEGIN PRIVATE KEY-----\n" + "A" * 100_000,
    "colons": ":" * 100_000 + "1",
    "hex_colons": "ab:" * 30_000,
    "key_value_storm": "password=" * 20_000,
    "numbers_and_streets": "12 Oak " * 15_000,
    "mixed_scripts": "Ωμέγα Москва 東京 مرحبا Ñandú " * 5_000,
    "json_escapes": "\\n" * 50_000 + "555-123-4567",
}


@pytest.fixture(scope="module")
def scrubber() -> TieredScrubber:
    return TieredScrubber(Pseudonymizer("k"))


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_text_is_scrubbed_without_error(scrubber: TieredScrubber, name: str) -> None:
    text = PATHOLOGICAL[name]
    res = scrubber.scrub(text)
    assert isinstance(res.text, str)
    for f in res.findings:  # offsets stay inside the input and spans never overlap
        assert 0 <= f.start < f.end <= len(text)
    spans = sorted((f.start, f.end) for f in res.findings)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_zero_width_characters_do_not_hide_an_email(scrubber: TieredScrubber) -> None:
    text = "mail jo\u200bhn.d\u200boe@exa\u200bmple.com or call"
    res = scrubber.scrub(text)
    assert [f.kind for f in res.findings] == ["EMAIL"]
    assert "exa" not in res.text and "john" not in res.text.replace("\u200b", "")
    assert text[res.findings[0].start:res.findings[0].end] == "jo\u200bhn.d\u200boe@exa\u200bmple.com"


@pytest.mark.timeout(30)
def test_hostile_trace_is_scrubbed(scrubber: TieredScrubber) -> None:
    deep: object = "secret@example.com"
    for _ in range(5000):
        deep = [deep]
    trace = Trace(trace_id="t", conversation_id="c", user_message="7" * 100_000, final_response="a@" * 20_000,
                  tool_calls=[{"name": "x", "args": {"blob": deep, "n": list(range(1000))}, "result": {"k": deep}}])
    clean, _ = scrub_trace(trace, scrubber)
    assert "secret@example.com" not in clean.model_dump_json()


def test_library_call_matches_stream_step() -> None:
    """`scrub_trace` as exports/replay call it == what the stream's Pipeline lands, for the same key and config."""
    from streams.pipeline import Pipeline

    settings = load_settings(pii_hmac_key="tenant-1")
    raw = {
        "trace_id": "t1", "conversation_id": "c1",
        "user_message": "My name is Maria Lopez, card 4111 1111 1111 1111, I live at 12 Oak Street, Springfield.",
        "tool_calls": [{"name": "crm", "args": {"email": "maria@corp.io", "password": "hunter2"},
                        "result": {"phone": "+44 20 7946 0958", "dob": "born on 1980-02-03"}}],
        "final_response": "Thanks Maria Lopez, we emailed maria@corp.io.",
    }
    configs = load_configs(settings)
    judged = Pipeline.from_settings(settings, configs).process(json.dumps(raw).encode(), "agent.traces", 0, 0)
    library, findings = scrub_trace(Trace.model_validate(raw), build_scrubber(settings, configs.scrub))
    assert judged.trace.model_dump(exclude={"timestamp"}) == library.model_dump(exclude={"timestamp"})
    assert judged.pii == findings
    dumped = library.model_dump_json()
    for planted in ("Maria Lopez", "4111 1111 1111 1111", "12 Oak Street", "maria@corp.io", "hunter2",
                    "7946 0958", "1980-02-03"):
        assert planted not in dumped


def test_structured_only_config_is_what_the_stream_gets(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    cfg = tmp_path / "scrub.yaml"
    cfg.write_text("tier: structured\n")
    monkeypatch.setenv("ALIGNLOOP_SCRUB_CONFIG", str(cfg))
    settings = load_settings()
    s = build_scrubber(settings, load_configs(settings).scrub)
    assert {f.kind for f in s.scrub("Maria Lopez, maria@corp.io").findings} == {"EMAIL"}
    assert ScrubConfig(tier="structured").enabled() == ["EMAIL", "PHONE", "CREDIT_CARD", "IP_ADDRESS", "IBAN",
                                                        "US_SSN", "SECRET", "NATIONAL_ID", "PASSPORT"]


def test_offsets_stay_right_when_lowercasing_changes_length(scrubber: TieredScrubber) -> None:
    # "İ".lower() is two characters; spans found on lower-cased text must still point at the right input slice
    text = "İİİİ password=hunter22 and my name is maria lopez"
    res = scrubber.scrub(text)
    got = {(f.kind, text[f.start:f.end]) for f in res.findings}
    assert ("SECRET", "hunter22") in got and ("PERSON", "maria lopez") in got
    assert "hunter22" not in res.text and "maria lopez" not in res.text
