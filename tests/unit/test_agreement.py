"""Agreement statistics: alpha, kappa, self-consistency, position bias, gold accuracy, judge–human agreement and
the Dawid–Skene adaptive stop, on annotators of known reliability."""
from __future__ import annotations

import random

from streams.agreement import (AnnotatorModel, StopRule, gold_accuracy, judge_agreement, krippendorff_alpha,
                               majority, pairwise_kappa, position_bias, self_consistency)


def _crowd(n_items: int = 300, seed: int = 7) -> tuple[dict[int, int], list[tuple[int, str, int]]]:
    rng = random.Random(seed)
    truth = {i: rng.randint(0, 1) for i in range(n_items)}
    obs = []
    for i, t in truth.items():
        for w, acc in (("good1", 0.92), ("good2", 0.9), ("good3", 0.88)):
            obs.append((i, w, t if rng.random() < acc else 1 - t))
        obs.append((i, "random", rng.randint(0, 1)))
    return truth, obs


def test_alpha_is_one_for_perfect_agreement_and_near_zero_for_noise() -> None:
    rng = random.Random(1)
    perfect = [(i, w, i % 7 + 1) for i in range(50) for w in ("a", "b", "c")]
    assert krippendorff_alpha(perfect, "ordinal") == 1.0
    noise = [(i, w, rng.randint(1, 7)) for i in range(400) for w in ("a", "b", "c")]
    assert abs(krippendorff_alpha(noise, "ordinal")) < 0.1
    assert krippendorff_alpha([(1, "a", 3)], "ordinal") is None  # nothing to compare
    assert krippendorff_alpha([(1, "a", 3), (1, "b", 3)], "nominal") is None  # no variation: undefined


def test_ordinal_alpha_rewards_near_misses_that_nominal_does_not() -> None:
    rng = random.Random(2)
    obs = []
    for i in range(200):
        v = rng.randint(2, 6)
        obs += [(i, "a", v), (i, "b", v + rng.choice([-1, 0, 1]))]
    assert krippendorff_alpha(obs, "ordinal") > 0.7 > krippendorff_alpha(obs, "nominal")


def test_pairwise_kappa_singles_out_the_random_annotator() -> None:
    _, obs = _crowd()
    k = pairwise_kappa(obs, weights=None)
    assert k[("good1", "good2")]["kappa"] > 0.6 and k[("good1", "good2")]["n"] == 300
    assert all(abs(v["kappa"]) < 0.15 for pair, v in k.items() if "random" in pair)


def test_self_consistency_and_gold_accuracy_per_annotator() -> None:
    reps = [("steady", 1, 1)] * 19 + [("steady", 1, 0)] + [("flaky", 1, 1), ("flaky", 0, 1)] * 10
    sc = self_consistency(reps)
    assert sc["steady"] == {"consistency": 0.95, "n": 20} and sc["flaky"]["consistency"] == 0.5
    assert gold_accuracy([("a", 1, 1), ("a", 0, 1)]) == {"a": {"accuracy": 0.5, "n": 2}}


def test_position_bias_flags_the_annotator_who_always_picks_left() -> None:
    rng = random.Random(3)
    choices = [("fair", rng.choice(["left", "right"])) for _ in range(200)] + [("lefty", "left")] * 200
    pb = position_bias(choices)
    assert pb["lefty"]["left_rate"] == 1.0 and pb["lefty"]["p_value"] < 1e-6
    assert 0.4 < pb["fair"]["left_rate"] < 0.6 and pb["fair"]["p_value"] > 0.01


def test_judge_human_agreement_per_judge() -> None:
    pairs = [("policy", True, True)] * 8 + [("policy", False, False)] * 2 + [("tone", True, False)] * 5 + \
        [("tone", True, True)] * 5
    ja = judge_agreement(pairs)
    assert ja["policy"] == {"agreement": 1.0, "kappa": 1.0, "n": 10}
    assert ja["tone"]["agreement"] == 0.5 and ja["tone"]["kappa"] == 0.0


def test_dawid_skene_learns_who_to_trust_and_the_stop_rule_uses_it() -> None:
    truth, obs = _crowd()
    model = AnnotatorModel.fit(obs, classes=[0, 1])
    acc = {w: sum(model.errors[(w, c)][c] for c in (0, 1)) / 2 for w in ("good1", "random")}
    assert acc["good1"] > 0.85 and 0.35 < acc["random"] < 0.65
    rule = StopRule(min_labels=2, max_labels=3, confidence=0.95)
    assert rule.decide(model, [("good1", 1), ("good2", 1)])[:2] == ("resolved", 1)
    assert rule.decide(model, [("good1", 1)])[0] == "continue"  # never before min_labels
    assert rule.decide(model, [("good1", 1), ("good2", 0)])[0] == "continue"  # a tie among the good: ask more
    assert rule.decide(model, [("good1", 1), ("random", 1)])[0] == "continue"  # the random one adds little
    assert rule.decide(model, [("good1", 1), ("good2", 0), ("random", 1)])[0] == "disputed"
    # the posterior of the majority of good annotators recovers the truth far better than one random annotator
    right = sum(max(model.posterior([(w, v) for i2, w, v in obs if i2 == i]).items(), key=lambda kv: kv[1])[0] == t
                for i, t in list(truth.items())[:100])
    assert right >= 95
    assert majority([2, 1, 2, 1]) == 1 and majority([3, 3, 1]) == 3
