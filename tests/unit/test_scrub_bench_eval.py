"""Span-level scoring used by `alignloop bench pii`: coverage matching, ignored type confusion, F2."""
from __future__ import annotations

from collections import defaultdict

from alignloop.bench._pii_eval import Tally, score_sentence, summarise


def score(text: str, gold: list, pred: list) -> dict:
    tallies: dict[str, Tally] = defaultdict(Tally)
    score_sentence(text, gold, pred, tallies)
    return summarise(tallies)


def test_split_gold_and_merged_prediction_both_count() -> None:
    text = "Call John Smith now"
    out = score(text, [("PERSON", 5, 9), ("PERSON", 10, 15)], [("PERSON", 5, 15)])
    assert out["per_entity"]["PERSON"] == {"precision": 1.0, "recall": 1.0, "f2": 1.0, "gold": 2, "predicted": 1}


def test_miss_false_positive_and_partial() -> None:
    text = "Maria Lopez lives in Paris with Bob"
    gold = [("PERSON", 0, 11), ("GPE", 21, 26), ("PERSON", 32, 35)]
    pred = [("PERSON", 0, 5), ("PERSON", 12, 17)]  # half of "Maria Lopez" (5 of 10 letters) and a false alarm
    out = score(text, gold, pred)
    person = out["per_entity"]["PERSON"]
    assert person["recall"] == 0.5 and person["precision"] == 0.5
    assert out["per_entity"]["GPE"]["recall"] == 0.0
    p, r = 1 / 2, 1 / 3  # overall: 1 of 2 predictions right, 1 of 3 gold spans found
    assert abs(out["f2"] - round(5 * p * r / (4 * p + r), 4)) < 1e-4


def test_type_confusion_inside_other_gold_is_not_a_false_positive() -> None:
    text = "Ship to 12 Oak Street, Paris now"
    gold = [("STREET_ADDRESS", 8, 28)]
    out = score(text, gold, [("GPE", 23, 28)])
    assert "GPE" not in out["per_entity"] and out["precision"] == 1.0  # ignored for precision, not a false alarm
    assert out["per_entity"]["STREET_ADDRESS"]["recall"] == 0.0
