"""`CollabModel`: the façade the app, CLI, API and evaluation use. It holds the trained `CollabState`
and, when the build trained one, the `Ranker`; it computes nothing itself but lists, frames and reasons.

A customer with history is ranked by the ranker over ~200 candidates from several sources when there is
one; the hand-weighted blend (`blend.py`) ranks shoppers known only by picked articles and everyone when
the data was too thin to train a ranker.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..catalog import Catalog
from ..errors import InputError
from ..runtime import built_once
from ..store import ArtifactStore
from .blend import Profile, fold_in, profile, rank
from .candidates import BLOCK, Window, candidates_block
from .features import features_block
from .params import CollabParams, Progress
from .ranker import Ranker
from .reasons import explain_blended, explain_ranked
from .state import CollabState
from .topk import limited_cap, select_from

LISTED_COLUMNS = ["article_id", "prod_name", "product_type_name", "colour_group_name"]


class CollabModel:
    def __init__(self, state: CollabState, ranker: Ranker | None = None):
        self.state = state
        self.ranker = ranker  # None: every list comes from the blend
        self._listed = state.catalog.articles[LISTED_COLUMNS]

    @classmethod
    def fit(cls, catalog: Catalog, params: CollabParams = CollabParams(), *, until=None,
            progress: Progress | None = None) -> "CollabModel":
        """A model without a ranker, trained on the purchases before ``until`` (all when None)."""
        return cls(CollabState.fit(catalog, params, until=until, progress=progress))

    @classmethod
    def load(cls, store: ArtifactStore, catalog: Catalog) -> "CollabModel":
        """The stored state and ranker; ArtifactError when the state is missing or from other data."""
        return cls(CollabState.load(store, catalog), Ranker.load(store, catalog))

    @property
    def catalog(self) -> Catalog:
        return self.state.catalog

    @property
    def params(self) -> CollabParams:
        return self.state.params

    @built_once
    def window(self) -> Window:
        """Candidate sources and features at the state's "now" (built on first use)."""
        return Window(self.state)

    # -- similar customers ------------------------------------------------------------------------

    def similar_customers(self, customer_id: str, k: int = 10) -> pd.DataFrame:
        """The k customers whose taste (ALS factors) is closest, with what they share."""
        return self._neighbour_frame(profile(self.state, self.state.code_with_history(customer_id), neighbours=k))

    def similar_to_items(self, article_ids: Sequence[str], k: int = 10) -> pd.DataFrame:
        """Similar customers for a shopper known only by a few picked articles (fold-in)."""
        return self._neighbour_frame(fold_in(self.state, article_ids, neighbours=k))

    def _neighbour_frame(self, shopper: Profile) -> pd.DataFrame:
        state, codes = self.state, shopper.neighbour_codes
        counts, type_codes, type_names = state.interactions.counts, state.type_codes, state.type_names
        own_types = np.bincount(type_codes[shopper.articles], minlength=len(type_names))
        shared_articles, shared_types = [], []
        for code in codes:
            theirs = counts.indices[counts.indptr[code] : counts.indptr[code + 1]]
            shared_articles.append(len(np.intersect1d(shopper.articles, theirs, assume_unique=True)))
            overlap = np.minimum(own_types, np.bincount(type_codes[theirs], minlength=len(own_types)))
            top = np.argsort(-overlap, kind="stable")[:3]
            shared_types.append([type_names[t] for t in top if overlap[t] > 0])
        return pd.DataFrame(
            {
                "customer_id": state.catalog.customer_ids[codes].astype(str) if len(codes) else [],
                "similarity": np.round(shopper.neighbour_sims.astype(np.float64), 4),
                "shared_articles": np.asarray(shared_articles, dtype=np.int64),
                "shared_types": shared_types,
            }
        )

    # -- recommendations ---------------------------------------------------------------------------

    def recommend(self, customer_id: str, k: int = 12, exclude_bought: bool = True) -> pd.DataFrame:
        """k articles for a known customer, each with the reason it is there.

        A customer without purchases in the training window gets what is trending (said in the reason).
        """
        code = self.catalog.customer_code(customer_id)
        _check_k(k)
        if self.ranker is None:
            return self._blended(profile(self.state, code), k, exclude_bought)
        rows, scores, cands, X = self.ranked(code, k, exclude_bought)
        positions = np.searchsorted(cands.articles, rows)
        contributions = self.ranker.contributions(X[positions])
        reasons = [explain_ranked(self.window, code, cands, int(p), contributions[j]) for j, p in enumerate(positions)]
        return self._listing(rows, scores, reasons)

    def recommend_for_items(self, article_ids: Sequence[str], k: int = 12) -> pd.DataFrame:
        """Cold start: recommendations for a shopper who picked a few articles (never the picks themselves).

        The picks are folded into the trained model with implicit's `recalculate_user`: no retraining.
        """
        _check_k(k)
        return self._blended(fold_in(self.state, article_ids), k, exclude_bought=True)

    def ranked(self, code: int, k: int, exclude_bought: bool):
        """The ranker's top-k for a customer code: (article rows, scores, candidates, candidate features)."""
        return self._ranked_block([code], k, exclude_bought)[0]

    def ranked_block(self, codes: Sequence[int], k: int, exclude_bought: bool) -> list[np.ndarray]:
        """`ranked`'s article rows for many customer codes: candidates a block of customers at a time, one
        LightGBM call a block (per-call overhead dominates a ~200-row prediction)."""
        out = []
        for start in range(0, len(codes), BLOCK):
            out += [rows for rows, *_ in self._ranked_block(codes[start : start + BLOCK], k, exclude_bought)]
        return out

    def _ranked_block(self, codes: Sequence[int], k: int, exclude_bought: bool):
        w, limited = self.window, self.state.stats.limited
        block = w.block(codes)
        exclude = [np.unique(mine.articles) for mine in block.mine] if exclude_bought else None
        block_cands = candidates_block(w, block, self.params.candidates_per_source, exclude)
        block_X = features_block(w, block.codes, block_cands)
        rows = [X for X in block_X if len(X)]
        scores = self.ranker.score(np.vstack(rows)) if rows else np.zeros(0)
        out, at = [], 0
        cap = limited_cap(k, self.params.max_limited_share)
        for cands, X in zip(block_cands, block_X):
            mine = scores[at : at + len(X)]
            at += len(X)
            shifted = mine - mine.min(initial=0.0) + 1.0  # all above 0
            ranked = select_from(cands.articles, shifted, k, limited[cands.articles], cap)
            out.append((ranked, mine[np.searchsorted(cands.articles, ranked)], cands, X))
        return out

    def blended(self, code: int, k: int, exclude_bought: bool) -> np.ndarray:
        """The blend's top-k article rows for a customer code (-1: a customer the data lacks)."""
        shopper = profile(self.state, code) if code >= 0 else Profile.empty()
        return rank(self.state, shopper, k, exclude_bought)[0]

    def _blended(self, shopper: Profile, k: int, exclude_bought: bool) -> pd.DataFrame:
        rows, scores, contributions = rank(self.state, shopper, k, exclude_bought)
        reasons = [explain_blended(self.state, shopper, int(row), contributions[:, i]) for i, row in enumerate(rows)]
        return self._listing(rows, scores, reasons)

    def _listing(self, rows: np.ndarray, scores: np.ndarray, reasons: list[str]) -> pd.DataFrame:
        picked = self._listed.iloc[rows]  # rows first: a whole string column to numpy costs ms
        return pd.DataFrame(
            {
                "article_id": picked["article_id"].to_numpy(),
                "score": np.round(scores.astype(np.float64), 4),
                "reason": reasons,
                "prod_name": picked["prod_name"].to_numpy(),
                "product_type_name": picked["product_type_name"].to_numpy(),
                "colour_group_name": picked["colour_group_name"].to_numpy(),
            }
        )

    # -- for the UI ------------------------------------------------------------------------------

    def history(self, customer_id: str) -> pd.DataFrame:
        """The customer's purchases in the training window, newest first, with article metadata."""
        code = self.catalog.customer_code(customer_id)
        mine = self.catalog.transactions.iloc[self.state.purchases.transaction_rows(code)[::-1]]
        articles = self.catalog.articles.iloc[mine["article"].to_numpy()]
        return pd.DataFrame(
            {
                "t_dat": mine["t_dat"].to_numpy(),
                "article_id": articles["article_id"].to_numpy(),
                "prod_name": articles["prod_name"].to_numpy(),
                "product_type_name": articles["product_type_name"].to_numpy(),
                "colour_group_name": articles["colour_group_name"].to_numpy(),
                "price": mine["price"].to_numpy(),
                "sales_channel_id": mine["sales_channel_id"].to_numpy(),
                "has_image": articles["has_image"].to_numpy(),
            }
        )

    def example_customers(self, n: int = 5) -> list[str]:
        """Customers with the most distinct articles bought (rich histories for a demo picker)."""
        distinct = np.diff(self.state.interactions.counts.indptr)
        codes = np.argsort(-distinct, kind="stable")[:n]
        return [str(self.catalog.customer_ids[c]) for c in codes if distinct[c] > 0]


def _check_k(k: int) -> None:
    if k < 1:
        raise InputError(f"k must be at least 1, not {k}")
