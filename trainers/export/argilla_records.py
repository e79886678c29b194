"""Argilla v2 export: one ``argilla.Record`` per trace, the judges' verdicts as suggestions (value pass/fail,
score = the judge's confidence, agent = ``<judge>@<version>``), scores and agent names as metadata.

Records are built with the SDK's ``Record`` / ``Suggestion`` objects and written with ``Record.to_dict()``; no
server is needed. ``settings.json`` describes the dataset those records fit (fields, one label question per judge,
metadata properties), in the layout of ``argilla.Settings.serialize()``: with a server, create the dataset from it
and log ``Record.from_dict(line)`` for every line (docs/integrations.md).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainers.export.base import Exporter, conversation, tool_text, write_jsonl

LABELS = ["pass", "fail"]


def _verdicts(row: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return [v for v in json.loads(row.get("verdicts_json") or "[]") if v.get("status", "ok") == "ok"]
    except json.JSONDecodeError:
        return []


def question_name(judge: str) -> str:
    return f"{judge}_verdict".replace(".", "_").replace("-", "_")


def settings_dict(questions: list[str], score_keys: list[str]) -> dict[str, Any]:
    return {
        "guidelines": "Is the agent's response acceptable? The judges' verdicts are pre-filled as suggestions.",
        "fields": [{"name": n, "title": n.replace("_", " "), "required": n != "tools", "type": "text",
                    "settings": {"type": "text", "use_markdown": True}} for n in ("prompt", "response", "tools")],
        "questions": [{"name": q, "title": q.replace("_", " "), "required": False, "type": "label_selection",
                       "settings": {"type": "label_selection", "options": [{"value": v, "text": v} for v in LABELS]}}
                      for q in questions],
        "metadata": [{"name": n, "type": "terms", "visible_for_annotators": True} for n in ("agent_id", "policy_id",
                                                                                          "outcome")]
        + [{"name": k, "type": "float", "visible_for_annotators": True} for k in score_keys],
        "vectors": [], "allow_extra_metadata": True,
        "distribution": {"strategy": "overlap", "min_submitted": 1}, "mapping": None,
    }


class ArgillaExport(Exporter):
    name = "argilla"
    tables = ("traces",)
    directory = True

    def records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import argilla as rg

        out = []
        for r in self.primed(rows):
            c = conversation(r, self.rescrub)
            prompt = "\n\n".join([f"**system**: {c.system}"] * bool(c.system) + [f"**{role}**: {t}"
                                 for role, t in c.history] + [f"**user**: {c.user}"])
            tools = "\n".join(f"{t.name}({json.dumps(t.args, sort_keys=True)}) -> {tool_text(t.error or t.result)}"
                              for t in c.tools_used)
            scores = json.loads(r.get("scores_json") or "{}")
            suggestions = [rg.Suggestion(question_name=question_name(v["judge"]),
                                         value="pass" if v.get("passed", True) else "fail",
                                         score=float(v.get("confidence", 1.0)),
                                         agent=f"{v['judge']}@{v.get('judge_version', '1')}")
                           for v in _verdicts(r)]
            rec = rg.Record(id=c.id, fields={"prompt": prompt, "response": c.answer, "tools": tools or "(none)"},
                            metadata={"agent_id": r.get("agent_id"), "policy_id": r.get("policy_id"),
                                      "outcome": r.get("outcome"), **{k: float(v) for k, v in scores.items()}},
                            suggestions=suggestions)
            out.append(rec.to_dict())
        return out

    def export(self, rows: list[dict[str, Any]], out: Path) -> list[Path]:
        records = self.records(rows)
        questions = sorted({q for rec in records for q in rec["suggestions"]})
        score_keys = sorted({k for rec in records for k, v in rec["metadata"].items() if isinstance(v, float)})
        out.mkdir(parents=True, exist_ok=True)
        settings = out / "settings.json"
        settings.write_text(json.dumps(settings_dict(questions, score_keys), indent=2, sort_keys=True) + "\n")
        for rec in records:
            rec.pop("_server_id", None)
        return [write_jsonl(out / "records.jsonl", records), settings]
