"""A shopper's taste, for personalised search: how much each of a few articles suits them, and why.

Four signals, each in [0, 1] over the articles being ranked: the ALS score (customer factor · article
factor, scaled between the lowest and the highest of those articles), the share of the shopper's
purchases of the article's product type, the share of its colour, and how close the article looks to
their purchases (cosine with the recency-weighted mean of their purchases' content vectors). A shopper
known only by picked articles has no factor: the other three count. When the recommendation ranker can
score the shopper (a customer of the data, a build with a ranker), its score's rank among the articles is
a fifth signal, weighing RANKER_SHARE of the affinity; the others' mean weighs the rest.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .state import CollabState

TASTE_HALF_LIFE_DAYS = 90.0  # a purchase a season ago counts half in the look of one's taste
RANKER_SHARE = 0.5  # chosen with bench_personal.py --skip-weeks 4 --customers 50 among 1/2, 2/3 and 1


class Taste:
    def __init__(self, state: CollabState, articles: np.ndarray, age_days: np.ndarray | None = None,
                 factor: np.ndarray | None = None, ranker_scores: Callable[[np.ndarray], np.ndarray] | None = None):
        """``articles``: the shopper's purchases (or picks), one entry a purchase; ``age_days``: how long
        ago each was bought (None: all count alike); ``ranker_scores``: article rows → the recommendation
        ranker's scores of them for this shopper."""
        self.state = state
        self.factor = factor
        self.ranker_scores = ranker_scores
        articles = np.asarray(articles, np.int64)
        self.n_purchases = len(articles)
        self.type_share = np.bincount(state.type_codes[articles], minlength=len(state.type_names)) / max(len(articles), 1)
        self.colours, colour_codes = _colour_codes(state)
        self.colour_share = np.bincount(colour_codes[articles], minlength=len(self.colours)) / max(len(articles), 1)
        self._colour_codes = colour_codes
        self.vector = None
        looks = state.looks
        if looks is not None and len(articles):
            weights = np.ones(len(articles)) if age_days is None else np.exp2(-np.asarray(age_days) / TASTE_HALF_LIFE_DAYS)
            mean = weights @ np.asarray(looks.vectors[articles], np.float64)
            self.vector = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)

    def affinity(self, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Each row's affinity in [0, 1], and why in words ("you often buy Trousers in Black")."""
        rows = np.asarray(rows, np.int64)
        signals = [self.type_share[self.state.type_codes[rows]], self.colour_share[self._colour_codes[rows]]]
        if self.factor is not None and len(rows):
            als = self.state.als.item_factors[rows] @ self.factor
            spread = float(als.max() - als.min())
            signals.append((als - als.min()) / spread if spread > 0 else np.zeros(len(rows)))
        if self.vector is not None:
            signals.append(np.clip(np.asarray(self.state.looks.vectors[rows]) @ self.vector, 0.0, 1.0))
        score = np.mean(signals, axis=0) if len(rows) else np.zeros(0)
        if self.ranker_scores is not None and len(rows) > 1:
            ranked = np.argsort(np.argsort(self.ranker_scores(rows), kind="stable"), kind="stable") / (len(rows) - 1)
            score = (1 - RANKER_SHARE) * score + RANKER_SHARE * ranked
        return score.astype(np.float32), [self._why(int(row)) for row in rows]

    def _why(self, row: int) -> str:
        type_code, colour = self.state.type_codes[row], self._colour_codes[row]
        type_share, colour_share = self.type_share[type_code], self.colour_share[colour]
        if type_share >= 0.2 and colour_share >= 0.2:
            return f"you often buy {self.state.type_names[type_code]} in {self.colours[colour]}"
        if type_share >= 0.2:
            return f"you often buy {self.state.type_names[type_code]}"
        if colour_share >= 0.2:
            return f"you often buy {self.colours[colour]}"
        return "close to your taste" if self.n_purchases else ""


def _colour_codes(state: CollabState) -> tuple[np.ndarray, np.ndarray]:
    codes, names = pd.factorize(state.catalog.articles["colour_group_name"])
    return np.asarray(names, dtype=object), codes.astype(np.int64)
