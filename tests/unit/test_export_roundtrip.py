"""Exports read back by their real consumers: TRL's SFTTrainer and DPOTrainer take a step on the tiny model from
the exported files, ``datasets.load_from_disk`` reads the hf export, the Argilla SDK rebuilds every record."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.settings import Settings
from trainers.export.run import run_export
from tests.export_tables import seed

pytest.importorskip("torch", reason="needs the train extra")

# a chat template that renders system / user / assistant turns, tool calls and tool results (real models ship
# their own; the tiny test model has none)
TEMPLATE = (
    "{% if tools %}tools: {% for t in tools %}{{ t.function.name }} {% endfor %}\n{% endif %}"
    "{% for m in messages %}{{ m.role }}: "
    "{% if m.tool_calls %}{% for c in m.tool_calls %}call {{ c.function.name }} {{ c.function.arguments | tojson }}"
    "{% endfor %}{% else %}{{ m.content }}{% endif %}"
    "{% if m.role == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    s = Settings(home=root / "h", lake_root=str(root / "lake"))
    seed(s, n=8)
    return s


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.export_tables import pref_row, trace_row
    from trainers.tiny import build_tiny_model

    words = [json.dumps(trace_row(i), default=str) for i in range(8)] + [json.dumps(pref_row(i), default=str)
                                                                           for i in range(8)]
    path = build_tiny_model(tmp_path_factory.mktemp("tiny"), words + ["system user assistant tool call tools"],
                            hidden=16, layers=1, heads=2)
    return str(path)


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _moved(before, model) -> int:
    return sum(int(not (before[n] == p.detach()).all()) for n, p in model.named_parameters() if n in before)


def _args(tmp_path: Path) -> dict:
    return dict(output_dir=str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=2, learning_rate=1e-2,
                report_to="none", disable_tqdm=True, save_strategy="no", use_cpu=True, dataloader_num_workers=0,
                max_length=256)


def test_trl_sft_trainer_takes_a_step_on_the_conversational_export_with_tools(lake, tiny, tmp_path):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    res = run_export(lake, "trl-sft", "traces", out=tmp_path / "sft.jsonl")
    ds = load_dataset("json", data_files=str(res.files[0]), split="train")
    assert len(ds) == 8 and "tools" in ds.column_names
    tok = AutoTokenizer.from_pretrained(tiny)
    tok.chat_template = TEMPLATE
    rendered = tok.apply_chat_template(ds[0]["messages"], tools=ds[0]["tools"], tokenize=False)
    assert "call email.send" in rendered and "tools: email.send" in rendered
    model = AutoModelForCausalLM.from_pretrained(tiny)
    before = _params(model)
    trainer = SFTTrainer(model=model, args=SFTConfig(**_args(tmp_path)), train_dataset=ds, processing_class=tok)
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss > 0
    assert _moved(before, model) > 0


def test_trl_dpo_trainer_takes_a_step_on_the_preference_export(lake, tiny, tmp_path):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    res = run_export(lake, "trl-preference", "preferences", out=tmp_path / "pref.jsonl")
    ds = load_dataset("json", data_files=str(res.files[0]), split="train")
    assert set(ds.column_names) == {"prompt", "chosen", "rejected", "margin"}
    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    before = _params(model)
    trainer = DPOTrainer(model=model, args=DPOConfig(**_args(tmp_path)), train_dataset=ds, processing_class=tok)
    out = trainer.train()
    assert out.global_step == 1 and _moved(before, model) > 0


def test_hf_export_loads_from_disk(lake, tmp_path):
    from datasets import load_from_disk

    res = run_export(lake, "hf", "traces", out=tmp_path / "hf")
    dd = load_from_disk(str(tmp_path / "hf"))
    assert list(dd) == ["train"] and dd["train"].num_rows == 8
    msgs = dd["train"][0]["messages"]
    assert [m["role"] for m in msgs][-3:] == ["assistant", "tool", "assistant"]
    assert json.loads(msgs[-3]["tool_calls"][0]["function"]["arguments"])["order_id"] == 1000
    assert json.loads(dd["train"][0]["tools"])[0]["function"]["name"] == "email.send"
    assert dd["train"][1]["messages"][-1]["tool_calls"] == []
    assert (tmp_path / "hf" / "lineage.json").is_file() and res.lineage["row_count"] == 8
    prefs = load_from_disk(str(run_export(lake, "hf", "preferences", out=tmp_path / "hfp").sidecar.parent))
    assert sorted(prefs["train"].column_names) == ["chosen", "margin", "prompt", "rejected"]


def test_argilla_records_rebuild_with_the_sdk_and_fit_the_settings(lake, tmp_path):
    import argilla as rg

    res = run_export(lake, "argilla", "traces", out=tmp_path / "arg")
    settings = json.loads((tmp_path / "arg" / "settings.json").read_text())
    questions = {q["name"]: {o["value"] for o in q["settings"]["options"]} for q in settings["questions"]}
    assert set(questions) == {"policy_verdict", "tool_use_verdict"}
    metadata = {m["name"] for m in settings["metadata"]}
    lines = (tmp_path / "arg" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 8 == res.lineage["row_count"]
    verdicts = []
    for line in lines:
        rec = rg.Record.from_dict(json.loads(line))
        assert set(rec.fields.to_dict()) == {f["name"] for f in settings["fields"]}
        for s in rec.suggestions:
            assert s.question_name in questions and s.value in questions[s.question_name] and 0 <= s.score <= 1
        assert set(rec.metadata.to_dict()) <= metadata
        verdicts.append(rec.suggestions["policy_verdict"].value)
        assert rec.suggestions["policy_verdict"].agent == "policy@2"
    assert verdicts.count("fail") == 3  # t0, t3, t6 failed the policy judge


def test_a_grader_is_a_reward_function_for_trl_grpo(tiny, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from trainers.grading import Grader, reward_function

    seen: list[list[float]] = []
    grader = reward_function(Grader({"type": "text_similarity", "name": "sim", "input": "{{sample.output_text}}",
                                     "reference": "{{item.reference_answer}}", "evaluation_metric": "rouge_1"}))

    refs: list[str] = []

    def reward(prompts, completions, **cols):
        out = grader(prompts, completions, **cols)
        seen.append(out)
        refs.extend(cols["reference_answer"])
        return out

    ds = Dataset.from_list([{"prompt": f"Where is order {i}?", "reference_answer": f"Order {i} ships tomorrow."}
                            for i in range(4)])
    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    args = GRPOConfig(output_dir=str(tmp_path / "grpo"), max_steps=1, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=6, learning_rate=1e-2, report_to="none",
                      disable_tqdm=True, save_strategy="no", use_cpu=True, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok)
    assert trainer.train().global_step == 1
    assert seen and all(0.0 <= x <= 1.0 for batch in seen for x in batch)
    assert refs and all(r.startswith("Order ") for r in refs)  # the item columns reach the grader
