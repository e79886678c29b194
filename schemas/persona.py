"""Persona YAML (seed 003 §4): the schema, its linter and ``validate_persona_yaml(path)``.

A persona is a policy artefact: an id and semver, a fixed value ontology in [0, 1], a style (tone, verbosity,
ordered structure), taboos, redlines, tie-breaks and a refusal policy with a target band. The linter checks the
raw mapping rule by rule so a file reports *every* issue at once, each naming the field and the rule
(``values.candor: values_range: 1.3 is outside [0, 1]``); the pydantic model is the normalised result.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

VALUES = ("candor", "prudence", "helpfulness", "skepticism", "risk_aversion", "empathy", "neutrality")
VERBOSITY = ("short", "medium", "long")
MAX_TONE = 6
MAX_STRUCTURE = 6
MAX_DESCRIPTION = 180
MAX_TIE_BREAK = 120
TOP_FIELDS = ("id", "version", "description", "values", "style", "taboos", "redlines", "tie_breaks",
              "refusal_policy")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_SECTION = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")  # snake_case or kebab-case
# A tone that still holds a placeholder was never finished; a vague word says nothing about style.
PLACEHOLDERS = ("tbd", "todo", "tba", "fixme", "xxx", "placeholder", "lorem", "...", "???", "<", ">")
VAGUE = frozenset({"good", "nice", "great", "ok", "okay", "fine", "bad", "normal", "cool", "awesome", "best"})


class LintIssue(BaseModel):
    model_config = ConfigDict(frozen=True)
    field: str
    rule: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.field}: {self.rule}: {self.message}"


class PersonaStyle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tone: list[str] = Field(..., description="Tone descriptors (the YAML gives them comma-separated).")
    verbosity: Literal["short", "medium", "long"]
    structure: list[str] = Field(default_factory=list, description="Ordered section names (0-6).")


class Redlines(BaseModel):
    model_config = ConfigDict(extra="forbid")
    safety: list[str]
    privacy: list[str]


class RefusalPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    band: tuple[float, float] = Field(..., description="Target refusal rate [low, high].")
    template: str = Field(..., description="The refusal's surface text.")


class Persona(BaseModel):
    """A linted persona, normalised (tone split into descriptors, band a pair of floats)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    version: str
    description: str
    values: dict[str, float]
    style: PersonaStyle
    taboos: list[str]
    redlines: Redlines
    tie_breaks: list[str] = Field(default_factory=list)
    refusal_policy: RefusalPolicy

    @property
    def tag(self) -> str:
        return f"{self.id}@{self.version}"

    def content_hash(self) -> str:
        """A fingerprint of the persona's content (datasets and adapters record it)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def values_vector(self) -> dict[str, float]:
        return {k: self.values[k] for k in VALUES}

    def redline_terms(self) -> list[str]:
        return [*self.redlines.safety, *self.redlines.privacy]


@dataclass
class LintResult:
    path: str
    issues: list[LintIssue]

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    @property
    def errors(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "warning"]


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def split_tone(tone: Any) -> list[str]:
    """'calm, precise' or ['calm', 'precise'] -> ['calm', 'precise']."""
    parts = tone.split(",") if isinstance(tone, str) else tone if isinstance(tone, list) else []
    return [str(p).strip() for p in parts if str(p).strip()]


class _Lint:
    def __init__(self) -> None:
        self.issues: list[LintIssue] = []

    def err(self, field: str, rule: str, message: str) -> None:
        self.issues.append(LintIssue(field=field, rule=rule, message=message))

    def warn(self, field: str, rule: str, message: str) -> None:
        self.issues.append(LintIssue(field=field, rule=rule, message=message, severity="warning"))

    def string_list(self, field: str, value: Any, *, non_empty: bool = True) -> None:
        if not isinstance(value, list):
            self.err(field, "type", f"must be a list of strings, got {type(value).__name__}")
        elif non_empty and not value:
            self.err(field, "non_empty", "must not be an empty list")
        else:
            for i, item in enumerate(value):
                if not isinstance(item, str) or not item.strip():
                    self.err(f"{field}[{i}]", "non_empty", "each item must be a non-empty string")


def _lint_header(lint: _Lint, raw: dict[str, Any]) -> None:
    pid, ver, desc = raw.get("id"), raw.get("version"), raw.get("description")
    if pid is not None and (not isinstance(pid, str) or not _SLUG.match(pid)):
        lint.err("id", "slug", f"{pid!r} is not a slug (lower-case words joined by '-', e.g. socratic-skeptical)")
    if ver is not None and (not isinstance(ver, str) or not _SEMVER.match(ver)):
        lint.err("version", "semver", f"{ver!r} is not semver MAJOR.MINOR.PATCH (quote it in YAML: \"0.1.0\")")
    if desc is not None:
        if not isinstance(desc, str) or not desc.strip():
            lint.err("description", "non_empty", "must be a non-empty string")
        elif len(desc) > MAX_DESCRIPTION:
            lint.err("description", "description_length", f"{len(desc)} chars; at most {MAX_DESCRIPTION}")


def _lint_values(lint: _Lint, values: Any) -> None:
    if not isinstance(values, dict):
        lint.err("values", "type", f"must be a mapping of {', '.join(VALUES)}")
        return
    for k in VALUES:
        if k not in values:
            lint.err(f"values.{k}", "values_complete", f"missing; the ontology is {', '.join(VALUES)}")
        elif not _num(values[k]):
            lint.err(f"values.{k}", "values_range", f"{values[k]!r} is not a number in [0, 1]")
        elif not 0 <= values[k] <= 1:
            lint.err(f"values.{k}", "values_range", f"{values[k]} is outside [0, 1]")
    for k in values:
        if k not in VALUES:
            lint.err(f"values.{k}", "values_ontology", f"not in the fixed ontology ({', '.join(VALUES)})")


def _lint_style(lint: _Lint, style: Any) -> None:
    if not isinstance(style, dict):
        lint.err("style", "type", "must be a mapping with tone, verbosity, structure")
        return
    for k in style:
        if k not in ("tone", "verbosity", "structure"):
            lint.err(f"style.{k}", "unknown_field", "style has tone, verbosity and structure only")
    if "tone" not in style:
        lint.err("style.tone", "required", "missing")
    else:
        tone = split_tone(style["tone"])
        if not tone:
            lint.err("style.tone", "non_empty", "give comma-separated adjectives, e.g. \"calm, precise\"")
        if len(tone) > MAX_TONE:
            lint.err("style.tone", "tone_count", f"{len(tone)} descriptors; at most {MAX_TONE}")
        for t in tone:
            if any(p in t.lower() for p in PLACEHOLDERS):
                lint.err("style.tone", "tone_placeholder", f"{t!r} is a placeholder; write the real descriptor")
            elif t.lower() in VAGUE:
                lint.err("style.tone", "tone_vague", f"{t!r} is too vague to steer style; say how (e.g. precise)")
    if style.get("verbosity") not in VERBOSITY:
        lint.err("style.verbosity", "verbosity_enum", f"{style.get('verbosity')!r}; one of {'|'.join(VERBOSITY)}")
    structure = style.get("structure", [])
    if not isinstance(structure, list):
        lint.err("style.structure", "type", "must be an ordered list of section names")
        return
    if len(structure) > MAX_STRUCTURE:
        lint.err("style.structure", "structure_count", f"{len(structure)} sections; 0 to {MAX_STRUCTURE}")
    for i, name in enumerate(structure):
        if not isinstance(name, str) or not name.strip():
            lint.err(f"style.structure[{i}]", "non_empty", "each section name must be a non-empty string")
        elif not _SECTION.match(name):
            lint.warn(f"style.structure[{i}]", "structure_case", f"{name!r} should be snake_case or kebab-case")
    if len({s for s in structure if isinstance(s, str)}) < len(structure):
        lint.err("style.structure", "structure_unique", "section names repeat")


def _lint_policy(lint: _Lint, raw: dict[str, Any]) -> None:
    if "taboos" in raw:
        lint.string_list("taboos", raw["taboos"])
    red = raw.get("redlines")
    if red is not None:
        if not isinstance(red, dict):
            lint.err("redlines", "type", "must be a mapping with safety and privacy lists")
        else:
            for k in ("safety", "privacy"):
                if k not in red:
                    lint.err(f"redlines.{k}", "required", "missing (a non-empty list)")
                else:
                    lint.string_list(f"redlines.{k}", red[k])
            for k in red:
                if k not in ("safety", "privacy"):
                    lint.err(f"redlines.{k}", "unknown_field", "redlines has safety and privacy only")
    if "tie_breaks" in raw:
        lint.string_list("tie_breaks", raw["tie_breaks"], non_empty=False)
        for i, t in enumerate(raw["tie_breaks"] if isinstance(raw["tie_breaks"], list) else []):
            if isinstance(t, str) and len(t) > MAX_TIE_BREAK:
                lint.warn(f"tie_breaks[{i}]", "tie_break_length", f"{len(t)} chars; keep heuristics short")
    pol = raw.get("refusal_policy")
    if pol is None:
        return
    if not isinstance(pol, dict):
        lint.err("refusal_policy", "type", "must be a mapping with band and template")
        return
    band = pol.get("band")
    if not (isinstance(band, list) and len(band) == 2 and all(_num(b) for b in band)):
        lint.err("refusal_policy.band", "band_shape", f"{band!r}; must be [low, high], two numbers")
    elif not 0 <= band[0] <= band[1] <= 1:
        lint.err("refusal_policy.band", "band_range", f"{band}; need 0 <= low <= high <= 1")
    tpl = pol.get("template")
    if not isinstance(tpl, str) or not tpl.strip():
        lint.err("refusal_policy.template", "non_empty", "the refusal's surface text must be a non-empty string")
    for k in pol:
        if k not in ("band", "template"):
            lint.err(f"refusal_policy.{k}", "unknown_field", "refusal_policy has band and template only")


def lint_persona(raw: Any) -> list[LintIssue]:
    """Every issue of a raw persona mapping (errors and warnings), in file order."""
    lint = _Lint()
    if not isinstance(raw, dict):
        lint.err("<root>", "mapping", "a persona file must be a YAML mapping")
        return lint.issues
    for k in TOP_FIELDS:
        if k not in raw and k != "tie_breaks":
            lint.err(k, "required", "missing")
    for k in raw:
        if k not in TOP_FIELDS:
            lint.err(str(k), "unknown_field", f"not a persona field ({', '.join(TOP_FIELDS)})")
    _lint_header(lint, raw)
    if "values" in raw:
        _lint_values(lint, raw["values"])
    if "style" in raw:
        _lint_style(lint, raw["style"])
    _lint_policy(lint, raw)
    return lint.issues


def _read(path: Path) -> tuple[Any, list[LintIssue]]:
    if not path.is_file():
        return None, [LintIssue(field="<file>", rule="exists", message=f"{path} not found")]
    try:
        return yaml.safe_load(path.read_text()), []
    except yaml.YAMLError as exc:
        return None, [LintIssue(field="<file>", rule="yaml", message=str(exc).replace("\n", " ")[:200])]


def lint_persona_file(path: str | Path) -> LintResult:
    raw, issues = _read(Path(path))
    return LintResult(str(path), issues or lint_persona(raw))


def lint_persona_files(paths: list[str]) -> list[tuple[str, bool, list[str]]]:
    """Seed 003's contract: (path, passed, issues) per file."""
    out = []
    for p in paths:
        res = lint_persona_file(p)
        out.append((p, res.ok, [str(i) for i in res.issues]))
    return out


def normalise(raw: dict[str, Any]) -> Persona:
    data = dict(raw)
    data["style"] = {**raw["style"], "tone": split_tone(raw["style"]["tone"])}
    data["values"] = {k: float(raw["values"][k]) for k in VALUES}
    return Persona.model_validate(data)


def load_persona(path: str | Path) -> Persona:
    """The linted persona, or ValueError listing every error (warnings do not stop it)."""
    res = lint_persona_file(path)
    if not res.ok:
        raise ValueError(f"persona {path} fails lint: " + "; ".join(str(i) for i in res.errors))
    raw, _ = _read(Path(path))
    return normalise(raw)


def validate_persona_yaml(path: str) -> dict[str, Any]:
    """Seed 003's contract: load and validate a persona YAML; the normalised dict, or ValueError with all issues."""
    return load_persona(path).model_dump(mode="json")
