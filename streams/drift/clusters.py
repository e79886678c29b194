"""Error clusters: group traces a judge got wrong by their hashed text features (k-means), name each by its
most frequent words, so a person can see where the judges fail."""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

import numpy as np

from streams.drift.embedding import HashedEmbedder

_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOP = frozenset("the and for you that this with are was have from your can will not but what all just has "
                  "been let know there their they them any here into out our about would could should i'm".split())


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 25) -> np.ndarray:
    """Labels of k-means++ on the rows of x (cosine-ish: rows are L2-normalised)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    k = max(1, min(k, n))
    centers = [x[rng.integers(n)]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(1) for c in centers], axis=0)
        total = d.sum()
        centers.append(x[rng.choice(n, p=d / total)] if total > 0 else x[rng.integers(n)])
    c = np.array(centers)
    labels = np.zeros(n, dtype=int)
    for _ in range(iters):
        labels = ((x[:, None, :] - c[None, :, :]) ** 2).sum(2).argmin(1)
        new = np.array([x[labels == i].mean(0) if (labels == i).any() else c[i] for i in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return labels


def error_clusters(items: Sequence[tuple[str, str]], k: int, embedder: HashedEmbedder | None = None,
                   examples: int = 3) -> list[dict[str, Any]]:
    """items: (trace_id, snippet). Returns clusters, largest first: size, top_terms, example_trace_ids."""
    if not items:
        return []
    emb = embedder or HashedEmbedder(256)
    x = np.array([emb.embed(s) for _, s in items])
    labels = kmeans(x, k)
    out = []
    for c in sorted(set(labels.tolist()), key=lambda c: -(labels == c).sum()):
        members = [items[i] for i in np.flatnonzero(labels == c)]
        words = Counter(w for _, s in members for w in set(_WORD.findall(s.lower())) if w not in _STOP)
        out.append({"cluster": len(out), "size": len(members), "top_terms": [w for w, _ in words.most_common(5)],
                    "example_trace_ids": [tid for tid, _ in members[:examples]]})
    return out
