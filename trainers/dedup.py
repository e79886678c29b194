"""Exact and near-duplicate removal: SimHash over word bigrams, candidates found by band buckets.

Two 64-bit SimHashes within Hamming distance ``k`` agree exactly on at least one of ``k + 1`` disjoint bands
(pigeonhole), so bucketing by band finds every near-duplicate pair without comparing all pairs.
"""
from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Sequence

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _h64(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")


def simhash(text: str, shingle: int = 2) -> int:
    """64-bit SimHash of word ``shingle``-grams (single words for short texts)."""
    words = normalize(text).split()
    if len(words) >= shingle:
        feats = [" ".join(words[i:i + shingle]) for i in range(len(words) - shingle + 1)]
    else:
        feats = words or [""]
    acc = [0] * 64
    for f in feats:
        h = _h64(f)
        for bit in range(64):
            acc[bit] += 1 if (h >> bit) & 1 else -1
    return sum(1 << bit for bit in range(64) if acc[bit] > 0)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _bands(h: int, n: int) -> list[tuple[int, int]]:
    width = 64 // n
    out = []
    for i in range(n):
        lo = i * width
        hi = 64 if i == n - 1 else lo + width
        out.append((i, (h >> lo) & ((1 << (hi - lo)) - 1)))
    return out


def dedup_indices(texts: Sequence[str], max_bits: int = 3) -> tuple[list[int], int, int]:
    """Indices of rows to keep (first occurrence wins), plus counts of exact and near duplicates dropped."""
    keep: list[int] = []
    seen_exact: set[str] = set()
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    hashes: dict[int, int] = {}
    exact = near = 0
    n_bands = max_bits + 1
    for i, text in enumerate(texts):
        norm = normalize(text)
        digest = hashlib.sha256(norm.encode()).hexdigest()
        if digest in seen_exact:
            exact += 1
            continue
        seen_exact.add(digest)
        h = simhash(text)
        bands = _bands(h, n_bands)
        if max_bits > 0 and any(hamming(h, hashes[j]) <= max_bits for b in bands for j in buckets[b]):
            near += 1
            continue
        hashes[i] = h
        for b in bands:
            buckets[b].append(i)
        keep.append(i)
    return keep, exact, near
