"""`alignloop ingest openai-log` against a real broker: good lines to agent.traces, a bad line to the DLQ."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from alignloop.runner import REPO, settings_env
from connectors.kafka import read_topic
from schemas.dlq import DeadLetter
from schemas.topics import DLQ, TRACES
from schemas.trace import Trace
from tests.unit.test_ingest_openai_log import log_line

pytestmark = pytest.mark.integration


def test_log_file_lines_are_published_and_a_non_json_line_is_dead_lettered(kafka_settings, tmp_path):
    s = kafka_settings
    path = tmp_path / "calls.jsonl"
    lines = [json.dumps(log_line(i)) for i in range(5)]
    lines.insert(2, "{oops not json")
    path.write_text("\n".join(lines) + "\n\n")
    out = subprocess.run([sys.executable, "-m", "alignloop.cli", "ingest", "openai-log", str(path)], cwd=REPO,
                         env=settings_env(s), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "6 lines: 5 traces to agent.traces, 1 to agent.traces.dlq (invalid_json=1)" in out.stdout
    traces = [Trace.model_validate_json(m.value) for m in asyncio.run(read_topic(s, s.topic(TRACES)))]
    assert sorted(t.trace_id for t in traces) == [f"chatcmpl-{i}" for i in range(5)]
    letters = [DeadLetter.from_record(m.headers, m.key, m.value) for m in asyncio.run(read_topic(s, s.topic(DLQ)))]
    assert [(d.stage, d.reason, d.offset, d.original_bytes()) for d in letters] == [
        ("ingest", "invalid_json", 3, b"{oops not json")]
    assert letters[0].topic == "openai-log:calls.jsonl"

    missing = subprocess.run([sys.executable, "-m", "alignloop.cli", "ingest", "openai-log", "nope.jsonl"], cwd=REPO,
                             env=settings_env(s), capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no such log file" in missing.stderr
