"""Scrub every text-bearing field of a Trace; the one function both the stream and library callers use.

Values under secret-looking keys (password, token, api_key, ...) are replaced wholesale, whatever they look like,
because a password needs no recognisable shape. Structures nested deeper than ``max_depth`` are replaced by a
marker rather than walked, so hostile tool args cannot exhaust the stack or the time budget.

For speed the short strings of one trace are joined with a separator and scrubbed in one ``scrub`` call (the
per-call overhead of ~20 short strings would otherwise dominate); findings are mapped back to their strings by
offset, and the rare finding that straddles a separator sends the strings it touches back to be scrubbed one by one.
Long strings are scrubbed on their own, so recurring context (prompts, documents) hits the scrubber's memo; a short
string seen before (tool errors, canned replies, argument values) takes what it held from the scrubber's
``PieceMemo`` and is not joined again. Both are exact because no detector reads across the separator: each string
gets what it would get alone (``tests/unit/test_scrub_pieces.py``).

The walk itself runs for every record, so it is kept lean: the per-item steps are inlined in the loops, and a
context item or tool call is copied (pydantic's ``model_copy``) only when its scrubbed fields differ; an unchanged
one is shared with the input trace (which is never mutated).
"""
from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

from schemas.trace import Trace
from schemas.verdict import PiiFinding
from streams.scrub.base import Scrubber
from streams.scrub.checks import key_rule
from streams.scrub.memo import PieceMemo

ALL_FIELDS: Final = ("user_message", "context", "tool_calls.args", "tool_calls.result", "tool_calls.error",
                     "final_response", "candidates", "metadata", "flags", "agent_id", "policy_id", "tool_calls.name")
IDENTIFIER_MAX: Final = 128  # Trace.agent_id's limit: a scrubbed identifier must still fit
DEPTH_MARKER: Final = "[scrubbed: nesting too deep]"
DEFAULT_MAX_DEPTH: Final = 64
SEPARATOR: Final = "\n\x1f\n"  # no detector's span crosses a line break plus a control character
LONG_PIECE: Final = 512  # pieces this long (documents, prompts) are scrubbed on their own (see ScrubMemo)
MIN_PIECE: Final = 6  # shorter strings are too short for any kind and are kept as they are
_EMPTY: Final = (None, "", [], {})  # values under a secret key that are left alone (nothing to hide)
_SCALAR: Final = (bool, int, float)
_ID_SEPARATORS: Final = (str.maketrans("_-/:", "    "), str.maketrans("_.-/:", "     "))


_PAIR_NAMES: Final = ("k", "key", "name", "field", "type", "label")
_PAIR_VALUES: Final = frozenset(("v", "value", "val"))


def _pair_kind(d: dict[Any, Any]) -> str | None:
    """The kind of ``d``'s value when ``d`` is a name/value pair whose name is a tell-tale key."""
    if _PAIR_VALUES.isdisjoint(d.keys()):  # most two-key dicts: one set operation
        return None
    for n in _PAIR_NAMES:
        name = d.get(n)
        if isinstance(name, str) and len(name) <= 40:
            return key_rule(name)
    return None


class _Walker:
    """Copies containers, collecting each string with the (container, key) slot it goes back into."""

    __slots__ = ("scrubber", "max_depth", "tally", "pieces", "slots", "key_kinds")

    def __init__(self, scrubber: Scrubber, max_depth: int) -> None:
        self.scrubber = scrubber
        # kinds a value under a tell-tale key (dob, passport, ni_number, full_name, ...) may be replaced as
        self.key_kinds: frozenset[str] = getattr(scrubber, "enabled_kinds", frozenset())
        self.max_depth = max_depth
        self.tally: dict[tuple[str, str], int] = {}
        self.pieces: list[str] = []
        self.slots: list[tuple[Any, Any, str]] = []  # (container, key, field) per piece

    def _secret(self, v: str, kind: str = "SECRET") -> str:
        pseudo = getattr(self.scrubber, "pseudo", None)
        return pseudo.token(kind, v) if pseudo is not None else f"<{kind}>"

    def ident(self, s: str, field: str) -> str:
        """An identifier (agent id, policy id, tool name) with the PII in it replaced: scrubbed as written and with
        its separators read as spaces ("crm_lookup_jane_doe", "bot-for-AB123456C"), same length, so offsets hold."""
        if len(s) < MIN_PIECE:
            return s
        # Identifiers recur on nearly every trace (a handful of agents, policies, tools): their results are kept
        # per scrubber (bounded), which saves two scrub calls per identifier (~10 us per trace).
        memo = getattr(self.scrubber, "ident_memo", None)
        hit = memo.get(s) if memo is not None else None
        if hit is None:
            hit = self._ident(s)
            if memo is not None:
                if len(memo) >= 10_000:
                    memo.clear()
                memo[s] = hit
        out, kinds = hit
        for kind in kinds:
            self.count(kind, field)
        return out

    def _ident(self, s: str) -> tuple[str, tuple[str, ...]]:
        res = self.scrubber.scrub(s)
        if res.findings:
            out = res.text
        else:
            for seps in _ID_SEPARATORS:  # "by-priya.raman@corp.in-v3", then "crm_lookup_jane.doe"
                spaced = s.translate(seps)
                res = self.scrubber.scrub(spaced) if spaced != s else res
                if res.findings:
                    break
            else:
                return s, ()
            parts, pos = [], 0
            for f in res.findings:
                parts += [s[pos:f.start], f.replacement]
                pos = f.end
            out = "".join(parts) + s[pos:]
        if len(out) > IDENTIFIER_MAX:  # replacements made it too long for the contract: the whole id goes
            out = self._secret(s, res.findings[0].kind)
        return out, tuple(f.kind for f in res.findings)

    def count(self, kind: str, field: str, n: int = 1) -> None:
        self.tally[(kind, field)] = self.tally.get((kind, field), 0) + n

    def add(self, container: Any, key: Any, s: str, field: str) -> None:
        if len(s) < MIN_PIECE:  # too short for any kind; keep it as is
            container[key] = s
            return
        self.pieces.append(s)
        self.slots.append((container, key, field))

    def now(self, s: str, field: str) -> str:
        """Scrub one string immediately (dict keys, fallbacks)."""
        res = self.scrubber.scrub(s)
        if not res.findings:  # the very string read (a memo hit's text is an equal copy): the item stays shared
            return s
        for f in res.findings:
            self.count(f.kind, field)
        return res.text

    def value(self, v: Any, field: str, depth: int = 0) -> Any:
        """A copy of ``v`` with strings left as slots to fill; returns non-container values directly.

        A long string's slot is filled in ``run``, after the other items: a dict's key order follows that."""
        if v is None or isinstance(v, _SCALAR):
            return v
        if depth >= self.max_depth:
            self.count("DEPTH_LIMIT", field)
            return DEPTH_MARKER
        if isinstance(v, dict):
            return self._dict(v, field, depth)
        if not isinstance(v, (list, tuple)):
            return self.now(str(v), field)  # unknown objects: scrub their text form rather than pass them through
        out: list[Any] = [None] * len(v)
        pieces, slots = self.pieces, self.slots
        for key, item in enumerate(v):
            if isinstance(item, str):  # inlined add(): most items are strings or scalars
                if len(item) < MIN_PIECE:
                    out[key] = item
                else:
                    pieces.append(item)
                    slots.append((out, key, field))
            elif item is None or isinstance(item, _SCALAR):
                out[key] = item
            else:
                out[key] = self.value(item, field, depth + 1)
        return out

    def _dict(self, v: dict[Any, Any], field: str, depth: int) -> dict[Any, Any]:
        """``value`` of a dict: as a list's, plus its keys (scrubbed unless identifiers) and values under secret-looking
        or tell-tale keys replaced whole."""
        out: dict[Any, Any] = {}
        pair = _pair_kind(v) if len(v) == 2 else None  # {"k": "tfn", "v": "459182737"}: a key written as a value
        for key, item in v.items():
            if isinstance(key, str):
                if pair is not None and key in _PAIR_VALUES and isinstance(item, (str, int)) and item not in _EMPTY:
                    self.count(pair, field)
                    out[key] = self._secret(str(item), pair)
                    continue
                rule = key_rule(key)  # None for nearly every key
                if not (len(key) <= 40 and key.isidentifier()):
                    key = self.now(key, field)  # identifiers ("email", "order_id") can't hold PII; others may
                if rule is not None and item not in _EMPTY:
                    if rule == "SECRET":
                        self.count("SECRET", field)
                        out[key] = self._secret(item if isinstance(item, str) else json.dumps(item, default=str))
                        continue
                    if rule in self.key_kinds and isinstance(item, (str, int)) and not isinstance(item, bool):
                        self.count(rule, field)
                        out[key] = self._secret(str(item), rule)
                        continue
            self._put(out, key, item, field, depth)
        return out

    def _put(self, container: Any, key: Any, item: Any, field: str, depth: int) -> None:
        if isinstance(item, str):
            self.add(container, key, item, field)
        else:
            container[key] = self.value(item, field, depth + 1)

    def run(self) -> None:
        """Scrub all collected pieces in one call and write each result into its slot."""
        pieces = self.pieces
        if not pieces:
            return
        memo = getattr(self.scrubber, "piece_memo", None)  # PieceMemo: what earlier traces' strings held
        per: dict[int, Sequence[tuple[str, int, int, str]]] = {}  # findings by piece, offsets in it; most have none
        redo: set[int] = set()
        todo: list[int] = []  # the pieces joined and scrubbed now
        for i, p in enumerate(pieces):
            if len(p) >= LONG_PIECE:  # scrubbed alone, so a recurring document hits the scrubber's memo
                redo.add(i)
            elif memo is not None and (hit := memo.get(p)) is not None:
                if hit:
                    per[i] = hit
            else:
                todo.append(i)
        if todo:
            self._scrub_joined(todo, per, redo, memo)
        slots = self.slots
        # every piece goes back as it is, in piece order (a dict's key order follows that) ...
        for (container, key, _), piece in zip(slots, pieces):
            container[key] = piece
        if not per and not redo:  # nothing found
            return
        # ... then the few with findings are overwritten in place (same keys, so the same key order)
        tally = self.tally
        for i in sorted(redo.union(per)) if redo else sorted(per):
            piece = pieces[i]
            container, key, field = slots[i]
            if i in redo:
                container[key] = self.now(piece, field)
                continue
            parts, cur = [], 0
            for kind, s, e, rep in per[i]:
                parts.append(piece[cur:s])
                parts.append(rep)
                cur = e
                tk = (kind, field)
                tally[tk] = tally.get(tk, 0) + 1
            parts.append(piece[cur:])
            container[key] = "".join(parts)

    def _scrub_joined(self, todo: list[int], per: dict[int, Sequence[tuple[str, int, int, str]]], redo: set[int],
                      memo: PieceMemo | None) -> None:
        """The pieces ``todo`` joined and scrubbed in one call; findings go to ``per`` (by piece, offsets in it) and
        into ``memo``; a finding across a separator sends the pieces it touches to ``redo``."""
        pieces = self.pieces
        starts: list[int] = []
        pos, sep = 0, len(SEPARATOR)
        for i in todo:
            starts.append(pos)
            pos += len(pieces[i]) + sep
        text = SEPARATOR.join([pieces[i] for i in todo])
        replacements = getattr(self.scrubber, "replacements", None)  # DetectingScrubber: no Finding objects
        found = replacements(text) if replacements is not None else [
            (f.kind, f.start, f.end, f.replacement) for f in self.scrubber.scrub(text).findings]
        new: dict[int, list[tuple[str, int, int, str]]] = {}
        for kind, s, e, rep in found:
            j = bisect_right(starts, s) - 1
            base = starts[j]
            if e > base + len(pieces[todo[j]]):
                redo.update(todo[j:bisect_right(starts, e - 1)])
            else:
                new.setdefault(todo[j], []).append((kind, s - base, e - base, rep))
        if memo is not None:
            for i in todo:
                if i not in redo:
                    memo.put(pieces[i], tuple(new.get(i, ())))
        per.update(new)

    def findings(self) -> list[PiiFinding]:
        return [PiiFinding(kind=k, field=f, count=n) for (k, f), n in sorted(self.tally.items())]


def _same(tc: Any, update: dict[str, Any]) -> bool:
    """Whether ``update`` (a tool call's scrubbed fields) leaves ``tc`` as it is, key order included (the walker
    writes a dict's strings back after its other items, and the serialised event shows that order)."""
    return all(_identical(getattr(tc, k), v) for k, v in update.items())


def _identical(a: Any, b: Any) -> bool:
    return a == b and _same_order(a, b)  # equality in C first; key order only for equal containers


def _same_order(a: Any, b: Any) -> bool:
    if type(a) is dict:
        return list(a) == list(b) and all(_same_order(x, b[k]) for k, x in a.items() if type(x) in _CONTAINERS)
    if type(a) in _CONTAINERS:  # a list (or a tuple, which the walker made a list: then a != b already)
        return all(_same_order(x, y) for x, y in zip(a, b) if type(x) in _CONTAINERS)
    return True


_CONTAINERS: Final = (dict, list)


@lru_cache(maxsize=64)
def _field_set(fields: tuple[str, ...]) -> frozenset[str]:
    # field names come from YAML (not interned): a set answers "in" without comparing strings one by one
    return frozenset(fields)


def scrub_trace(trace: Trace, scrubber: Scrubber, *, fields: tuple[str, ...] | None = None,
                max_depth: int | None = None) -> tuple[Trace, list[PiiFinding]]:
    """A scrubbed copy of ``trace`` (the input is not mutated) and findings aggregated per (kind, field)."""
    fields = fields or getattr(scrubber, "fields", None) or ALL_FIELDS
    fields = _field_set(fields) if isinstance(fields, tuple) else frozenset(fields)
    w = _Walker(scrubber, max_depth or getattr(scrubber, "max_depth", None) or DEFAULT_MAX_DEPTH)
    add = w.add
    top: dict[str, Any] = {}
    if "user_message" in fields:
        add(top, "user_message", trace.user_message, "user_message")
    if "final_response" in fields:
        add(top, "final_response", trace.final_response, "final_response")
    context = trace.context
    ctx: list[Any] = []
    if context and "context" in fields:
        ctx = [None] * len(context)
        for i, c in enumerate(context):
            add(ctx, i, c.content, "context")
    if trace.candidates and "candidates" in fields:
        top["candidates"] = out = [None] * len(trace.candidates)
        for i, c in enumerate(trace.candidates):
            add(out, i, c, "candidates")
    if trace.flags and "flags" in fields:
        top["flags"] = out = [None] * len(trace.flags)
        for i, c in enumerate(trace.flags):
            add(out, i, c, "flags")
    calls: list[dict[str, Any]] = []
    tool_calls = trace.tool_calls
    if tool_calls and ("tool_calls.args" in fields or "tool_calls.result" in fields or "tool_calls.error" in fields):
        do_args, do_result, do_error = ("tool_calls.args" in fields, "tool_calls.result" in fields,
                                        "tool_calls.error" in fields)
        value = w.value
        for tc in tool_calls:
            tu: dict[str, Any] = {}
            if do_args:
                tu["args"] = value(tc.args, "tool_calls.args")
            if do_result:
                w._put(tu, "result", tc.result, "tool_calls.result", -1)
            if do_error and tc.error:
                add(tu, "error", tc.error, "tool_calls.error")
            calls.append(tu)
    if tool_calls and "tool_calls.name" in fields:
        calls = calls or [{} for _ in tool_calls]
        for tc, tu in zip(tool_calls, calls):
            name = w.ident(tc.name, "tool_calls.name")
            if name != tc.name:
                tu["name"] = name
    for f in ("agent_id", "policy_id"):
        if f in fields:
            v = w.ident(getattr(trace, f), f)
            if v != getattr(trace, f):
                top[f] = v
    meta = w.value(trace.metadata, "metadata") if "metadata" in fields else dict(trace.metadata)
    w.run()
    # Copies only where something changed: an unchanged item is shared with the input (the walker writes back the
    # very string it read, so an identity test tells). Most items are unchanged, and pydantic's model_copy costs
    # ~3 us each: this is the one fast path here (~10 us per simulator trace).
    if ctx:
        top["context"] = [c if s is c.content else c.model_copy(update={"content": s}) for c, s in zip(context, ctx)]
    if calls:
        top["tool_calls"] = [tc if _same(tc, u) else tc.model_copy(update=u) for tc, u in zip(tool_calls, calls)]
    if not isinstance(meta, dict):  # the whole mapping was past the depth limit
        meta = {"scrubbed": meta}
    key_id = getattr(scrubber, "key_id", None)
    if key_id:
        meta["pii_key_id"] = key_id
    top["metadata"] = meta
    return trace.model_copy(update=top), w.findings()
