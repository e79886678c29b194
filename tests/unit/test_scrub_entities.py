"""Unstructured tier: names, addresses, places, organisations, dates of birth; tiers and thresholds from config."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.settings import load_settings
from streams.scrub import Pseudonymizer, ScrubConfig, TieredScrubber, build_scrubber, load_scrub_config


@pytest.fixture()
def scrubber() -> TieredScrubber:
    return TieredScrubber(Pseudonymizer("test-key"))


def found(s: TieredScrubber, text: str) -> set[tuple[str, str]]:
    return {(f.kind, text[f.start:f.end]) for f in s.scrub(text).findings}


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("My name is Maria Lopez and I need help.", "PERSON", "Maria Lopez"),
    ("Please ask Mr. Okonkwo about the refund.", "PERSON", "Okonkwo"),
    ("hi, this is john smith from accounts", "PERSON", "john smith"),
    ("The assistant to Thilda Berg replied.", "PERSON", "Thilda Berg"),
    ("Lukas, can I please speak to your manager?", "PERSON", "Lukas"),
    ("Ship it to 1356 Impala Street Apt. 4, Springfield, IL 62704 today", "ADDRESS",
     "1356 Impala Street Apt. 4, Springfield, IL 62704"),
    ("Send it to 46 rue Nationale, Paris please", "ADDRESS", "46 rue Nationale, Paris"),
    ("I now live in Unit 3848 Box 3726\nDPO AE 51928", "ADDRESS", "Unit 3848 Box 3726\nDPO AE 51928"),
    ("We moved here from Sweden last year", "LOCATION", "Sweden"),
    ("I'm stuck in NEW BRIGHTON at the moment", "LOCATION", "NEW BRIGHTON"),
    ("She works at Amkor Technology Inc. now", "ORGANIZATION", "Amkor Technology Inc."),
    ("Refunds from Globex Holdings take a week", "ORGANIZATION", "Globex Holdings"),
    ("I was born on March 3rd, 1985 in a small town", "DATE_OF_BIRTH", "March 3rd, 1985"),
    ("DOB: 1975-04-12", "DATE_OF_BIRTH", "1975-04-12"),
])
def test_each_unstructured_kind_found(scrubber: TieredScrubber, text: str, kind: str, value: str) -> None:
    assert (kind, value) in found(scrubber, text)
    assert value not in scrubber.scrub(text).text


@pytest.mark.parametrize("text", [
    "The order shipped on Monday and arrives in March.",
    "Please reset my password and send the invoice.",
    "Our order placed 11/02/2025 has not arrived",       # a recent date is not a date of birth
    "Windows update failed with error 0x80070005",
])
def test_ordinary_text_left_alone(scrubber: TieredScrubber, text: str) -> None:
    res = scrubber.scrub(text)
    assert res.findings == [], found(scrubber, text)


def test_structured_kind_wins_inside_unstructured_span(scrubber: TieredScrubber) -> None:
    text = "Card 4111 1111 1111 1111 belongs to Maria Lopez"
    kinds = [f.kind for f in scrubber.scrub(text).findings]
    assert kinds == ["CREDIT_CARD", "PERSON"]


def test_pseudonyms_consistent_for_names(scrubber: TieredScrubber) -> None:
    a = scrubber.scrub("My name is Maria Lopez.").text
    b = scrubber.scrub("Maria Lopez called again.").text
    tok = re.search(r"<PERSON_[0-9a-f]{8}>", a).group()
    assert tok in b


def test_surrogates_replace_with_realistic_values() -> None:
    s = TieredScrubber(Pseudonymizer("k", surrogates=True))
    out = s.scrub("My name is Maria Lopez, email maria@corp.io").text
    assert "Maria Lopez" not in out and "maria@corp.io" not in out
    assert "<" not in out and "@example.com" in out


def test_tiers_and_thresholds_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "My name is Maria Lopez, mail maria@corp.io"
    settings = load_settings(pii_hmac_key="k")
    structured = build_scrubber(settings, ScrubConfig(tier="structured"))
    assert {f.kind for f in structured.scrub(text).findings} == {"EMAIL"}
    full = build_scrubber(settings, ScrubConfig(tier="full"))
    assert {f.kind for f in full.scrub(text).findings} == {"EMAIL", "PERSON"}
    strict = build_scrubber(settings, ScrubConfig(tier="full", thresholds={"PERSON": 0.99}))
    assert {f.kind for f in strict.scrub(text).findings} == {"EMAIL"}
    only_person = build_scrubber(settings, ScrubConfig(kinds=["PERSON"]))
    assert {f.kind for f in only_person.scrub(text).findings} == {"PERSON"}
    cfg = tmp_path / "scrub.yaml"
    cfg.write_text("tier: full\nkinds: [PERSON, ADDRESS]\n")
    monkeypatch.setenv("ALIGNLOOP_SCRUB_CONFIG", str(cfg))
    from_file = build_scrubber(settings, load_scrub_config(load_settings(pii_hmac_key="k").scrub_config))
    assert {f.kind for f in from_file.scrub(text).findings} == {"PERSON"}


def test_shipped_config_is_valid_and_full() -> None:
    from streams.scrub import load_scrub_config

    cfg = load_scrub_config(Path(__file__).resolve().parents[2] / "configs" / "scrub.yaml")
    assert cfg.tier == "full" and "PERSON" in cfg.enabled() and "SECRET" in cfg.enabled()


def test_offsets_survive_comma_joined_runs(scrubber: TieredScrubber) -> None:
    # "Hi, I'm Maria Lopez" is one capitalised run joined by ", "; dropping "Hi" and "I'm" must keep the spacing
    assert scrubber.scrub("Hi, I'm Maria Lopez, thanks").text.startswith("Hi, I'm <PERSON_")


def test_memo_returns_the_same_result_and_is_not_shared_state() -> None:
    from streams.scrub.memo import MIN_CHARS, ScrubMemo

    s = TieredScrubber(Pseudonymizer("k"))
    doc = ("Background: contact Maria Lopez at maria@corp.io about the renewal. " * 8)[: MIN_CHARS * 2]
    first = s.scrub(doc)
    first.findings.clear()  # a caller mutating its result must not change what the memo hands out next
    second = s.scrub(doc)
    assert s.memo.hits == 1 and second.text == first.text and {f.kind for f in second.findings} == {"PERSON", "EMAIL"}
    small = ScrubMemo(budget_chars=MIN_CHARS * 3)
    for i in range(5):
        small.get("x" * MIN_CHARS + str(i), lambda t: s.scrub(t))
    assert small.held <= MIN_CHARS * 3  # cleared when full, never above budget


def test_cli_scrub_prints_pseudonyms() -> None:
    from typer.testing import CliRunner

    from alignloop.cli import app

    res = CliRunner().invoke(app, ["scrub", "--json", "mail maria@corp.io or call 555-123-4567"])
    assert res.exit_code == 0, res.output
    import json

    out = json.loads(res.stdout)
    assert "maria@corp.io" not in out["text"] and [f["kind"] for f in out["findings"]] == ["EMAIL", "PHONE"]
    bad = CliRunner().invoke(app, ["scrub", "--tier", "bogus", "x"])  # main() prints UserError as one line
    assert bad.exit_code != 0 and "structured or full" in str(bad.exception)


def test_run_memo_never_changes_a_verdict() -> None:
    """Memoised classifications must equal fresh ones, whatever context the memo entry was made in."""
    from streams.scrub.entities import EntityDetector
    from streams.scrub.regex import make_mask

    texts = ["Running late, Maria Lopez.", "Call 555-123-4567. Running late", "Thanks, Running Bear said",
             "I moved to Springfield. Springfield is nice", "Dear Maria, ask Mr. Okonkwo", "Year Maria, ask Okonkwo",
             "in NEW BRIGHTON today", "Earlier: Book a call with Aisha Silva", "Earlier Aisha Silva booked"] * 2
    shared = EntityDetector()
    for t in texts:
        m = make_mask(t)
        assert sorted(shared.detect(t, m)) == sorted(EntityDetector().detect(t, m)), t
