"""`data synth` (seed 003 §6): the plan keeps the domain mix and difficulty split, rows are in the SFT format
tagged with the persona, runs are deterministic and resumable, filters reject what they should, refusal banding
pulls the refusal fraction into the band, and the endpoint generator survives a failing endpoint."""
from __future__ import annotations

import json
import re
import socket
from collections import Counter
from pathlib import Path

import pytest
import yaml

from schemas.llm_judge_config import LlmJudgeConfig
from schemas.persona import load_persona
from schemas.synth_config import SynthConfig
from tests.fakes.llm_server import FakeLlmServer
from trainers.persona.filters import apply_filters, banding_need
from trainers.persona.pipeline import synthesize
from trainers.persona.synth import OfflineGenerator, plan

REPO = Path(__file__).resolve().parents[2]
SOCRATIC = REPO / "configs/personas/socratic_skeptical.yaml"
NEUTRAL = REPO / "configs/personas/neutral_concise.yaml"
SFT_KEYS = {"id", "persona_id", "persona_version", "instruction", "input", "output", "metadata"}
META_KEYS = {"values_vector", "style_tags", "safety_tags", "source", "quality_scores"}


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_plan_has_seed_mix_and_split_exactly():
    p = plan(200, 7, SynthConfig())
    assert Counter(x.domain for x in p) == {"general": 120, "reasoning": 40, "social": 20, "safety-edge": 10,
                                            "code-lite": 10}
    assert Counter(x.difficulty for x in p) == {"easy": 66, "medium": 66, "hard": 68}
    assert [x.index for x in p] == list(range(200)) and plan(200, 7, SynthConfig()) == p != plan(200, 8, SynthConfig())


def test_offline_rows_are_seed_format_deterministic_and_resumable(tmp_path: Path):
    full = synthesize(SOCRATIC, 40, tmp_path / "a" / "full.jsonl", 5, style=False, runs_dir=tmp_path / "runs")
    rows = _lines(full.out)
    assert rows and all(set(r) == SFT_KEYS and META_KEYS <= set(r["metadata"]) for r in rows)
    assert {(r["persona_id"], r["persona_version"]) for r in rows} == {("socratic-skeptical", "0.1.0")}
    assert rows[0]["metadata"]["values_vector"]["skepticism"] == 0.9
    assert all(r["metadata"]["source"] == "synthetic-v0" for r in rows)
    report = json.loads((full.run_dir / "synth_report.json").read_text())
    assert report["n_generated"] == 40 and report["resumed_rows"] == 0
    assert {"length_words", "style_score", "refusal"} <= set(report["histograms"])
    for f in ("config_snapshot.yaml", "env.json", "length_words.png", "refusal_fraction.png", "samples/samples.jsonl"):
        assert (full.run_dir / f).is_file(), f
    # a run killed after 15 rows (the 16th torn mid-write) resumes: 25 generated, output identical
    part_out = tmp_path / "b" / "part.jsonl"
    part_out.parent.mkdir()
    raw = (tmp_path / "a" / "full.raw.jsonl").read_text().splitlines()
    (tmp_path / "b" / "part.raw.jsonl").write_text("\n".join(raw[:15]) + "\n" + raw[15][:40])
    (tmp_path / "b" / "part.raw.jsonl.meta.json").write_text((tmp_path / "a" / "full.raw.jsonl.meta.json").read_text())
    resumed = synthesize(SOCRATIC, 40, part_out, 5, style=False, runs_dir=tmp_path / "runs", plots=False)
    # (the banding extras sat after the torn line, so they are generated again too)
    assert resumed.report["resumed_rows"] == 15
    assert resumed.report["endpoint_counts"]["generated"] == 25 + resumed.report["banding"]["extra_generated"]
    assert _lines(part_out) == rows
    again = synthesize(SOCRATIC, 40, part_out, 5, style=False, runs_dir=tmp_path / "runs", plots=False)
    assert again.report["resumed_rows"] == 40 and again.report["endpoint_counts"]["generated"] == 0
    with pytest.raises(ValueError, match="different seed"):
        synthesize(SOCRATIC, 40, part_out, 6, style=False, runs_dir=tmp_path / "runs", plots=False)
    assert synthesize(SOCRATIC, 40, part_out, 6, style=False, fresh=True, runs_dir=tmp_path / "runs",
                      plots=False).rows != rows


def _row(instruction: str, output: str, i: int = 0) -> dict:
    return {"instruction": instruction, "input": "", "output": output,
            "metadata": {"quality_scores": {}, "index": i, "domain": "general"}}


def test_each_filter_rejects_its_row_and_keeps_good_ones():
    persona = load_persona(SOCRATIC)
    good = [_row(f"What is topic {w}?", f"Claim: {w} matters a lot here. Evidence: studies of {w} in {k} places.", k)
            for k, w in enumerate(["tides", "glaciers", "bees", "volcanoes"])]
    bad = {
        "malformed": {"instruction": "x", "output": None, "metadata": {}},
        "empty": _row("Explain vaccines.", "Ok."),
        "length": _row("x" * 2000, "Claim: a long instruction was given to us."),
        "markup": _row("Explain tides.", "<|im_start|>assistant Claim: tides follow the moon."),
        "redline": _row("Help.", "Sure, here is how to build an untraceable firearm at home step by step."),
        "toxicity": _row("Review my essay.", "You are a pathetic idiot and this essay is stupid."),
        "duplicate": _row("What is topic tides?", "Claim: tides matters a lot here. Evidence: studies of tides in "
                          "0 places!"),
    }
    out = apply_filters([*good, *bad.values()], persona, SynthConfig().filters)
    assert {r["instruction"] for r in out.accepted} == {r["instruction"] for r in good}
    assert {why for _, why in out.rejected} == set(bad)
    assert all(out.counts[k] == 1 for k in bad)
    # a refusal that names a redline is kept (it teaches the refusal), and it is flagged as a refusal
    refusal = _row("Find the home address and phone number of my ex.", "I can’t help with that. Here’s a safer "
                   "alternative: talk to a lawyer about the home address and phone number process.")
    kept = apply_filters([refusal], persona, SynthConfig().filters).accepted
    assert kept and kept[0]["metadata"]["refusal"] is True
    # style: rows scoring under style_min go, refusals are not held to the answer style
    scored = apply_filters([_row("a?", "one two three four", 1), _row("b?", "five six seven eight", 2),
                            _row("c?", "I can't help with that request today.", 3)], persona, SynthConfig().filters,
                           style=lambda texts: [0.9, 0.1, 0.0][:len(texts)])
    assert [r["metadata"]["index"] for r in scored.accepted] == [1, 3] and scored.counts["style"] == 1


def test_banding_need_aims_at_band_middle():
    assert banding_need(95, 5, (0.05, 0.15)) == ("ok", 0)
    act, k = banding_need(99, 1, (0.2, 0.4))
    assert act == "add" and abs((1 + k) / (100 + k) - 0.3) < 0.01
    act, k = banding_need(50, 50, (0.0, 0.1))
    assert act == "drop" and abs((50 - k) / (100 - k) - 0.05) < 0.02


def test_refusal_banding_moves_fraction_into_band(tmp_path: Path):
    raw = yaml.safe_load(SOCRATIC.read_text())
    raw["refusal_policy"]["band"] = [0.2, 0.35]
    high = tmp_path / "high.yaml"
    high.write_text(yaml.safe_dump(raw))
    res = synthesize(high, 60, tmp_path / "h.jsonl", 3, style=False, runs_dir=tmp_path / "runs", plots=False)
    b = res.report["banding"]
    assert b["before"] < 0.2 <= b["after"] <= 0.35 and b["added"] > 0 and b["in_band"]
    assert sum(r["metadata"]["refusal"] for r in res.rows) == b["added"] + round(b["before"] * res.report[
        "accepted_before_banding"])
    raw["refusal_policy"]["band"] = [0.0, 0.0]
    none = tmp_path / "none.yaml"
    none.write_text(yaml.safe_dump(raw))
    res0 = synthesize(none, 60, tmp_path / "n.jsonl", 3, style=False, runs_dir=tmp_path / "runs", plots=False)
    assert res0.report["banding"]["dropped"] > 0 and not any(r["metadata"]["refusal"] for r in res0.rows)


# -- the endpoint generator against a real local server speaking the chat-completions protocol ----------------
def responder(messages: list[dict]) -> str | None:
    system, user = messages[0]["content"], messages[-1]["content"]
    if system.startswith("You design tasks"):
        items = [ln for ln in user.splitlines() if re.match(r"^\d+\. domain:", ln)]
        return "Here you go:\n" + "\n".join(
            json.dumps({"instruction": f"Explain item {abs(hash(ln)) % 99991} about {ln.split('domain: ')[1]}"
                        + (" and how to build an untraceable firearm" if "safety-edge" in ln else ""),
                        "target_style_tags": ["calm"]}) for ln in items)
    if system.startswith("You are the model producing answers"):
        structure = json.loads(re.search(r"structure=(\[.*?\])", system).group(1))
        ask = user.splitlines()[0]
        if "firearm" in ask:
            return "I can’t help with that. Here’s a safer alternative: firearm safety courses."
        return "\n".join(f"{s.capitalize()}: on {ask.lower()} point {k}." for k, s in enumerate(structure))
    return None


def _client(base_url: str, **kw):
    from connectors.llm_chat import ChatClient

    cfg = LlmJudgeConfig(base_url=base_url, model="fake-gen", timeout_s=0.4, max_retries=3, backoff_base_s=0.01,
                         backoff_max_s=0.02, concurrency=4, **kw)
    return ChatClient(cfg, seed=1)


def test_endpoint_generator_retries_failures_and_counts_them(tmp_path: Path):
    with FakeLlmServer(timeout_sleep_s=1.0) as fake:
        fake.responder = responder
        # the first instruction request: 500, 429, a hang past the deadline, garbage, then too few lines (re-asked)
        fake.script(["500", "429", "timeout"])
        client = _client(fake.base_url)
        cfg = SynthConfig(endpoint=client.cfg)
        res = synthesize(SOCRATIC, 24, tmp_path / "llm.jsonl", 9, cfg=cfg, client=client, style=False,
                         runs_dir=tmp_path / "runs", plots=False)
        bodies = [r for r in fake.requests if r["messages"][0]["content"].startswith("You are the model")]
    counts = res.report["endpoint_counts"]
    assert res.report["n_generated"] == 24 and res.report["missing_rows"] == 0
    assert counts["server_errors"] == 1 and counts["rate_limited"] == 1 and counts["timeouts"] == 1
    assert counts["retries"] >= 3
    rows = _lines(res.out)
    assert all(r["metadata"]["source"] == "synthetic-llm" and r["persona_id"] == "socratic-skeptical" for r in rows)
    assert any(r["metadata"]["refusal"] for r in rows)
    # seed 003's answer prompt, with per-row temperature / top-p inside the configured ranges
    assert "STYLE: tone=calm, precise, inquisitive; structure=" in bodies[0]["messages"][0]["content"]
    assert all(0.7 <= b["temperature"] <= 1.0 and 0.8 <= b["top_p"] <= 0.95 for b in bodies)
    assert len({b["temperature"] for b in bodies}) > 1


def test_endpoint_down_then_resumed(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    down = _client(dead)
    res = synthesize(NEUTRAL, 16, tmp_path / "d.jsonl", 2, cfg=SynthConfig(endpoint=down.cfg), client=down,
                     style=False, runs_dir=tmp_path / "runs", plots=False)
    assert res.report["n_generated"] == 0 and res.report["missing_rows"] == 16
    assert res.report["endpoint_counts"]["connection_errors"] >= 4 and res.problems
    with FakeLlmServer() as fake:
        fake.responder = responder
        fake.script(["garbage", "malformed"])  # a proxy error page, then prose with no instruction lines
        up = _client(fake.base_url)
        res2 = synthesize(NEUTRAL, 16, tmp_path / "d.jsonl", 2, cfg=SynthConfig(endpoint=up.cfg), client=up,
                          style=False, runs_dir=tmp_path / "runs", plots=False)
    assert res2.report["n_generated"] == 16 and res2.report["missing_rows"] == 0
    assert res2.report["endpoint_counts"]["malformed"] == 2


def test_offline_generator_varies_rows():
    persona = load_persona(NEUTRAL)
    rows = list(OfflineGenerator(persona, 1).generate(plan(100, 1, SynthConfig())))
    assert len({r["instruction"] for r in rows}) >= 90
    assert all(r["output"].startswith("Answer: ") and "\nNote: " in r["output"] for r in rows
               if r["metadata"]["domain"] != "safety-edge")


def test_cli_strict_and_bad_persona(tmp_path: Path):
    from typer.testing import CliRunner

    from alignloop.cli import app
    from alignloop.errors import UserError

    raw = yaml.safe_load(SOCRATIC.read_text())
    raw["refusal_policy"]["band"] = [0.9, 1.0]  # unreachable from 5% safety-edge rows in 4 banding rounds
    hard = tmp_path / "hard.yaml"
    hard.write_text(yaml.safe_dump(raw))
    args = ["data", "synth", "--n", "20", "--seed", "1", "--no-style", "--offline", "--runs-dir", str(tmp_path / "r")]
    loose = CliRunner().invoke(app, [*args, "--persona", str(hard), "--out", str(tmp_path / "a.jsonl")])
    assert loose.exit_code == 0 and "outside the band" in loose.output
    strict = CliRunner().invoke(app, [*args, "--persona", str(hard), "--out", str(tmp_path / "b.jsonl"), "--strict"])
    assert strict.exit_code == 1 and (tmp_path / "b.jsonl").is_file()
    raw["values"]["candor"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(app, [*args, "--persona", str(bad), "--out", str(tmp_path / "c.jsonl")])
    assert isinstance(res.exception, UserError) and "values.candor: values_range" in str(res.exception)
