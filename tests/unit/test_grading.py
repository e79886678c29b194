"""RFT graders run locally: each type scores what it should, bad graders are refused, failures cost one sample."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from alignloop.runner import REPO
from tests.fakes.llm_server import FakeLlmServer
from trainers.grading import Grader, GraderError, formula, reward_function, similarity

ITEMS = [{"reference_answer": "Paris"}, {"reference_answer": "Rome"}]
SAMPLES = [{"output_text": "Paris"}, {"output_text": "The capital is Milan"}]


def scores(spec, items=ITEMS, samples=SAMPLES, **kw):
    return [g.score for g in Grader(spec, **kw).grade(items, samples)]


def test_string_check_operations():
    base = {"type": "string_check", "input": "{{ sample.output_text }}", "reference": "{{item.reference_answer}}"}
    assert scores({**base, "operation": "eq"}) == [1.0, 0.0]
    assert scores({**base, "operation": "ne"}) == [0.0, 1.0]
    assert scores({**base, "operation": "like"}, samples=[{"output_text": "It is Paris."},
                                                            {"output_text": "rome"}]) == [1.0, 0.0]
    assert scores({**base, "operation": "ilike"}, samples=[{"output_text": "x"}, {"output_text": "ROME!"}]) == [0, 1]


@pytest.mark.parametrize("metric", ["fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2", "rouge_l"])
def test_text_similarity_ranks_closer_text_higher(metric):
    ref = "the order ships tomorrow by express courier"
    same, near, far = (similarity(metric, t, ref) for t in (
        ref, "the order ships tomorrow by courier", "bananas are yellow"))
    assert same == pytest.approx(1.0, abs=1e-6) and same >= near > far >= 0.0


def test_rouge_values():
    assert similarity("rouge_1", "a b c d", "a b x y") == pytest.approx(0.5)
    assert similarity("rouge_l", "a b c d", "a x c d") == pytest.approx(0.75)


def test_python_grader_runs_isolated_with_errors_and_timeouts_per_sample():
    src = "def grade(sample, item):\n    if item['reference_answer'] == 'Rome':\n        raise ValueError('no')\n" \
          "    return len(sample['output_text']) / 10\n"
    got = Grader({"type": "python", "source": src}).grade(ITEMS, SAMPLES)
    assert got[0].score == pytest.approx(0.5) and got[1].score == 0.0 and "ValueError: no" in got[1].detail["error"]
    loop = Grader({"type": "python", "source": "def grade(s, i):\n    while True: pass\n"}, python_timeout_s=1)
    assert all("ran past" in g.detail["error"] for g in loop.grade(ITEMS, SAMPLES))
    with pytest.raises(GraderError, match="does not compile"):
        Grader({"type": "python", "source": "def grade(:"})


def test_multi_grader_combines_named_sub_graders():
    spec = {"type": "multi", "calculate_output": "0.7 * exact + 0.3 * fuzzy", "graders": {
        "exact": {"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.reference_answer}}",
                  "operation": "eq"},
        "fuzzy": {"type": "text_similarity", "input": "{{sample.output_text}}",
                  "reference": "{{item.reference_answer}}", "evaluation_metric": "fuzzy_match"}}}
    got = Grader(spec).grade(ITEMS, SAMPLES)
    assert got[0].score == pytest.approx(1.0) and got[0].detail == {"exact": 1.0, "fuzzy": 1.0}
    assert 0 < got[1].score < 0.3
    assert formula("max(a, b) - abs(-1) + 2 ** 2", {"a": 1, "b": 3}) == 6
    with pytest.raises(GraderError, match="only numbers"):
        formula("__import__('os').system('x')", {})


def test_score_model_through_an_openai_compatible_endpoint():
    spec = {"type": "score_model", "name": "judge", "model": "fake", "range": [0, 1], "input": [
        {"role": "system", "content": 'Score the answer from 0 to 1. Reply with {"result": <score>}.'},
        {"role": "user", "content": "Q: {{item.question}}\nA: {{sample.output_text}}"}]}
    items = [{"question": "q1"}, {"question": "q2"}, {"question": "q3"}]
    samples = [{"output_text": "fine"}, {"output_text": "BAD answer"}, {"output_text": "fine"}]
    with FakeLlmServer() as fake:
        fake.script(["ok", "ok", "500", "500", "500"])  # the third sample: the endpoint keeps failing
        got = Grader(spec, base_url=fake.base_url).grade(items, samples)
        assert [g.score for g in got] == [0.9, 0.1, 0.0]
        assert "failed 3 times" in got[2].detail["error"]
        assert fake.requests[1]["messages"][1]["content"] == "Q: q2\nA: BAD answer"
    with pytest.raises(GraderError, match="--base-url"):
        Grader(spec)


def test_bad_graders_are_refused_up_front():
    for spec, msg in [({"type": "label_model"}, "not supported"), ({"type": "string_check"}, "needs input"),
                      ({"type": "string_check", "input": "", "reference": "", "operation": "regex"}, "operation"),
                      ({"type": "text_similarity", "input": "", "reference": "", "evaluation_metric": "x"}, "unknown"),
                      ({"type": "multi", "graders": {}, "calculate_output": "nope + 1"}, "only numbers")]:
        with pytest.raises(GraderError, match=msg):
            Grader(spec)


def test_reward_function_for_trl_reads_dataset_columns():
    reward = reward_function(Grader({"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
                                     "reference": "{{item.answer}}", "operation": "eq"}))
    got = reward(prompts=["p1", "p2"], completions=[[{"role": "assistant", "content": "4"}],
                                                    [{"role": "assistant", "content": "5"}]], answer=["4", "4"])
    assert got == [1.0, 0.0] and reward.__name__ == "grader_exact"


def test_cli_prints_means_and_writes_scores(tmp_path):
    graders = tmp_path / "g.json"
    graders.write_text(json.dumps([{"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
                                    "reference": "{{item.reference_answer}}", "operation": "eq"}]))
    data = tmp_path / "d.jsonl"
    data.write_text('{"reference_answer": "a", "output_text": "a"}\nnot json\n'
                    '{"item": {"reference_answer": "b"}, "sample": {"output_text": "c"}}\n')
    out = subprocess.run([sys.executable, "-m", "alignloop.cli", "grade", "--graders", str(graders), "--data",
                          str(data), "--out", str(tmp_path / "s.jsonl")], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "exact: mean 0.5000 over 2 samples" in out.stdout and "line 2: not a JSON object" in out.stderr
    assert [json.loads(x)["exact"]["score"] for x in (tmp_path / "s.jsonl").read_text().splitlines()] == [1.0, 0.0]
    graders.write_text('{"type": "string_check"}')
    bad = subprocess.run([sys.executable, "-m", "alignloop.cli", "grade", "--graders", str(graders), "--data",
                          str(data)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "needs input" in bad.stderr
