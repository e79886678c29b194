"""One contract over every registered exporter: files written, a lineage sidecar that matches them, the row count,
the planted PII gone, deterministic content; plus the format rules each consumer documents."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from schemas.settings import Settings
from trainers.export import EXPORTERS
from trainers.export.openai_rules import CHECKS, check_dpo, check_rft, check_sft
from trainers.export.run import ExportError, run_export
from tests.export_tables import LEAKED_EMAIL, seed, trace_row, write_table


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"))
    seed(s)
    return s


def _table(fmt: str) -> str:
    return EXPORTERS[fmt].tables[0]


def _out(tmp_path: Path, fmt: str, name: str = "a") -> Path:
    return tmp_path / name / (fmt if EXPORTERS[fmt].directory else f"{fmt}.jsonl")


def _all_text(files: list[Path]) -> str:
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in files)


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_every_exporter_writes_files_and_a_matching_sidecar(settings, tmp_path, fmt):
    out = _out(tmp_path, fmt)
    res = run_export(settings, fmt, _table(fmt), out=out)
    lin = json.loads(res.sidecar.read_text())
    assert res.files and all(p.is_file() for p in res.files)
    assert lin["format"] == fmt and lin["table"] == _table(fmt) and lin["delta_version"] == 0
    assert lin["row_count"] == lin["rows_read"] == 12
    assert sorted(d["sha256"] for d in lin["files"]) == sorted(
        hashlib.sha256(p.read_bytes()).hexdigest() for p in res.files)
    topic = {"traces": "agent.traces", "preferences": "feedback.preferences", "sft_examples": "traces.judged"}
    assert lin["offset_ranges"][topic[_table(fmt)]]
    assert LEAKED_EMAIL not in _all_text(res.files)  # the strict tier catches what the stream's scrub missed
    again = run_export(settings, fmt, _table(fmt), out=_out(tmp_path, fmt, "b"))
    if fmt != "hf":  # datasets' Arrow files carry a fingerprint; the records are compared below
        assert again.lineage["content_hash"] == lin["content_hash"]
    jsonl = [p for p in res.files if p.suffix == ".jsonl"]
    if jsonl:
        assert sum(1 for _ in open(jsonl[0])) == 12


@pytest.mark.parametrize("fmt", sorted(CHECKS))
def test_every_openai_line_follows_the_documented_rules(settings, tmp_path, fmt):
    tables = EXPORTERS[fmt].tables
    for table in tables:
        res = run_export(settings, fmt, table, out=tmp_path / table / "x.jsonl")
        for line in res.files[0].read_text().splitlines():
            assert CHECKS[fmt](json.loads(line)) == [], line


def test_openai_rules_catch_each_violation():
    good = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                         {"role": "assistant", "tool_calls": [{"id": "c0", "type": "function", "function": {
                             "name": "f", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "c0", "content": "r"},
                         {"role": "assistant", "content": "a", "weight": 1}]}
    assert check_sft(good) == []

    def broken(edit):
        line = json.loads(json.dumps(good))
        edit(line["messages"])
        return check_sft(line)

    assert broken(lambda m: m[4].update(role="robot"))
    assert broken(lambda m: m.pop())  # ends on the tool message
    assert broken(lambda m: m[2]["tool_calls"][0]["function"].update(name="email.send"))
    assert broken(lambda m: m[2]["tool_calls"][0]["function"].update(arguments={"a": 1}))
    assert broken(lambda m: m[3].update(tool_call_id="nope"))
    assert broken(lambda m: m[4].update(weight=2))
    assert broken(lambda m: m[1].update(weight=0))
    assert broken(lambda m: m.insert(2, {"role": "system", "content": "late"}))
    assert broken(lambda m: (m[2].update(weight=0), m[4].update(weight=0)))  # nothing left to train on
    assert check_rft({"messages": good["messages"]})  # RFT must end on the user
    assert check_rft({"messages": [{"role": "user", "content": "u"}]}) == []
    dpo = {"input": {"messages": [{"role": "user", "content": "u"}]},
           "preferred_output": [{"role": "assistant", "content": "a"}],
           "non_preferred_output": [{"role": "assistant", "content": "b"}]}
    assert check_dpo(dpo) == []
    assert check_dpo({**dpo, "non_preferred_output": [{"role": "assistant", "content": "a"}]})
    assert check_dpo({**dpo, "preferred_output": {"role": "assistant", "content": "a"}})


def test_sft_records_carry_tools_when_the_trace_used_them(settings, tmp_path):
    res = run_export(settings, "trl-sft", "traces", out=tmp_path / "sft.jsonl")
    lines = [json.loads(x) for x in res.files[0].read_text().splitlines()]
    with_tools = [x for x in lines if "tools" in x]
    assert len(with_tools) == 6  # the even traces called a tool
    rec = with_tools[1]  # t2: lookup_order
    roles = [m["role"] for m in rec["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "tool", "assistant"]
    assert rec["messages"][0]["content"] == "You are a support agent.\n[memory] prefers email"
    assert rec["messages"][4]["tool_calls"][0]["function"] == {"name": "lookup_order",
                                                             "arguments": {"order_id": 1002, "to": "<EMAIL_ab12cd34>"}}
    assert rec["tools"][0]["function"]["parameters"]["properties"] == {"order_id": {"type": "integer"},
                                                                       "to": {"type": "string"}}
    oai = run_export(settings, "openai-sft", "traces", out=tmp_path / "oai.jsonl").files[0].read_text().splitlines()
    first = json.loads(oai[0])  # t0 used email.send: a name OpenAI refuses, renamed the same way everywhere
    assert first["tools"][0]["function"]["name"] == "email_send"
    assert first["messages"][4]["tool_calls"][0]["function"]["name"] == "email_send"


def test_where_version_and_missing_inputs(settings, tmp_path):
    write_table(settings, "traces", [trace_row(i) for i in range(12, 15)])  # version 1
    v0 = run_export(settings, "openai-rft", "traces", out=tmp_path / "v0.jsonl", version=0)
    latest = run_export(settings, "openai-rft", "traces", out=tmp_path / "v1.jsonl")
    assert (v0.lineage["row_count"], latest.lineage["row_count"], latest.lineage["delta_version"]) == (12, 15, 1)
    passed = run_export(settings, "openai-rft", "traces", out=tmp_path / "p.jsonl",
                        where=["outcome = 'pass'", "src_partition = 1"])
    assert passed.lineage["row_count"] == 5 and passed.lineage["rows_read"] == 15
    assert passed.lineage["filters"] == ["outcome = 'pass'", "src_partition = 1"]
    assert set(passed.lineage["offset_ranges"]["agent.traces"]) == {"1"}
    rec = json.loads(passed.files[0].read_text().splitlines()[0])
    assert rec["messages"][-1]["role"] == "user" and rec["reference_answer"].startswith("Order ")
    with pytest.raises(ExportError, match="no version 7"):
        run_export(settings, "openai-rft", "traces", out=tmp_path / "x.jsonl", version=7)
    with pytest.raises(ExportError, match="no Delta table"):
        run_export(Settings(home=tmp_path / "h2", lake_root=str(tmp_path / "empty")), "trl-sft", "traces",
                   out=tmp_path / "x.jsonl")
    with pytest.raises(ExportError, match="bad --where"):
        run_export(settings, "trl-sft", "traces", out=tmp_path / "x.jsonl", where=["no_such_column = 1"])
    with pytest.raises(ExportError, match="exports the preferences table"):
        run_export(settings, "openai-dpo", "traces", out=tmp_path / "x.jsonl")
    with pytest.raises(ExportError, match="unknown format"):
        run_export(settings, "csv", "traces", out=tmp_path / "x.jsonl")


def test_preference_margin_comes_from_strength(settings, tmp_path):
    res = run_export(settings, "trl-preference", "preferences", out=tmp_path / "p.jsonl")
    lines = [json.loads(x) for x in res.files[0].read_text().splitlines()]
    assert [x["margin"] for x in lines[:4]] == [0.25, 0.5, 0.75, 1.0]
    assert set(lines[0]) == {"prompt", "chosen", "rejected", "margin"}


def test_no_rescrub_passes_text_through_and_says_so(settings, tmp_path):
    res = run_export(settings, "trl-sft", "traces", out=tmp_path / "raw.jsonl", rescrub=False)
    assert LEAKED_EMAIL in res.files[0].read_text() and res.lineage["rescrubbed"] is False
    assert run_export(settings, "trl-sft", "traces", out=tmp_path / "s.jsonl").lineage["rescrubbed"] is True


def test_cli_exports_and_refuses_with_one_line(settings, tmp_path):
    import os
    import subprocess
    import sys

    from alignloop.runner import REPO
    from schemas.settings import settings_env

    env = settings_env(settings, os.environ)
    run = lambda *a: subprocess.run([sys.executable, "-m", "alignloop.cli", "export", *a], cwd=REPO, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    ok = run("openai-sft", "--table", "traces", "--where", "outcome = 'fail'", "--out", str(tmp_path / "f.jsonl"))
    assert ok.returncode == 0, ok.stderr
    assert "4 of 12 rows of traces@0 -> openai-sft" in ok.stdout and (tmp_path / "f.jsonl.lineage.json").is_file()
    missing = run("trl-sft", "--table", "traces", "--version", "9", "--out", str(tmp_path / "x.jsonl"))
    assert missing.returncode == 2 and "has no version 9" in missing.stderr and len(missing.stderr.splitlines()) == 1


def test_the_per_export_rescrub_gives_what_the_strict_pass_gives_running_it_once_per_distinct_string():
    from streams.scrub.strict import strict_text
    from trainers.export.base import Rescrub, inert

    texts = ["Write to jane.roe@example.com or call +1 (415) 555-0199", "hi", "<EMAIL_ab12cd34>",
             " <EMAIL_ab12cd34> <PERSON_0123abcd> ", "--- ... !!", "order A1B2C3D4 for bob smith", "",
             "my card 4111 1111 1111 1111", "<EMAIL_ab12cd34> and jane.roe@example.com"]
    r = Rescrub()
    for _ in range(3):  # repeats come from the memo
        assert [r.text(t) for t in texts] == [strict_text(t) for t in texts]
    assert r.scrubbed == 5 and r.calls == 3 * len(texts)  # once each; the tag-only, symbol-only and empty ones never
    assert inert("<EMAIL_ab12cd34>") and inert(" <EMAIL_ab12cd34> <ID> ") and inert("--- !!")
    assert not inert("<EMAIL_ab12cd34> x") and not inert("bob") and not inert("<email_ab12cd34>")
    assert r.value({"to": ["jane.roe@example.com", 3]}) == {"to": [strict_text("jane.roe@example.com"), 3]}


def test_priming_scrubs_strings_joined_with_the_same_result_as_one_by_one():
    from alignloop.bench._export_rows import trace_row
    from streams.scrub.strict import strict_text
    from trainers.export.base import Rescrub, row_texts

    planted = ["jane.roe@example.com", "call +1 (415) 555-0199", "Bob Smith", "ends with bob smith",
               "4111 1111 1111 1111", "IBAN GB82 WEST 1234 5698 7654 32", "order A1B2C3D4", "12345678",
               "Mr", "Jones wrote", "key sk-abcdefghijklmnopqrstuvwx1234", "192.168.0.1", "x" * 600 + " a@b.co"]
    texts = list(row_texts([trace_row(i) for i in range(40)])) + planted + [p + "." for p in planted]
    r = Rescrub()
    r.prime(texts)
    calls = r.scrubbed
    assert [r.text(t) for t in texts] == [strict_text(t) for t in texts]
    assert r.scrubbed == calls and calls < len(set(texts)) / 4  # all memo hits after priming, few strict calls
