"""Variant assignment, bit for bit the same as flagd's ``fractional`` operation.

A pure function of (flag, conversation id), at the bottom layer so the agent SDK (``connectors/rollout_client.py``)
and the stream side (``streams/rollout/``, which re-exports it) bucket with the very same code.

flagd's evaluator (``core/pkg/evaluator/fractional.go``, core v0.15.0 and later, checked against v0.16.1):
the bucketing value is ``flagKey + targetingKey`` (when the rule gives no bucketing expression), hashed with
murmur3 x86_32, seed 0, over its UTF-8 bytes; the unsigned hash ``h`` is mapped into ``[0, total_weight)`` as
``(h * total_weight) >> 32`` and the first variant whose cumulative weight exceeds that bucket wins. (flagd's
specification page still describes the older ``abs(int32(h)) / MaxInt32 * 100`` mapping; the evaluator is
what clients run, so this follows the evaluator.) Negative weights count as 0, as in flagd.

With the distribution ordered ``[candidate w, baseline 100 - w]`` the candidate owns buckets ``[0, w)``, so a
conversation on the candidate at weight w stays on it at every larger w: ramps never move a conversation back.
"""
from __future__ import annotations

from collections.abc import Sequence

import mmh3

from schemas.rollout import RolloutFlag, VariantName

MAX_WEIGHT_SUM = 2**31 - 1  # flagd rejects distributions whose weights sum past MaxInt32


def bucketing_hash(value: str) -> int:
    """murmur3 x86_32 (seed 0) of ``value``'s UTF-8 bytes, unsigned — flagd's ``murmur3.StringSum32``."""
    return mmh3.hash(value, 0, signed=False)


def fractional(bucketing_value: str, distribution: Sequence[tuple[str, int]]) -> str | None:
    """flagd's ``fractional`` over ``[(variant, weight), ...]``; None where flagd returns null (no weight)."""
    weights = [max(0, int(w)) for _, w in distribution]
    total = sum(weights)
    if total == 0 or total > MAX_WEIGHT_SUM:
        return None
    bucket = (bucketing_hash(bucketing_value) * total) >> 32
    end = 0
    for (variant, _), weight in zip(distribution, weights):
        end += weight
        if bucket < end:
            return variant
    return None  # unreachable: bucket < total


def distribution(flag: RolloutFlag) -> list[tuple[VariantName, int]]:
    """The flag's weights in the order that keeps ramps monotonic: candidate first, from bucket 0."""
    w = flag.candidate_weight if flag.candidate is not None else 0
    return [("candidate", w), ("baseline", 100 - w)]


def assign(flag: RolloutFlag, conversation_id: str) -> VariantName:
    """The variant that serves ``conversation_id``; the baseline for an empty id (flagd's default variant)."""
    if not conversation_id:
        return "baseline"
    variant = fractional(flag.flag_key + conversation_id, distribution(flag))
    return "candidate" if variant == "candidate" else "baseline"
