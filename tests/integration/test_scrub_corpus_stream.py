"""The hand-written PII corpora through the real stream (broker, worker, Delta): no structured or id-like planted
value reaches any table or any topic but the raw input topic, and at most 5% of all planted values do."""
from __future__ import annotations

import asyncio
import json
import pathlib

import pytest

from alignloop.bench._pii_corpus import Output, load_corpus, tally
from alignloop.publish import publish
from connectors.delta_sink import read_table
from connectors.kafka import read_topic
from schemas.topics import TOPICS, TRACES
from tests.helpers import table_rows, wait_for

pytestmark = pytest.mark.integration
DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def test_planted_values_never_leave_the_input_topic(kafka_settings, worker_factory) -> None:
    s = kafka_settings
    cases = load_corpus(DATA / "pii_corpus.jsonl") + load_corpus(DATA / "pii_corpus_holdout.jsonl")
    records = [(c.trace.conversation_id.encode(), c.trace.model_dump_json().encode()) for c in cases]
    worker = worker_factory(s).start()
    asyncio.run(publish(s, s.topic(TRACES), records))

    def landed() -> int:
        t = table_rows(s, columns=["trace_id"])
        return t.num_rows if t.num_columns else 0

    wait_for(lambda: landed() >= len(cases), 120, what="the corpus to land", worker=worker)
    outputs = []
    for tdir in pathlib.Path(s.lake).iterdir():  # every table: traces, sft_examples, preferences, ...
        t = read_table(str(tdir))
        outputs += [str(v) for col in t.column_names for v in t.column(col).to_pylist()]
    for spec in TOPICS.values():
        if spec.name != TRACES:
            outputs += [json.loads(m.value) if m.value[:1] in b"{[" else m.value.decode("utf-8", "replace")
                        for m in asyncio.run(read_topic(s, s.topic(spec.name), timeout_s=2))]
    out = Output(outputs)
    results = [(k, out.survives(k, v)) for c in cases for k, v in c.planted]
    figures = tally(results)
    leaked = [(c.id, k, v) for c in cases for k, v in c.planted
              if out.survives(k, v) and k not in ("PERSON", "PERSON_LOWER", "LOCATION", "ADDRESS")]
    assert not leaked, leaked
    assert figures["ALL"]["rate"] <= 0.05, figures
    assert worker.alive()
