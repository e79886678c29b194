"""What every exporter shares: the plugin shape, and a table row as a neutral conversation.

An exporter is one class: ``name``, the ``tables`` it reads, ``export(rows, out) -> files``. ``run_export``
(``trainers.export.run``) reads the pinned snapshot, applies the filters and the agreement gate, calls
``export`` and writes the lineage sidecar, so an exporter never deals with Delta, filters or lineage.
Text is passed through the strict scrub tier once more on the way out (defence in depth, as the trainers do):
tables are scrubbed already, but a row may predate a scrubber fix. ``Rescrub`` runs that pass once per distinct
string of an export.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any, ClassVar

from streams.scrub.strict import strict_text as _strict_text
from streams.scrub.strict import strict_value as _strict_value

CHAT_ROLES = ("system", "user", "assistant")


@dataclass
class ToolUse:
    name: str
    args: dict[str, Any]
    result: Any = None
    error: str | None = None


@dataclass
class Conversation:
    """One turn as messages: system (context that is not a chat turn folded in), history, the user message, the
    turn's tool calls with their results, and the final answer."""

    id: str
    system: str = ""
    history: list[tuple[str, str]] = field(default_factory=list)  # (user | assistant, text) before this turn
    user: str = ""
    tools_used: list[ToolUse] = field(default_factory=list)
    answer: str = ""
    tool_schemas: list[dict[str, Any]] = field(default_factory=list)  # OpenAI-style {"type": "function", ...}
    row: dict[str, Any] = field(default_factory=dict)


def _loads(v: Any, default: Any) -> Any:
    if not v:
        return default
    try:
        return json.loads(v)
    except (TypeError, json.JSONDecodeError):
        return default


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "string"


def inferred_schema(name: str, calls: list[ToolUse]) -> dict[str, Any]:
    """A function schema for a tool the trace used but did not declare: its argument names and JSON types, as
    seen in the calls."""
    props: dict[str, Any] = {}
    for c in calls:
        for k, v in c.args.items():
            props.setdefault(k, {"type": _json_type(v)})
    return {"type": "function", "function": {"name": name, "description": f"{name} (schema inferred from logged calls)",
                                             "parameters": {"type": "object", "properties": props}}}


def _keep(v: Any) -> Any:
    return v


_SEP = "\n\x1f\n"  # streams.scrub.trace's separator: no detector's span crosses it
_LONG = 512
_GROUP_CHARS = 4096
_ONLY_TAGS = re.compile(r"(?:\s*<[A-Z][A-Z_]{1,30}(?:_[0-9a-f]{6,64})?>)*\s*")


def inert(text: str) -> bool:
    """Whether the strict pass provably leaves ``text`` as it is: only pseudonyms/tags and whitespace (the strict
    pass drops every finding that overlaps a tag, and no detector matches whitespace alone), or no letter or digit
    at all (every detector — structured kinds, credentials, ids, names — needs one)."""
    return _ONLY_TAGS.fullmatch(text) is not None or not any(ch.isalnum() for ch in text)


class Rescrub:
    """The strict pass over one export's text: each distinct string scrubbed once. The pass is a pure function of
    the text (no key, no state that changes its output), so a repeated string — system prompts, memory, tool
    results and errors, pseudonyms in tool arguments — gets the output it got the first time; inert strings
    (``inert``) are passed through. Bounded: cleared when ``max_entries`` distinct strings are held."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._d: dict[str, str] = {}
        self.scrubbed = 0  # strings the strict pass actually ran on
        self.calls = 0

    def text(self, s: str) -> str:
        self.calls += 1
        if not s:
            return s
        hit = self._d.get(s)
        if hit is None:
            if inert(s):
                hit = s
            else:
                hit = _strict_text(s)
                self.scrubbed += 1
            if len(self._d) >= self.max_entries:
                self._d.clear()
            self._d[s] = hit
        return hit

    def prime(self, texts: Any) -> None:
        """Scrub the distinct new ``texts`` ahead, joined in groups as the stream scrubs a trace's strings
        (``streams.scrub.trace``: one ``scrub`` call per group, findings mapped back by offset, a string a finding
        straddles into scrubbed on its own), so the per-row calls that follow are memo hits. The per-call cost of
        the strict pass is mostly fixed: a short string alone costs about what 30 of them joined do."""
        todo = [t for t in dict.fromkeys(t for t in texts if t and isinstance(t, str)) if t not in self._d]
        if len(self._d) + len(todo) > self.max_entries:
            self._d.clear()
        todo = [t for t in todo if not (inert(t) and not self._d.__setitem__(t, t))]
        group: list[str] = []
        size = 0
        for t in todo:
            if len(t) >= _LONG:  # alone: a recurring long text hits the scrubber's own memo
                self._d[t] = _strict_text(t)
                self.scrubbed += 1
                continue
            group.append(t)
            size += len(t)
            if size >= _GROUP_CHARS:
                self._joined(group)
                group, size = [], 0
        if group:
            self._joined(group)

    def _joined(self, group: list[str]) -> None:
        from bisect import bisect_right

        from streams.scrub.strict import strict_scrubber

        starts, pos = [], 0
        for t in group:
            starts.append(pos)
            pos += len(t) + len(_SEP)
        found = strict_scrubber().replacements(_SEP.join(group))
        per: dict[int, list[tuple[str, int, int, str]]] = {}
        redo: set[int] = set()
        for f in found:
            i = bisect_right(starts, f[1]) - 1
            if f[2] > starts[i] + len(group[i]):  # runs into a separator: those strings are scrubbed alone
                redo.update(range(i, bisect_right(starts, f[2] - 1)))
            else:
                per.setdefault(i, []).append(f)
        for i, t in enumerate(group):
            if i in redo:
                self._d[t] = _strict_text(t)
                self.scrubbed += 1
                continue
            fs = per.get(i)
            if not fs:
                self._d[t] = t
                continue
            base, parts, cur = starts[i], [], 0
            for _, a, b, rep in sorted(fs, key=lambda f: f[1]):
                parts.append(t[cur:a - base])
                parts.append(rep)
                cur = b - base
            parts.append(t[cur:])
            self._d[t] = "".join(parts)
        self.scrubbed += 1  # one strict call for the group

    def value(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        return v


def _strings(v: Any) -> Iterator[str]:
    if isinstance(v, str):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from _strings(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from _strings(x)


def row_texts(rows: list[dict[str, Any]]) -> Iterator[str]:
    """The strings ``conversation`` / ``preference_record`` pass to the strict pass, for ``Rescrub.prime``."""
    for row in rows:
        for k in ("user_message", "final_response", "prompt", "response", "chosen", "rejected"):
            v = row.get(k)
            if isinstance(v, str):
                yield v
        for item in _loads(row.get("context_json"), []):
            if isinstance(item, dict):
                c = item.get("content", "")
                if isinstance(c, str):
                    yield c
        for c in _loads(row.get("tool_calls_json"), []):
            if isinstance(c, dict):
                yield from _strings(c.get("args"))
                yield from _strings(c.get("result"))
                if isinstance(c.get("error"), str):
                    yield c["error"]


def cleaners(rescrub: "bool | Rescrub") -> tuple[Any, Any]:
    """(text, value) functions for ``rescrub``: a Rescrub's, the strict pass's, or identity when off."""
    if isinstance(rescrub, Rescrub):
        return rescrub.text, rescrub.value
    return (_strict_text, _strict_value) if rescrub else (_keep, _keep)


def conversation(row: dict[str, Any], rescrub: "bool | Rescrub" = True) -> Conversation:
    """A ``traces`` or ``sft_examples`` row as a Conversation (text scrubbed strictly once more unless
    ``rescrub`` is off)."""
    strict_text, strict_value = cleaners(rescrub)
    if "final_response" not in row:  # sft_examples: the prompt already renders the context in
        return Conversation(id=str(row.get("example_id")), user=strict_text(row["prompt"]),
                            answer=strict_text(row["response"]), row=row)
    system: list[str] = []
    history: list[tuple[str, str]] = []
    for item in _loads(row.get("context_json"), []):
        role, content = item.get("role", "context"), strict_text(item.get("content", ""))
        if role in ("user", "assistant"):
            history.append((role, content))
        elif role == "system":
            system.append(content)
        else:  # memory, documents, retrieved context: what the model saw besides the chat, as system text
            system.append(f"[{role}] {content}")
    calls = [ToolUse(name=c["name"], args=strict_value(c.get("args") or {}), result=strict_value(c.get("result")),
                     error=strict_text(c["error"]) if c.get("error") else None)
             for c in _loads(row.get("tool_calls_json"), [])]
    declared = [t for t in (_loads(row.get("metadata_json"), {}).get("tools") or [])
                if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    names = {t["function"].get("name") for t in declared}
    schemas = [t for t in declared if t["function"].get("name") in {c.name for c in calls}] if calls else []
    for name in dict.fromkeys(c.name for c in calls):
        if name not in names:
            schemas.append(inferred_schema(name, [c for c in calls if c.name == name]))
    return Conversation(id=str(row["trace_id"]), system="\n".join(system), history=history,
                        user=strict_text(row.get("user_message") or ""), tools_used=calls,
                        answer=strict_text(row.get("final_response") or ""), tool_schemas=schemas, row=row)


def tool_text(v: Any) -> str:
    """A tool result as the text a tool message carries."""
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)


def safe_function_name(name: str) -> str:
    """OpenAI function names match ^[a-zA-Z0-9_-]{1,64}$ (``email.send`` becomes ``email_send``)."""
    return (re.sub(r"[^a-zA-Z0-9_-]", "_", name) or "tool")[:64]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    return path


class Exporter:
    """The plugin shape. ``tables``: the tables it reads; ``human_labels``: rows whose source is ``human`` fall
    under the agreement gate. ``export`` writes into ``out`` (a directory, or a ``.jsonl`` file for JSONL formats)
    and returns the files written."""

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    directory: ClassVar[bool] = False  # writes a directory (datasets, Argilla), never one JSONL file

    def __init__(self, rescrub: bool = True) -> None:
        # the strict scrub tier over every text again, once per distinct string (Rescrub); False: off
        self.rescrub: bool | Rescrub = Rescrub() if rescrub else False

    def records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def primed(self, rows: list[dict[str, Any]], chunk: int = 5_000) -> Iterator[dict[str, Any]]:
        """``rows``, each chunk's strings strict-scrubbed ahead in joined groups (``Rescrub.prime``) before its rows
        are yielded; the rows as they are with rescrub off."""
        if not isinstance(self.rescrub, Rescrub):
            yield from rows
            return
        for i in range(0, len(rows), chunk):
            part = rows[i:i + chunk]
            self.rescrub.prime(row_texts(part))
            yield from part

    def target(self, out: Path) -> Path:
        return out if out.suffix == ".jsonl" else out / f"{self.name}.jsonl"

    def export(self, rows: list[dict[str, Any]], out: Path) -> list[Path]:
        return [write_jsonl(self.target(out), self.records(rows))]
