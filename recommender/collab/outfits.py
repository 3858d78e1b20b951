"""Complete the look: for an article, articles of *other* product groups that shoppers bought with it.

Baskets are a customer's purchases within one week (the last `OUTFIT_DAYS` before the state's cut). Two
articles' strength is their co-purchase count over what their popularity alone would give, shrunk toward
nothing for pairs seen once (``together / (expected + 1)``, expected = n_a·n_b / baskets): best sellers do
not win by selling a lot. Style coherence, the cosine of their content vectors, scales it up to 1 +
`STYLE_WEIGHT`. One article per product type. An article nobody bought with anything yet (a new arrival)
borrows the co-purchases of its visually nearest articles, weighted by how alike they look, and says so.
Co-purchases are sparse: the places they leave go to what sells now in the article's index group
(Ladieswear, Divided, …) from the other product groups, by the same style coherence, after every
co-purchase.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..runtime import built_once
from .state import CollabState

OUTFIT_DAYS = 182  # co-purchases of the last half year: this season's outfits and the last
STYLE_WEIGHT = 0.5  # a pair that looks alike (cosine 1) scores 1.5×; unrelated looks 1×
BORROWED_LOOKALIKES = 5  # the nearest look-alikes whose co-purchases an article without any borrows
FILL_POOL = 2000  # the best sellers of the moment the places co-purchases leave are filled from


@dataclass
class Outfit:
    """An article's complements, best first, and for each the article it was bought with."""

    rows: np.ndarray  # article rows
    scores: np.ndarray
    via: np.ndarray  # the article whose co-purchase proposed it: the query itself, a look-alike of it, or -1:
    # a best seller of its index group (a place no co-purchase filled)


class Outfits:
    """Co-purchase strength between articles of different product groups, at the state's cut."""

    def __init__(self, state: CollabState):
        self.state = state
        articles = state.catalog.articles
        self.groups = pd.factorize(articles["product_group_name"])[0].astype(np.int32)
        self.types = state.type_codes
        self.index_groups = pd.factorize(articles["index_group_name"])[0].astype(np.int32)

    @built_once
    def baskets(self) -> sp.csr_matrix:
        """customer-week × article, 1 where the basket holds the article (last OUTFIT_DAYS)."""
        state = self.state
        tx = state.catalog.transactions.iloc[: state.interactions.n_transactions]
        age = ((state.interactions.now - tx["t_dat"].to_numpy()) / np.timedelta64(1, "D")).astype(np.int64)
        recent = age <= OUTFIT_DAYS
        basket = pd.factorize(tx["customer"].to_numpy()[recent].astype(np.int64) * 1000 + age[recent] // 7)[0]
        items = sp.csr_matrix((np.ones(len(basket), np.float32), (basket, tx["article"].to_numpy()[recent])),
                              shape=(int(basket.max()) + 1 if len(basket) else 0, state.n_articles))
        items.sum_duplicates()
        items.data[:] = 1.0  # an article bought twice in a basket counts once
        return items

    @built_once
    def in_baskets(self) -> np.ndarray:
        return np.asarray(self.baskets.sum(axis=0)).ravel()

    @built_once
    def together(self) -> sp.csr_matrix:
        """article × article: customer-weeks that bought both, diagonal 0."""
        items = self.baskets
        pairs = (items.T @ items).tocsr()
        pairs.setdiag(0)
        pairs.eliminate_zeros()
        return pairs

    @built_once
    def selling(self) -> np.ndarray:
        """The FILL_POOL articles that sell most now (the state's decayed trend), best first."""
        trend = self.state.stats.trend
        return np.argsort(-trend, kind="stable")[: min(FILL_POOL, int((trend > 0).sum()))]

    def strength(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(articles, shrunk lift) of everything bought with ``row`` in another product group."""
        pairs = self.together
        start, stop = pairs.indptr[row], pairs.indptr[row + 1]
        others, counts = pairs.indices[start:stop], pairs.data[start:stop]
        keep = self.groups[others] != self.groups[row]
        others, counts = others[keep], counts[keep]
        expected = self.in_baskets[row] * self.in_baskets[others] / max(self.baskets.shape[0], 1)
        return others, counts / (expected + 1.0)

    def complete(self, row: int, k: int, exclude: np.ndarray | None = None) -> Outfit:
        """The k best complements of ``row``: one per product type, none of its own product group
        (``exclude``: a mask of article rows never proposed, e.g. unavailable)."""
        others, scores = self.strength(row)
        via = np.full(len(others), row, np.int64)
        looks = self.state.looks
        if not len(others) and looks is not None:  # nothing bought with it yet: borrow from its look-alikes
            others, scores, via = self._borrowed(row)
        selling = self.selling[self.index_groups[self.selling] == self.index_groups[row]]
        selling = selling[~np.isin(selling, others)]
        # Below every co-purchase: scaled to at most a tenth of the weakest one.
        scale = 0.1 * float(scores.min()) if len(scores) else 1.0
        trend = self.state.stats.trend[selling]
        others = np.concatenate([others, selling]).astype(np.int64)
        scores = np.concatenate([scores, scale * trend / max(float(trend.max(initial=0.0)), 1e-12)])
        via = np.concatenate([via, np.full(len(selling), -1)])
        if looks is not None and len(others):
            vectors = looks.vectors
            style = np.asarray(vectors[others]) @ np.asarray(vectors[row])
            scores = scores * (1.0 + STYLE_WEIGHT * np.clip(style, 0.0, None))
        keep = (self.groups[others] != self.groups[row]) & (scores > 0)
        if exclude is not None:
            keep &= ~exclude[others]
        others, scores, via = others[keep], scores[keep], via[keep]
        order = np.lexsort((others, -scores))
        others, scores, via = others[order], scores[order], via[order]
        _, first = np.unique(self.types[others], return_index=True)  # each product type's best once
        first = np.sort(first)[:k]
        return Outfit(others[first].astype(np.int64), scores[first].astype(np.float32), via[first])

    def _borrowed(self, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        looks = self.state.looks
        near, sims = np.asarray(looks.neighbours[row]), np.asarray(looks.similarities[row])
        found = near >= 0
        near, sims = near[found][:BORROWED_LOOKALIKES], sims[found][:BORROWED_LOOKALIKES]
        parts = [(self.strength(int(n)), float(s), int(n)) for n, s in zip(near, sims) if s > 0]
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
        others = np.concatenate([o for (o, _), _, _ in parts])
        scores = np.concatenate([sc * s for (_, sc), s, _ in parts])
        via = np.concatenate([np.full(len(o), n) for (o, _), _, n in parts])
        order = np.lexsort((others, -scores))  # each article once, from the look-alike that gives it most
        others, scores, via = others[order], scores[order], via[order]
        _, first = np.unique(others, return_index=True)
        return others[first], scores[first], via[first]
