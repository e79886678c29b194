"""Shared, cached text views of a trace for the fast judges.

Python's ``re`` is slow on long alternations, so the judges prefilter with token-set lookups: one split of the
request and of the response per trace (a ``TextView``, kept in ``ctx.view`` and shared by every judge), then set
intersections, and only run a precise regex when a trigger word is present (``AnyOf`` then skips the patterns whose
literal words are absent). Context and tool results are not tokenised: the judges grade what the agent was asked
and what it answered.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterable

from schemas.trace import Trace
from streams.judges.base import JudgeContext

# Punctuation becomes a space so "malware," and "malware" are the same token; ' - _ / stay inside tokens.
_PUNCT_CHARS = '!"#$%&()*+,.:;<=>?@[\\]^`{|}~'
_PUNCT = str.maketrans({**{c: " " for c in _PUNCT_CHARS}, "\u2019": "'", "\u2018": "'"})
# bytes.translate is ~3x faster than str.translate; UTF-8 continuation bytes are >= 0x80 and pass through.
_PUNCT_BYTES = bytes.maketrans(_PUNCT_CHARS.encode(), b" " * len(_PUNCT_CHARS))
# The same table that also lower-cases A-Z: for ASCII text, one pass does str.lower() and the punctuation split.
_LOWER_PUNCT_BYTES = bytes.maketrans(_PUNCT_CHARS.encode() + bytes(range(65, 91)),
                                     b" " * len(_PUNCT_CHARS) + bytes(range(97, 123)))


def tokenize(lowered: str) -> list[str]:
    """Words of already lower-cased text, punctuation split off."""
    if lowered.isascii():
        return lowered.encode().translate(_PUNCT_BYTES).decode().split()
    return lowered.translate(_PUNCT).split()


def _lower_words(text: str) -> list[str]:
    """``tokenize(text.lower())`` for text that is not ASCII (the views' ASCII path is inline).

    ``str.translate`` with a mapping looks every character up in a dict (~4 us for a 100-character answer), so
    the punctuation goes through the bytes table like ASCII text, and ``lower()`` runs after it: no character's
    lower case is punctuation or a curly quote, and lower-casing depends on context only for GREEK CAPITAL
    LETTER SIGMA (final sigma: punctuation counts as inside a word, a space does not), whose texts keep the
    plain path. UTF-8 multi-byte sequences never hold a byte < 0x80, so the table only touches ASCII.
    """
    if "\u03a3" in text:
        return text.lower().translate(_PUNCT).split()
    s = text.encode("utf-8", "surrogatepass").translate(_LOWER_PUNCT_BYTES).decode("utf-8", "surrogatepass").lower()
    if "\u2019" in s:
        s = s.replace("\u2019", "'")
    if "\u2018" in s:
        s = s.replace("\u2018", "'")
    return s.split()


# Refusals sit at the start of an answer; looking further only adds cost and false hits in quoted text.
REFUSAL_WINDOW = 400


class TextView:
    """One trace's request and answer as token sets, built once and shared by every judge of the trace.

    The token lists/sets are built eagerly (every fast judge reads them); the lower-cased strings only feed the
    precise regexes that run after a token gate fired, so they are built on first use.
    """

    __slots__ = ("trace", "req_tokens", "resp_tokens", "resp_words", "_request", "_response", "_refused", "_memo")

    def __init__(self, trace: Trace):
        self.trace = trace
        # tokenize(text.lower()), inline (once per trace, for every trace); ASCII text is lower-cased in the same
        # bytes.translate pass that blanks punctuation, so the lower-cased string is never built here.
        text = trace.final_response
        words = (text.encode().translate(_LOWER_PUNCT_BYTES).decode().split() if text.isascii()
                 else _lower_words(text))
        self.resp_words: list[str] = words
        self.resp_tokens: frozenset[str] = frozenset(words)
        text = trace.user_message
        self.req_tokens: frozenset[str] = frozenset(
            text.encode().translate(_LOWER_PUNCT_BYTES).decode().split() if text.isascii() else _lower_words(text))
        self._request: str | None = None
        self._response: str | None = None
        # is_refusal's token gate, here where the tokens are at hand: most answers settle it (False) for good.
        toks = self.resp_tokens
        self._refused: bool | None = (False if _REFUSAL_TRIGGERS.isdisjoint(toks)
                                      and ("not" not in toks or _NOT_COMPANIONS.isdisjoint(toks)) else None)
        self._memo: dict[Any, Any] | None = None

    @property
    def memo(self) -> dict[Any, Any]:
        """Results judges share (e.g. which policy behaviours the request matches); created on first use."""
        if self._memo is None:
            self._memo = {}
        return self._memo

    @property
    def request(self) -> str:
        """The request, lower-cased."""
        if self._request is None:
            self._request = self.trace.user_message.lower()
        return self._request

    @property
    def response(self) -> str:
        """The answer, lower-cased."""
        if self._response is None:
            self._response = self.trace.final_response.lower()
        return self._response

    @property
    def refused(self) -> bool:
        """``is_refusal(self)``, computed once per trace (policy, refusal and learning judges all ask)."""
        r = self._refused
        if r is None:
            r = self._refused = _is_refusal(self)
        return r


def text_view(trace: Trace, ctx: JudgeContext) -> TextView:
    """The cached view for this trace (recomputed if the context is reused for another trace)."""
    view = ctx.view
    if view.trace is not trace:
        view = ctx.view = TextView(trace)
    return view


def compile_any(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching any of ``patterns`` (None when there are none)."""
    pats = [p for p in patterns if p]
    if not pats:
        return None
    return re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE | re.DOTALL)


_Part = tuple[tuple[tuple[str, ...], ...], re.Pattern[str], "re.Pattern[str] | None"]


class AnyOf:
    """``compile_any(patterns).search(text) is not None``, answered faster.

    Python's ``re`` tries every alternative at every position of the text (a leading ``\\b`` or IGNORECASE defeats
    its literal-prefix scan), so a policy alternation costs microseconds even when it cannot match. Here each
    pattern runs alone, and only when the text holds one needle of each of its *factors* (literal runs that every
    match of the pattern contains): a text lacking a factor cannot match, and most texts lack one. Only ASCII text
    is filtered: there IGNORECASE is ASCII case folding, so lower-cased needles in lower-cased text are exact
    (``re``'s Unicode folds, e.g. KELVIN SIGN for ``k``, only concern non-ASCII text, which runs ``combined``).
    Patterns with back-references run combined too: their group numbers depend on the other patterns.
    """

    __slots__ = ("combined", "parts", "sieve")

    def __init__(self, patterns: Iterable[str], flags: int = re.IGNORECASE | re.DOTALL):
        pats = [p for p in patterns if p]
        self.combined = re.compile("|".join(f"(?:{p})" for p in pats), flags) if pats else None
        # (factors, regex, lowered) per pattern: factors AND-ed, a factor's needles OR-ed; () = always run the
        # regex. ``lowered``: the pattern for the lower-cased ASCII text (see ascii_regex), or None: run ``regex``.
        self.parts: tuple[_Part, ...] | None = None
        # One case-sensitive alternation of every pattern's first-factor needles, for lower-cased text: with plain
        # literals ``re`` scans for their first characters in C, so the usual no-match costs ~0.2 us.
        self.sieve: re.Pattern[str] | None = None
        try:
            parts = []
            for p in pats:
                parsed = _sre_parser.parse(p, flags)
                if _has_backref(parsed.data):
                    return
                factors = _factors(parsed.data)
                # Longest shortest-needle first: the factor most likely to be absent is tested first.
                factors.sort(key=lambda f: (-min(map(len, f)), len(f)))
                parts.append((tuple(tuple(sorted(f, key=len, reverse=True)) for f in factors[:_MAX_FACTORS]),
                              re.compile(p, flags), ascii_regex(p, flags) if flags & re.IGNORECASE else None))
            self.parts = tuple(parts)
            if parts and all(factors for factors, _, _ in parts):
                needles = sorted({n for factors, _, _ in parts for n in factors[0]}, key=len, reverse=True)
                self.sieve = re.compile("|".join(map(re.escape, needles)))
        except Exception:  # an unfamiliar construct or parser change: always run ``combined`` (still correct)
            self.parts = None

    def search(self, text: str, lowered: str) -> bool:
        """Whether any pattern matches ``text``; ``lowered`` is ``text.lower()`` (the same object if it already is)."""
        parts = self.parts
        if parts is None or not lowered.isascii():
            return self.combined is not None and self.combined.search(text) is not None
        if self.sieve is not None and self.sieve.search(lowered) is None:
            return False
        for factors, rx, low in parts:
            for needles in factors:
                for needle in needles:
                    if needle in lowered:
                        break
                else:  # a factor with no needle in the text: this pattern cannot match
                    break
            else:  # every factor present (or none known): run the pattern (~2x cheaper on the lower-cased text)
                if (rx.search(text) if low is None else low.search(lowered)) is not None:
                    return True
        return False

    def search_raw(self, text: str) -> bool:
        """``search`` for text that is not lower-cased yet."""
        return self.search(text, text.lower() if text.isascii() else text)


_MAX_FACTORS = 3  # the most selective few; more tests cost more than the rare regex run they would save


try:  # the stdlib's own regex parser and compiler (re._parser since 3.11, sre_parse before)
    from re import _compiler as _sre_compiler, _constants as _sre_c, _parser as _sre_parser
except ImportError:  # pragma: no cover
    import sre_compile as _sre_compiler  # type: ignore[no-redef]
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_parser  # type: ignore[no-redef]
_REPEATS = tuple(getattr(_sre_c, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_sre_c, n))


_BACKREFS = frozenset(getattr(_sre_c, n) for n in dir(_sre_c) if n.startswith("GROUPREF"))


def _has_backref(items: Any) -> bool:
    """Whether a parsed pattern uses a back-reference or a group-conditional anywhere."""
    for op, av in items:
        if op in _BACKREFS:
            return True
        for sub in (av if isinstance(av, (tuple, list)) else (av,)):
            if isinstance(sub, _sre_parser.SubPattern) and _has_backref(sub.data):
                return True
            if isinstance(sub, (tuple, list)) and any(isinstance(x, _sre_parser.SubPattern) and _has_backref(x.data)
                                                      for x in sub):
                return True
    return False


def _factors(items: Any) -> list[frozenset[str]]:
    """Needle sets a match of this parsed sequence must each hit: runs of ASCII literals, groups, alternations
    whose every branch has a factor, and repeats of at least one. Anything else (classes, ``\\s``, ``.``,
    lookarounds, optional parts) contributes nothing, which only makes the filter weaker, never wrong."""
    out: list[frozenset[str]] = []
    run: list[str] = []
    for op, av in items:
        if op is _sre_c.LITERAL and av < 128:
            run.append(chr(av).lower())
            continue
        if run:
            out.append(frozenset({"".join(run)}))
            run = []
        if op is _sre_c.SUBPATTERN:
            out.extend(_factors(av[-1].data))
        elif op is _sre_c.BRANCH:
            branches = [_factors(b.data) for b in av[1]]
            if all(branches):  # one factor per branch (its most selective), any of which must occur
                out.append(frozenset().union(*(max(b, key=lambda f: (min(map(len, f)), -len(f))) for b in branches)))
        elif op in _REPEATS and av[0] >= 1:
            out.extend(_factors(av[2].data))
    if run:
        out.append(frozenset({"".join(run)}))
    return out


class _NotAscii(Exception):
    """A construct ``ascii_regex`` does not translate."""


# Python's Unicode \s matches these ASCII characters (str.isspace); re.ASCII's \s lacks \x1c-\x1f.
_ASCII_SPACE = (9, 10, 11, 12, 13, 28, 29, 30, 31, 32)
_ASCII_NOT_SPACE = ((0, 8), (14, 27), (33, 127))
_ASCII_SAFE_FLAGS = re.IGNORECASE | re.DOTALL | re.MULTILINE | re.VERBOSE | re.UNICODE | re.ASCII


def ascii_regex(pattern: str, flags: int = 0) -> re.Pattern[str] | None:
    """``pattern`` compiled for ASCII text, case-sensitive: ~2x cheaper to run than a Unicode or IGNORECASE regex.

    On ASCII text ``t`` the result finds exactly the matches ``re.compile(pattern, flags)`` finds, in ``t.lower()``
    when ``flags`` has IGNORECASE (its literals and classes are lower-cased, as IGNORECASE folds them) and in ``t``
    itself otherwise. ``\\w``, ``\\d`` and ``\\b`` agree between re.ASCII and Unicode on ASCII text; Unicode ``\\s``
    also matches \\x1c-\\x1f, so it is spelled out. None for what is not translated (non-ASCII literals, scoped
    flags, back-references, LOCALE...): the caller runs the original regex.
    """
    try:
        parsed = _sre_parser.parse(pattern, flags)
        state = parsed.state
        if state.flags & ~_ASCII_SAFE_FLAGS:
            return None
        lower = bool(state.flags & re.IGNORECASE)
        # Unicode \s spelled out for ASCII text, unless the pattern already has re.ASCII's \s.
        data = _ascii_items(parsed.data, state, lower, not state.flags & re.ASCII)
        state.flags = (state.flags & ~(re.IGNORECASE | re.UNICODE)) | re.ASCII
        return _sre_compiler.compile(_sre_parser.SubPattern(state, data), 0)
    except Exception:  # _NotAscii, or an unfamiliar parser/compiler: the caller runs the original regex
        return None


def _ascii_char(code: int, lower: bool) -> int:
    if code >= 128:  # IGNORECASE folds some non-ASCII letters onto ASCII ones (KELVIN SIGN -> k)
        raise _NotAscii
    return ord(chr(code).lower()) if lower else code


def _ascii_set(items: Any, lower: bool, uni: bool) -> list[Any]:
    out: list[Any] = []
    for op, av in items:
        if op is _sre_c.NEGATE:
            out.append((op, av))
        elif op is _sre_c.LITERAL:
            out.append((op, _ascii_char(av, lower)))
        elif op is _sre_c.RANGE:
            lo, hi = av
            if hi >= 128:
                raise _NotAscii
            if lower:  # IGNORECASE matches a character whose lower case is in the folded range
                out.extend((_sre_c.LITERAL, c) for c in sorted({ord(chr(c).lower()) for c in range(lo, hi + 1)}))
            else:
                out.append((op, av))
        elif op is _sre_c.CATEGORY:
            if uni and av is _sre_c.CATEGORY_SPACE:
                out.extend((_sre_c.LITERAL, c) for c in _ASCII_SPACE)
            elif uni and av is _sre_c.CATEGORY_NOT_SPACE:  # the rest of ASCII (the text holds nothing else)
                out.extend((_sre_c.RANGE, r) for r in _ASCII_NOT_SPACE)
            elif av in (_sre_c.CATEGORY_DIGIT, _sre_c.CATEGORY_NOT_DIGIT, _sre_c.CATEGORY_WORD,
                        _sre_c.CATEGORY_NOT_WORD, _sre_c.CATEGORY_SPACE, _sre_c.CATEGORY_NOT_SPACE):
                out.append((op, av))
            else:
                raise _NotAscii
        else:
            raise _NotAscii
    return out


def _ascii_items(items: Any, state: Any, lower: bool, uni: bool) -> list[Any]:
    """The parsed pattern ``items`` rewritten for ``ascii_regex`` (``uni``: the pattern had Unicode classes)."""
    def sub(p: Any) -> Any:
        return _sre_parser.SubPattern(state, _ascii_items(p.data, state, lower, uni))

    out: list[Any] = []
    for op, av in items:
        if op is _sre_c.LITERAL or op is _sre_c.NOT_LITERAL:
            out.append((op, _ascii_char(av, lower)))
        elif op is _sre_c.IN:
            out.append((op, _ascii_set(av, lower, uni)))
        elif op is _sre_c.ANY or op is _sre_c.AT:
            out.append((op, av))
        elif op is _sre_c.SUBPATTERN:
            group, add_flags, del_flags, p = av
            if add_flags or del_flags:  # (?i:...), (?-i:...), (?a:...): scoped flags
                raise _NotAscii
            out.append((op, (group, add_flags, del_flags, sub(p))))
        elif op is _sre_c.BRANCH:
            out.append((op, (av[0], [sub(b) for b in av[1]])))
        elif op in _REPEATS:
            out.append((op, (av[0], av[1], sub(av[2]))))
        elif op is _sre_c.ATOMIC_GROUP:
            out.append((op, sub(av)))
        elif op is _sre_c.ASSERT or op is _sre_c.ASSERT_NOT:
            out.append((op, (av[0], sub(av[1]))))
        else:  # back-references, group conditionals, anything newer
            raise _NotAscii
    return out


def tokens_of(terms: Iterable[str]) -> frozenset[str]:
    """Trigger tokens for a list of terms/phrases: every word of every phrase, lower-cased."""
    return frozenset(w for t in terms for w in t.lower().translate(_PUNCT).split())


def config_hash(obj: Any) -> str:
    """Short stable hash of a config, appended to judge versions so a config change bumps the version."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


# An explicit decline: "I can't help with that", "I won't assist", "I must decline", "against our policy".
# A bare apology ("sorry, the server timed out") is not a refusal.
_REFUSAL_PATTERN = (
    r"\b(?:i\s*(?:can'?t|cannot|won'?t|will\s+not|am\s+not\s+able\s+to|'m\s+not\s+able\s+to|am\s+unable\s+to"
    r"|'m\s+unable\s+to)\s+(?:help|assist|comply|provide\s+(?:that|this|instructions|help)"
    r"|do\s+th(?:at|is)|share\s+(?:that|this)|fulfil+|engage|participate)"
    r"|(?:can'?t|cannot|won'?t|unable\s+to|not\s+able\s+to|not\s+(?:allowed|permitted)\s+to)\s+(?:help|assist|comply"
    r"|provide|do\s+that)\s+(?:you\s+)?with\s+(?:that|this|th(?:ese|ose))"
    r"|i\s*(?:must|have\s+to|need\s+to|'ll\s+have\s+to|will\s+have\s+to)\s+(?:decline|refuse)|(?:is|would\s+be)\s+against\s+(?:my|our|the)\s+(?:policy|policies|guidelines)"
    r"|not\s+something\s+i\s+(?:can|will)\s+(?:help|assist))")
_REFUSAL_RE = re.compile(_REFUSAL_PATTERN)
_REFUSAL_RE_ASCII = ascii_regex(_REFUSAL_PATTERN) or _REFUSAL_RE  # the same matches in ASCII text, cheaper
_REFUSAL_TRIGGERS = frozenset({"can't", "cant", "cannot", "won't", "wont", "unable", "decline", "refuse", "against"})
# "not" is too common to trigger the regex alone; these are the words the "not" refusal phrasings need.
_NOT_COMPANIONS = frozenset({"able", "allowed", "permitted", "something", "will"})


def is_refusal(view: TextView) -> bool:
    """True when the answer opens by declining the request (cheap token check first; memoised on the view)."""
    return view.refused


def _is_refusal(view: TextView) -> bool:
    """The precise check, for a view whose token gate (``TextView.__init__``) did not settle it."""
    answer = view.response
    return (_REFUSAL_RE_ASCII if answer.isascii() else _REFUSAL_RE).search(answer, 0, REFUSAL_WINDOW) is not None
