"""Hybrid search: a text query's lexical (BM25) and visual (CLIP) rankings fused, with explanations.

Each leg ranks its candidates (the same filter mask for both); reciprocal rank fusion scores an
article Σ weight / (RRF_K + rank) over the legs that ranked it (Cormack et al. 2009, k = 60), so
neither leg's score scale matters. A text's lexical leg carries LEXICAL_SHARE of its weight and its
visual leg the rest: shoppers type the catalogue's own words, so a word match is the stronger evidence,
and the visual leg reorders near-ties and finds what no word names (the share was chosen on half of
bench/search_queries.json and checked on the other half). Text + photos: the text's legs share
(1 − image_weight) of the weight and the photos' visual ranking gets image_weight. A "not like" text lowers the lexical scores
of the articles it matches (the visual leg pushes its query vector away, as before).

An article without a photo is in the visual leg by a vector borrowed from photographed articles with
similar captions (embed_job), with its hub advantage taken off (content_index.hub_offsets), and in the
lexical leg by its own words; it is never marked as looking alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RRF_K = 60
LEXICAL_SHARE = 0.8  # of a text's weight in hybrid fusion; the text's visual leg has the rest
DEPTH = 100  # candidates taken from each leg
LOOKS_ALIKE_TOP = 30  # a visual-leg rank below this marks a result as "looks alike"
NEGATIVE_WEIGHT = 0.5
MODES = ("hybrid", "visual", "lexical")


@dataclass
class Ranking:
    """One leg's candidates, best first, and its weight in the fusion."""

    rows: np.ndarray
    weight: float = 1.0
    visual: bool = False


@dataclass
class Fused:
    rows: np.ndarray
    scores: np.ndarray
    visual_rank: dict = field(default_factory=dict)  # row → best rank in a visual leg


def reciprocal_rank_fusion(rankings: list[Ranking], k: int = RRF_K) -> Fused:
    """Rows by Σ weight/(k + rank) (rank from 1), best first; ties keep the order of first appearance."""
    scores: dict[int, float] = {}
    visual_rank: dict[int, int] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking.rows.tolist(), 1):
            scores[row] = scores.get(row, 0.0) + ranking.weight / (k + rank)
            if ranking.visual:
                visual_rank[row] = min(rank, visual_rank.get(row, rank))
    rows = np.fromiter(scores.keys(), dtype=np.int64, count=len(scores))
    values = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    order = np.argsort(-values, kind="stable")
    return Fused(rows[order], values[order], visual_rank)


def lexical_ranking(scores: np.ndarray, allowed: np.ndarray | None, depth: int) -> np.ndarray:
    """Rows with a positive score among the allowed ones, best first (ties by row), at most depth."""
    if allowed is not None:
        scores = np.where(allowed, scores, 0.0)
    candidates = np.flatnonzero(scores > 0)
    if len(candidates) > depth:
        candidates = candidates[np.argpartition(-scores[candidates], depth - 1)[:depth]]
    return candidates[np.lexsort((candidates, -scores[candidates]))]


def lexical_scores(lexical, text: str, negative: str | None) -> tuple[np.ndarray, set[str]]:
    """BM25 scores of the text (scaled to a best of 1), less NEGATIVE_WEIGHT × the negative's; and the
    query's index terms (for the explanations)."""
    scores, analysed = lexical.query_scores(text)
    terms = {t for _, ts in analysed for t in ts}
    top = float(scores.max()) if len(scores) else 0.0
    if top <= 0:
        return scores, terms
    scores = scores / top
    if negative:
        pushed, _ = lexical.query_scores(negative)
        if pushed.max() > 0:
            found = scores > 0
            scores = np.maximum(scores - NEGATIVE_WEIGHT * pushed / pushed.max(), 1e-6)  # still found, lower
            scores[~found] = 0.0
    return scores, terms
