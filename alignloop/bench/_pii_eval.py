"""Span-level scoring for `alignloop bench pii`: label mapping, coverage matching, per-entity P/R/F2.

Matching (the same for both systems): a gold span counts as found when predicted spans of its type cover at least
half of its non-space characters; a predicted span counts as correct when at least half of its non-space
characters lie in gold spans of its type. A wrong prediction is a false positive only where it touches no gold
span at all; one that overlaps a gold span of another type (a city inside a gold street address, a date that is not
a date of birth) is left out of precision, since the text was PII either way and type confusion already costs the
right type its recall. Overall figures are micro-averaged over the evaluated types.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# presidio-evaluator's labels we score (its DATE_TIME is split: date_of_birth spans are generated as DATE_OF_BIRTH,
# see pii.py; other dates, TITLE, NRP, AGE, ZIP_CODE, DOMAIN_NAME, US_DRIVER_LICENSE are not in our scope).
EVAL_TYPES: Final = ("PERSON", "STREET_ADDRESS", "GPE", "ORGANIZATION", "DATE_OF_BIRTH", "EMAIL_ADDRESS",
                     "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")
STRUCTURED_TYPES: Final = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")
ALIGNLOOP_TO_EVAL: Final = {
    "PERSON": "PERSON", "ADDRESS": "STREET_ADDRESS", "LOCATION": "GPE", "ORGANIZATION": "ORGANIZATION",
    "DATE_OF_BIRTH": "DATE_OF_BIRTH", "EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD", "IBAN": "IBAN_CODE", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS",
}  # SECRET has no counterpart in the generator and is not scored
PRESIDIO_TO_EVAL: Final = {
    "PERSON": "PERSON", "LOCATION": "GPE", "ORGANIZATION": "ORGANIZATION", "DATE_TIME": "DATE_OF_BIRTH",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS", "PHONE_NUMBER": "PHONE_NUMBER", "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN_CODE", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS",
}  # Presidio has no street-address recognizer; its other types (URL, NRP, ...) are not scored

Span = tuple[str, int, int]  # (type, start, end)


@dataclass
class Tally:
    gold: int = 0
    found: int = 0      # gold spans found
    pred: int = 0       # predictions counted for precision
    correct: int = 0    # of which correct

    def figures(self) -> dict[str, float | int]:
        p = self.correct / self.pred if self.pred else 1.0
        r = self.found / self.gold if self.gold else 1.0
        f2 = 5 * p * r / (4 * p + r) if p + r else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f2": round(f2, 4), "gold": self.gold,
                "predicted": self.pred}


def _chars(text: str, spans: Iterable[tuple[int, int]]) -> set[int]:
    return {i for s, e in spans for i in range(s, e) if not text[i].isspace()}


def _share(text: str, s: int, e: int, cover: set[int]) -> float:
    idx = [i for i in range(s, e) if not text[i].isspace()]
    return sum(i in cover for i in idx) / len(idx) if idx else 0.0


def score_sentence(text: str, gold: list[Span], pred: list[Span], tallies: dict[str, Tally]) -> None:
    gold = [g for g in gold if g[0] in EVAL_TYPES] + [("_OTHER", s, e) for t, s, e in gold if t not in EVAL_TYPES]
    any_gold = _chars(text, [(s, e) for _, s, e in gold])
    for t in EVAL_TYPES:
        g_t = [(s, e) for k, s, e in gold if k == t]
        p_t = [(s, e) for k, s, e in pred if k == t]
        if not g_t and not p_t:
            continue
        tal = tallies[t]
        p_cover, g_cover = _chars(text, p_t), _chars(text, g_t)
        for s, e in g_t:
            tal.gold += 1
            tal.found += _share(text, s, e, p_cover) >= 0.5
        for s, e in p_t:
            if _share(text, s, e, g_cover) >= 0.5:
                tal.pred += 1
                tal.correct += 1
            elif _share(text, s, e, any_gold) == 0.0:
                tal.pred += 1


def summarise(tallies: dict[str, Tally]) -> dict[str, object]:
    total = Tally()
    for t in tallies.values():
        total.gold += t.gold
        total.found += t.found
        total.pred += t.pred
        total.correct += t.correct
    overall = total.figures()
    return {"f2": overall["f2"], "precision": overall["precision"], "recall": overall["recall"],
            "per_entity": {k: tallies[k].figures() for k in EVAL_TYPES if tallies[k].gold or tallies[k].pred}}
