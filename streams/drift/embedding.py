"""Embedding-distribution drift: hashed bag-of-words vectors, block centroids, distance to a reference centroid.

A sentence-embedding model would catch paraphrase-level shifts, but topic-mix and style drifts move the token
distribution already, and hashing costs microseconds with no model to ship. The statistic per block is the
squared distance between the block's mean vector and the reference mean; under a stable stream it has a
stable noise floor (estimated in warm-up), and a shifted mix pushes it up.
"""
from __future__ import annotations

import math
import re
import zlib

import numpy as np

from schemas.drift_state import CentroidState

_TOKEN = re.compile(r"[a-z][a-z0-9_'-]+")


class HashedEmbedder:
    """Text -> L2-normalised signed hashed unigram+bigram vector. Stable across processes (crc32, not hash())."""

    def __init__(self, dim: int = 256, cache_size: int = 50_000):
        if dim < 2:
            raise ValueError("dim must be >= 2")
        self.dim = dim
        self._cache: dict[str, tuple[int, float]] = {}
        self._cache_size = cache_size

    def _slot(self, tok: str) -> tuple[int, float]:
        hit = self._cache.get(tok)
        if hit is None:
            h = zlib.crc32(tok.encode())
            hit = (h % self.dim, 1.0 if (h >> 31) & 1 else -1.0)
            if len(self._cache) < self._cache_size:
                self._cache[tok] = hit
        return hit

    def embed(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float64)
        toks = _TOKEN.findall(text.lower()[:2000])
        get, slot = self._cache.get, self._slot
        for tok in toks:
            i, s = get(tok) or slot(tok)
            v[i] += s
        for a, b in zip(toks, toks[1:]):
            i, s = slot(a + " " + b)
            v[i] += 0.5 * s
        n = math.sqrt(v @ v)  # what np.linalg.norm computes for a vector, without its Python-level checks
        return v / n if n > 0 else v


class CentroidDistance:
    """Turns a block of vectors into one number: ||mean(block) - reference||².

    The reference is learned from the first ``ref_blocks`` blocks; before that ``update`` returns None.
    """

    def __init__(self, dim: int, ref_blocks: int = 20):
        self.dim = dim
        self.ref_blocks = ref_blocks
        self._ref_sum = np.zeros(dim)
        self._ref_n = 0
        self.reference: np.ndarray | None = None

    def reset(self) -> None:
        self._ref_sum[:] = 0.0
        self._ref_n = 0
        self.reference = None

    def update(self, block_mean: np.ndarray) -> float | None:
        if self.reference is None:
            self._ref_sum += block_mean
            self._ref_n += 1
            if self._ref_n >= self.ref_blocks:
                self.reference = self._ref_sum / self._ref_n
            return None
        d = block_mean - self.reference
        return float(d @ d)

    def state(self) -> CentroidState:
        return CentroidState(ref_sum=self._ref_sum.tolist(), ref_n=self._ref_n,
                             reference=None if self.reference is None else self.reference.tolist())

    @classmethod
    def from_state(cls, s: CentroidState, dim: int, ref_blocks: int) -> "CentroidDistance":
        if len(s.ref_sum) != dim or (s.reference is not None and len(s.reference) != dim):
            raise ValueError(f"centroid state is not {dim}-dimensional")
        c = cls(dim, ref_blocks)
        c._ref_sum[:] = s.ref_sum
        c._ref_n = s.ref_n
        c.reference = None if s.reference is None else np.asarray(s.reference, dtype=np.float64)
        return c
