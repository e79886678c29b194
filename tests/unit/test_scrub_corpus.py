"""The hand-written PII corpus (tests/data/pii_corpus.jsonl: values of kinds the simulator never makes, planted in
every field) through the stream's scrub step and the strict pass curation applies: no structured or id-like
value survives anywhere, at most 5% of all planted values do, and none reaches what would be training data."""
from __future__ import annotations

from pathlib import Path

from alignloop.bench._pii_corpus import NAMES_PLACES, Output, load_corpus, tally
from streams.curation.rules import render_prompt
from streams.scrub import build_scrubber, scrub_trace
from streams.scrub.config import load_scrub_config
from streams.scrub.strict import strict_text

ROOT = Path(__file__).resolve().parents[2]


class _Settings:
    pii_hmac_key = "corpus-key"


def _run(path: Path):
    scrubber = build_scrubber(_Settings(), load_scrub_config(ROOT / "configs" / "scrub.yaml"))
    stream, training = [], []
    for case in load_corpus(path):
        clean, _ = scrub_trace(case.trace, scrubber)
        out = Output(clean.model_dump(mode="json"))
        sft = Output(strict_text(render_prompt(clean)), strict_text(clean.final_response),
                     [strict_text(c) for c in clean.candidates])
        for kind, value in case.planted:
            stream.append((kind, out.survives(kind, value)))
            if value in (case.trace.user_message, ) or value in case.trace.final_response or any(
                    value in c.content for c in case.trace.context) or any(value in c for c in case.trace.candidates):
                training.append((kind, sft.survives(kind, value)))
    return tally(stream), tally(training)


def test_corpus_has_every_field_and_many_kinds() -> None:
    cases = load_corpus(ROOT / "tests" / "data" / "pii_corpus.jsonl")
    assert len(cases) >= 150 and sum(len(c.planted) for c in cases) >= 200
    assert any(c.trace.tool_calls for c in cases) and any(c.trace.metadata for c in cases)
    assert any(c.trace.agent_id != "agent-support" for c in cases) and any(c.trace.candidates for c in cases)
    assert len({k for c in cases for k, _ in c.planted}) >= 25


def test_no_structured_value_survives_the_stream_and_few_names_do() -> None:
    stream, training = _run(ROOT / "tests" / "data" / "pii_corpus.jsonl")
    assert stream["STRUCTURED_IDS"]["survived"] == 0, stream
    assert stream["ALL"]["rate"] <= 0.05, stream
    assert training["STRUCTURED_IDS"]["survived"] == 0, training
    assert training["NAMES_PLACES"]["survived"] <= stream["NAMES_PLACES"]["survived"], (training, stream)


def test_leak_check_sees_a_planted_value_in_any_form() -> None:
    out = Output({"x": ["Q Q 12-34-56 c"], "y": "moc.elpmaxe@nhoj"})
    assert out.survives("UK_NINO", "QQ 12 34 56 C") and out.survives("EMAIL", "john@example.com")
    assert not out.survives("PERSON", "Maria Lopez") and "PERSON" in NAMES_PLACES
