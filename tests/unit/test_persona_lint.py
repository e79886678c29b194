"""Persona linter (seed 003 §4): the two shipped personas pass; each rule violated alone gives one message
naming the field and the rule; a file with several problems reports all of them; the CLI exits non-zero."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from schemas.persona import lint_persona, lint_persona_files, validate_persona_yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p) for p in (REPO / "configs/personas").glob("*.yaml"))
BASE = yaml.safe_load((REPO / "configs/personas/socratic_skeptical.yaml").read_text())


def test_shipped_personas_pass_without_issues():
    assert {Path(p).stem for p in EXAMPLES} >= {"socratic_skeptical", "neutral_concise"}
    for path, ok, issues in lint_persona_files(EXAMPLES):
        assert ok and issues == [], (path, issues)
    neutral = validate_persona_yaml(str(REPO / "configs/personas/neutral_concise.yaml"))
    assert neutral["id"] == "neutral-concise" and neutral["style"]["tone"] == ["neutral", "compact", "plain"]
    assert neutral["refusal_policy"]["band"] == [0.08, 0.18] and neutral["values"]["neutrality"] == 0.9


def _set(path: str, value: object) -> dict:
    raw = copy.deepcopy(BASE)
    node = raw
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value is _DEL:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return raw


_DEL = object()

# (mutation path, value, expected field, expected rule, severity)
CASES = [
    ("values.empathy", _DEL, "values.empathy", "values_complete", "error"),
    ("values.candor", 1.3, "values.candor", "values_range", "error"),
    ("values.prudence", -0.1, "values.prudence", "values_range", "error"),
    ("values.skepticism", "high", "values.skepticism", "values_range", "error"),
    ("values.charisma", 0.5, "values.charisma", "values_ontology", "error"),
    ("style.tone", "calm, precise, inquisitive, warm, dry, terse, witty", "style.tone", "tone_count", "error"),
    ("style.tone", "calm, TBD", "style.tone", "tone_placeholder", "error"),
    ("style.tone", "calm, good", "style.tone", "tone_vague", "error"),
    ("style.verbosity", "huge", "style.verbosity", "verbosity_enum", "error"),
    ("style.structure", ["a", "b", "c", "d", "e", "f", "g"], "style.structure", "structure_count", "error"),
    ("style.structure", ["Claim Section", "evidence"], "style.structure[0]", "structure_case", "warning"),
    ("taboos", [], "taboos", "non_empty", "error"),
    ("redlines.safety", [], "redlines.safety", "non_empty", "error"),
    ("redlines.privacy", [], "redlines.privacy", "non_empty", "error"),
    ("refusal_policy.band", [0.3, 0.1], "refusal_policy.band", "band_range", "error"),
    ("refusal_policy.band", [0.1, 1.5], "refusal_policy.band", "band_range", "error"),
    ("refusal_policy.band", [0.1], "refusal_policy.band", "band_shape", "error"),
    ("refusal_policy.template", "", "refusal_policy.template", "non_empty", "error"),
    ("id", "Socratic Skeptical", "id", "slug", "error"),
    ("version", "0.1", "version", "semver", "error"),
    ("description", "x" * 181, "description", "description_length", "error"),
    ("refusal_policy", _DEL, "refusal_policy", "required", "error"),
    ("mood", "sunny", "mood", "unknown_field", "error"),
]


@pytest.mark.parametrize("path,value,field,rule,severity", CASES, ids=[f"{c[3]}:{c[0]}" for c in CASES])
def test_each_rule_violated_alone_names_field_and_rule(path, value, field, rule, severity):
    issues = lint_persona(_set(path, value))
    assert [(i.field, i.rule, i.severity) for i in issues] == [(field, rule, severity)], issues
    assert str(issues[0]).startswith(f"{severity}: {field}: {rule}: ")


def test_all_issues_reported_and_validate_raises_with_each(tmp_path: Path):
    raw = _set("values.candor", 2)
    raw["taboos"] = []
    raw["refusal_policy"]["band"] = [0.5, 0.2]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError) as exc:
        validate_persona_yaml(str(bad))
    msg = str(exc.value)
    for part in ("values.candor: values_range", "taboos: non_empty", "refusal_policy.band: band_range"):
        assert part in msg
    # a warning alone does not fail the persona
    warn = tmp_path / "warn.yaml"
    warn.write_text(yaml.safe_dump(_set("style.structure", ["Claim", "evidence"])))
    assert validate_persona_yaml(str(warn))["style"]["structure"] == ["Claim", "evidence"]


def test_cli_prints_per_file_status_and_exits_nonzero(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_set("style.tone", "TODO")))
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "alignloop.cli", "persona", "lint", *EXAMPLES, str(bad),
                           str(broken)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert out.count("PASS ") == len(EXAMPLES) and out.count("FAIL ") == 2
    assert "style.tone: tone_placeholder" in out and "<file>: yaml" in out
    assert f"{len(EXAMPLES)}/{len(EXAMPLES) + 2} personas pass" in out
    ok = subprocess.run([sys.executable, "-m", "alignloop.cli", "persona", "lint", *EXAMPLES], cwd=REPO,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout
