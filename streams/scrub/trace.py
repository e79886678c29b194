"""Scrub every text-bearing field of a Trace; the one function both the stream and library callers use.

Values under secret-looking keys (password, token, api_key, ...) are replaced wholesale, whatever they look like,
because a password needs no recognisable shape. Structures nested deeper than ``max_depth`` are replaced by a
marker rather than walked, so hostile tool args cannot exhaust the stack or the time budget.

For speed the short strings of one trace are joined with a separator and scrubbed in one ``scrub`` call (the
per-call overhead of ~20 short strings would otherwise dominate); findings are mapped back to their strings by
offset, and the rare finding that straddles a separator sends the strings it touches back to be scrubbed one by one.
Long strings are scrubbed on their own, so recurring context (prompts, documents) hits the scrubber's memo.
"""
from __future__ import annotations

import json
from bisect import bisect_right
from typing import Any, Final

from schemas.trace import Trace
from schemas.verdict import PiiFinding
from streams.scrub.base import Finding, Scrubber
from streams.scrub.checks import is_secret_key

ALL_FIELDS: Final = ("user_message", "context", "tool_calls.args", "tool_calls.result", "tool_calls.error",
                     "final_response", "candidates", "metadata", "flags")
DEPTH_MARKER: Final = "[scrubbed: nesting too deep]"
DEFAULT_MAX_DEPTH: Final = 64
SEPARATOR: Final = "\n\x1f\n"  # no detector's span crosses a line break plus a control character
LONG_PIECE: Final = 512  # pieces this long (documents, prompts) are scrubbed on their own (see ScrubMemo)


class _Walker:
    """Copies containers, collecting each string with the (container, key) slot it goes back into."""

    def __init__(self, scrubber: Scrubber, max_depth: int) -> None:
        self.scrubber = scrubber
        self.max_depth = max_depth
        self.tally: dict[tuple[str, str], int] = {}
        self.pieces: list[str] = []
        self.slots: list[tuple[Any, Any, str]] = []  # (container, key, field) per piece
        pseudo = getattr(scrubber, "pseudo", None)
        self._secret = (lambda v: pseudo.token("SECRET", v)) if pseudo is not None else (lambda v: "<SECRET>")

    def count(self, kind: str, field: str, n: int = 1) -> None:
        self.tally[(kind, field)] = self.tally.get((kind, field), 0) + n

    def add(self, container: Any, key: Any, s: str, field: str) -> None:
        if len(s) < 6:  # too short for any kind; keep it as is
            container[key] = s
            return
        self.pieces.append(s)
        self.slots.append((container, key, field))

    def now(self, s: str, field: str) -> str:
        """Scrub one string immediately (dict keys, fallbacks)."""
        res = self.scrubber.scrub(s)
        for f in res.findings:
            self.count(f.kind, field)
        return res.text

    def value(self, v: Any, field: str, depth: int = 0) -> Any:
        """A copy of ``v`` with strings left as slots to fill; returns non-container values directly."""
        if v is None or isinstance(v, (bool, int, float)):
            return v
        if depth >= self.max_depth:
            self.count("DEPTH_LIMIT", field)
            return DEPTH_MARKER
        if isinstance(v, dict):
            out: dict[Any, Any] = {}
            for k, item in v.items():
                if isinstance(k, str):
                    # identifiers ("email", "order_id") can't hold PII; anything else may ("jane@x.com": ...)
                    key = k if k.isidentifier() and len(k) <= 40 else self.now(k, field)
                    if item not in (None, "", [], {}) and is_secret_key(k):
                        self.count("SECRET", field)
                        out[key] = self._secret(item if isinstance(item, str) else json.dumps(item, default=str))
                        continue
                else:
                    key = k
                self._put(out, key, item, field, depth)
            return out
        if isinstance(v, (list, tuple)):
            lst: list[Any] = [None] * len(v)
            for i, item in enumerate(v):
                self._put(lst, i, item, field, depth)
            return lst
        return self.now(str(v), field)  # unknown objects: scrub their text form rather than pass them through

    def _put(self, container: Any, key: Any, item: Any, field: str, depth: int) -> None:
        if isinstance(item, str):
            self.add(container, key, item, field)
        else:
            container[key] = self.value(item, field, depth + 1)

    def run(self) -> None:
        """Scrub all collected pieces in one call and write each result into its slot."""
        if not self.pieces:
            return
        per: list[list[Finding]] = [[] for _ in self.pieces]
        redo: set[int] = set()
        starts: list[int] = []
        joined: list[str] = []
        pos = 0
        for i, p in enumerate(self.pieces):
            starts.append(pos)
            if len(p) >= LONG_PIECE:  # scrubbed alone, so a recurring document hits the scrubber's memo
                redo.add(i)
                joined.append("")
            else:
                joined.append(p)
            pos += len(joined[-1]) + len(SEPARATOR)
        res = self.scrubber.scrub(SEPARATOR.join(joined))
        for f in res.findings:
            i = bisect_right(starts, f.start) - 1
            if f.end > starts[i] + len(joined[i]):
                redo.update(range(i, bisect_right(starts, f.end - 1)))
            elif f.start >= starts[i]:
                per[i].append(f)
        for i, (piece, (container, key, field)) in enumerate(zip(self.pieces, self.slots)):
            if i in redo:
                container[key] = self.now(piece, field)
                continue
            fs = per[i]
            if not fs:
                container[key] = piece
                continue
            base, parts, cur = starts[i], [], 0
            for f in fs:
                parts.append(piece[cur:f.start - base])
                parts.append(f.replacement)
                cur = f.end - base
                self.count(f.kind, field)
            parts.append(piece[cur:])
            container[key] = "".join(parts)

    def findings(self) -> list[PiiFinding]:
        return [PiiFinding(kind=k, field=f, count=n) for (k, f), n in sorted(self.tally.items())]


def scrub_trace(trace: Trace, scrubber: Scrubber, *, fields: tuple[str, ...] | None = None,
                max_depth: int | None = None) -> tuple[Trace, list[PiiFinding]]:
    """A scrubbed copy of ``trace`` (the input is not mutated) and findings aggregated per (kind, field)."""
    fields = fields or getattr(scrubber, "fields", None) or ALL_FIELDS
    w = _Walker(scrubber, max_depth or getattr(scrubber, "max_depth", None) or DEFAULT_MAX_DEPTH)
    top: dict[str, Any] = {}
    if "user_message" in fields:
        w.add(top, "user_message", trace.user_message, "user_message")
    if "final_response" in fields:
        w.add(top, "final_response", trace.final_response, "final_response")
    ctx: list[Any] = []
    if "context" in fields and trace.context:
        ctx = [None] * len(trace.context)
        for i, c in enumerate(trace.context):
            w.add(ctx, i, c.content, "context")
    if "candidates" in fields and trace.candidates:
        top["candidates"] = [None] * len(trace.candidates)
        for i, c in enumerate(trace.candidates):
            w.add(top["candidates"], i, c, "candidates")
    if "flags" in fields and trace.flags:
        top["flags"] = [None] * len(trace.flags)
        for i, c in enumerate(trace.flags):
            w.add(top["flags"], i, c, "flags")
    calls: list[dict[str, Any]] = []
    if trace.tool_calls and {"tool_calls.args", "tool_calls.result", "tool_calls.error"} & set(fields):
        for tc in trace.tool_calls:
            tu: dict[str, Any] = {}
            if "tool_calls.args" in fields:
                tu["args"] = w.value(tc.args, "tool_calls.args")
            if "tool_calls.result" in fields:
                w._put(tu, "result", tc.result, "tool_calls.result", -1)
            if "tool_calls.error" in fields and tc.error:
                w.add(tu, "error", tc.error, "tool_calls.error")
            calls.append(tu)
    meta = w.value(trace.metadata, "metadata") if "metadata" in fields else dict(trace.metadata)
    w.run()
    if ctx:
        top["context"] = [c.model_copy(update={"content": s}) for c, s in zip(trace.context, ctx)]
    if calls:
        top["tool_calls"] = [tc.model_copy(update=u) for tc, u in zip(trace.tool_calls, calls)]
    if not isinstance(meta, dict):  # the whole mapping was past the depth limit
        meta = {"scrubbed": meta}
    key_id = getattr(scrubber, "key_id", None)
    if key_id:
        meta["pii_key_id"] = key_id
    top["metadata"] = meta
    return trace.model_copy(update=top), w.findings()
