"""The ways a list can be made (`METHODS`), one name each for `evaluate`'s rows, the build's choice and the
`method=` of `recommend`: the learned ranker, the ensemble hedge, blends of the hand-weighted signals, and
the two public baselines. A candidate-based method orders one customer's candidates (`order`); the blend
rows rank the whole catalogue (`BLEND_WEIGHTS`).

The ensemble is reciprocal rank fusion (Cormack, Clarke & Büttcher 2009) of three lists that fail in
different regimes: the ranker (learned on past weeks, strong while shoppers re-buy), ALS (taste, steady when
the collection turns over) and last purchases + the week's best sellers. An article's score is the sum over
the lists that hold it of 1 / (`FUSION_K` + its rank there): the ranker ranks every candidate, each
source list is `candidates_per_source` deep.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .candidates import SOURCES, Candidates

METHODS = ("ranker", "ensemble", "blend", "als", "customers-like-you", "last purchases + popular",
           "popular last week")  # fmt: skip
BLEND_WEIGHTS = {"blend": None, "als": {"als": 1.0}, "customers-like-you": {"neighbours": 1.0}}  # None: the params'
CANDIDATE_METHODS = ("ranker", "ensemble", "last purchases + popular")  # order the ranker's candidates
NEEDS_RANKER = ("ranker", "ensemble")
INGREDIENTS = ("ranker", "als", "last_purchases")  # the ensemble's lists: the ranker's, then two sources'
FUSION_K = 60  # the constant of the RRF paper, not tuned here


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    return method


def ensemble_terms(cands: Candidates, ranker_scores: np.ndarray) -> np.ndarray:
    """float [candidates × INGREDIENTS]: each list's 1 / (FUSION_K + rank) for each candidate (0 where the
    list does not hold it)."""
    order = np.lexsort((cands.articles, -ranker_scores))  # ties: the lower article row first
    ranker_rank = np.empty(len(order), np.float64)
    ranker_rank[order] = np.arange(1, len(order) + 1)
    ranks = np.column_stack([ranker_rank] + [cands.ranks[:, SOURCES.index(s)] for s in INGREDIENTS[1:]])
    return np.where(np.isfinite(ranks), 1.0 / (FUSION_K + np.nan_to_num(ranks, nan=0.0)), 0.0)


def order_scores(method: str, cands: Candidates, ranker_scores: np.ndarray) -> np.ndarray:
    """Scores (higher first, all above 0 for what the method proposes, 0 for the rest) that put one
    customer's candidates in ``method``'s order."""
    if method == "ranker":
        return ranker_scores - ranker_scores.min(initial=0.0) + 1.0
    if method == "ensemble":
        return ensemble_terms(cands, ranker_scores).sum(axis=1)
    if method == "last purchases + popular":  # then the week's trend, where bought articles were left out
        rank = cands.ranks[:, SOURCES.index("last_purchases")]
        trend = cands.ranks[:, SOURCES.index("trending")]
        return np.where(np.isfinite(rank), 2.0 + 1.0 / np.nan_to_num(rank, nan=1.0),
                        np.where(np.isfinite(trend), 1.0 / np.nan_to_num(trend, nan=1.0), 0.0))
    raise ValueError(f"{method} does not order candidates")
