"""`CollabModel`: the façade the app, CLI, API and evaluation use. It holds the trained `CollabState`,
the `Ranker` when the build trained one, and the method the build's backtest chose; it computes nothing
itself but lists, frames and reasons.

A customer with history gets the chosen method's list (`methods.py`: the ranker or the ensemble over ~200
candidates from several sources, a blend, or a baseline); `method=` overrides it. The hand-weighted blend
(`blend.py`) ranks shoppers known only by picked articles, and stands in for the ranker-based methods when
the data was too thin to train a ranker.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..catalog import Catalog
from ..errors import InputError
from ..rules import SLACK
from ..runtime import built_once
from ..store import ArtifactStore
from .blend import Profile, fold_in, profile, rank
from .candidates import BLOCK, Window, candidates_block
from .features import features_block, features_of
from .methods import BLEND_WEIGHTS, INGREDIENTS, METHODS, NEEDS_RANKER, check_method, ensemble_terms, order_scores
from .params import CollabParams, Progress
from .ranker import SCHEMA, Ranker
from .outfits import Outfits
from .taste import Taste
from .reasons import explain_blended, explain_outfit, explain_ranked, explain_source
from .state import CollabState
from .topk import limited_cap, select_from, top_scores

LISTED_COLUMNS = ["article_id", "prod_name", "product_type_name", "colour_group_name"]
CHOICE_ARTIFACT = "evaluation"  # the build's backtest: its tables, and in its meta the method it chose


class CollabModel:
    def __init__(self, state: CollabState, ranker: Ranker | None = None, method: str | None = None):
        self.state = state
        self.ranker = ranker  # None: the ranker-based methods fall back to the blend
        self.method = method or "ranker"  # what `recommend` uses unless told otherwise
        self.method_chosen = method is not None  # by the build's backtest (else the default)
        self.availability = None  # availability.Availability: what is out of stock is never listed
        self.rules = None  # rules.Rules: merchandising rules, applied to every list after ranking
        self._listed = state.catalog.articles[LISTED_COLUMNS]

    @classmethod
    def fit(cls, catalog: Catalog, params: CollabParams = CollabParams(), *, until=None,
            progress: Progress | None = None) -> "CollabModel":
        """A model without a ranker, trained on the purchases before ``until`` (all when None)."""
        return cls(CollabState.fit(catalog, params, until=until, progress=progress))

    @classmethod
    def load(cls, store: ArtifactStore, catalog: Catalog) -> "CollabModel":
        """The stored state, ranker and chosen method; ArtifactError when the state is missing or from other data."""
        return cls(CollabState.load(store, catalog), Ranker.load(store, catalog), chosen_method(store, catalog))

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

    @built_once
    def outfits(self) -> Outfits:
        """Co-purchases across product groups at the state's cut (built on first use)."""
        return Outfits(self.state)

    def complete_the_look(self, article_id: str, k: int = 12) -> pd.DataFrame:
        """Articles of other product groups that go with this one (shoppers bought them in the same week),
        one per product type, each with the reason; ``attrs["method"]`` is "complete the look"."""
        _check_k(k)
        row = self.catalog.article_row(article_id)
        outfit = self.outfits.complete(row, self._depth(k), exclude=self._unavailable())
        via = dict(zip(outfit.rows.tolist(), outfit.via.tolist()))
        rows, scores, touched = self._ruled(outfit.rows, outfit.scores, k)
        reasons = [explain_outfit(self.outfits, row, int(r), via[int(r)]) for r in rows]
        return self._listing(rows, scores, reasons, "complete the look", touched)

    def taste(self, customer_id: str) -> Taste:
        """The customer's taste (purchases before the cut, their ALS factor, the ranker's scores) for
        personalised search."""
        code = self.catalog.customer_code(customer_id)
        history = self.state.purchases
        rows = history.rows(code)
        age = (self.state.interactions.now - history.days[rows]) / np.timedelta64(1, "D")
        scores = None if self.ranker is None else (
            lambda articles: self.ranker.score(features_of(self.window, code, articles, self.params.candidates_per_source)))
        return Taste(self.state, history.articles[rows], age, self.state.factor(code), scores)

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

    def recommend(self, customer_id: str, k: int = 12, exclude_bought: bool = True, method: str | None = None) -> pd.DataFrame:
        """k articles for a known customer, each with the reason it is there; ``method``: one of `METHODS`
        (default: the build's choice). The frame's ``attrs["method"]`` names the method that made it.

        A customer without purchases in the training window gets what is trending (said in the reason).
        """
        code = self.catalog.customer_code(customer_id)
        _check_k(k)
        method = self.serving_method(method)
        if method in BLEND_WEIGHTS:
            return self._blended(profile(self.state, code), k, exclude_bought, method)
        if method == "popular last week":
            sales, unavailable = self.state.stats.week_sales.astype(np.float32), self._unavailable()
            rows, scores = top_scores(sales if unavailable is None else np.where(unavailable, 0, sales), self._depth(k))
            rows, scores, touched = self._ruled(rows, scores, k)
            reasons = [explain_source(self.window, code, None, int(r), "trending") for r in rows]
            return self._listing(rows, scores, reasons, method, touched)
        rows, scores, cands, X = self.ranked(code, self._depth(k), exclude_bought, method)
        rows, scores, touched = self._ruled(rows, scores, k)
        positions = np.searchsorted(cands.articles, rows)
        if method == "last purchases + popular":
            reasons = [explain_source(self.window, code, cands, int(r), "last_purchases") for r in rows]
            return self._listing(rows, scores, reasons, method, touched)
        contributions = self.ranker.contributions(X[positions])
        ingredient = ensemble_terms(cands, self.ranker.score(X)).argmax(axis=1) if method == "ensemble" else None
        reasons = []
        for j, p in enumerate(positions):
            if ingredient is not None and ingredient[p] > 0:  # ALS or last purchases put it highest
                reasons.append(explain_source(self.window, code, cands, int(rows[j]), INGREDIENTS[ingredient[p]]))
            else:
                reasons.append(explain_ranked(self.window, code, cands, int(p), contributions[j]))
        return self._listing(rows, scores, reasons, method, touched)

    def serving_method(self, method: str | None = None) -> str:
        """``method`` (default: the chosen one) as it can be served: the blend stands in for a method that
        needs the ranker when the data was too thin to train one."""
        method = check_method(method or self.method)
        return "blend" if method in NEEDS_RANKER and self.ranker is None else method

    def recommend_for_items(self, article_ids: Sequence[str], k: int = 12) -> pd.DataFrame:
        """Cold start: recommendations for a shopper who picked a few articles (never the picks themselves).

        The picks are folded into the trained model with implicit's `recalculate_user`: no retraining.
        """
        _check_k(k)
        return self._blended(fold_in(self.state, article_ids), k, exclude_bought=True, method="blend")

    def ranked(self, code: int, k: int, exclude_bought: bool, method: str = "ranker"):
        """A candidate-based method's top-k for a customer code: (article rows, scores, candidates, features)."""
        return self._ranked_block([code], k, exclude_bought, (method,))[0][method]

    def ranked_block(self, codes: Sequence[int], k: int, exclude_bought: bool,
                     methods: Sequence[str] = ("ranker",)) -> dict[str, list[np.ndarray]]:
        """Per candidate-based method, the article rows of its top-k for many customer codes: candidates a
        block of customers at a time, one LightGBM call a block (per-call overhead dominates a ~200-row
        prediction)."""
        out = {method: [] for method in methods}
        for start in range(0, len(codes), BLOCK):
            for lists in self._ranked_block(codes[start : start + BLOCK], k, exclude_bought, methods):
                for method in methods:
                    out[method].append(lists[method][0])
        return out

    def _ranked_block(self, codes: Sequence[int], k: int, exclude_bought: bool, methods: Sequence[str]):
        w, limited = self.window, self.state.stats.limited
        block = w.block(codes)
        exclude = [np.unique(mine.articles) for mine in block.mine] if exclude_bought else None
        block_cands = candidates_block(w, block, self.params.candidates_per_source, exclude)
        block_X = features_block(w, block.codes, block_cands)
        needs_scores = self.ranker is not None and any(m in NEEDS_RANKER for m in methods)
        rows = [X for X in block_X if len(X)]
        scores = self.ranker.score(np.vstack(rows)) if needs_scores and rows else np.zeros(sum(len(X) for X in block_X))
        out, at = [], 0
        cap = limited_cap(k, self.params.max_limited_share)
        unavailable = self._unavailable()
        for cands, X in zip(block_cands, block_X):
            mine = scores[at : at + len(X)]
            at += len(X)
            lists = {}
            for method in methods:
                ordered = order_scores(method, cands, mine)
                if unavailable is not None:
                    ordered = np.where(unavailable[cands.articles], 0.0, ordered)
                ranked = select_from(cands.articles, ordered, k, limited[cands.articles], cap)
                lists[method] = (ranked, ordered[np.searchsorted(cands.articles, ranked)], cands, X)
            out.append(lists)
        return out

    def blended(self, code: int, k: int, exclude_bought: bool, method: str = "blend") -> np.ndarray:
        """A blend row's top-k article rows for a customer code (-1: a customer the data lacks)."""
        shopper = profile(self.state, code) if code >= 0 else Profile.empty()
        return rank(self.state, shopper, k, exclude_bought, BLEND_WEIGHTS[method], self._unavailable())[0]

    def _blended(self, shopper: Profile, k: int, exclude_bought: bool, method: str) -> pd.DataFrame:
        deep, scores, contributions = rank(self.state, shopper, self._depth(k), exclude_bought, BLEND_WEIGHTS[method],
                                           self._unavailable())
        rows, scores, touched = self._ruled(deep, scores, k)
        at = {int(row): i for i, row in enumerate(deep)}
        reasons = [explain_blended(self.state, shopper, int(row), contributions[:, at[int(row)]]) for row in rows]
        return self._listing(rows, scores, reasons, method, touched)

    def _depth(self, k: int) -> int:
        """How deep a list to make: deeper when rules may exclude some of it (backfilled from the rest)."""
        return k + SLACK if self.rules is not None and self.rules.current() else k

    def _ruled(self, rows: np.ndarray, scores: np.ndarray, k: int):
        """The merchandising rules applied (`Rules.apply`): rows, scores and the rules touching each."""
        if self.rules is None or not self.rules.current():
            return rows[:k], scores[:k], [[] for _ in rows[:k]]
        return self.rules.apply(rows, k)

    def _unavailable(self) -> np.ndarray | None:
        return None if self.availability is None else self.availability.unavailable()

    def _listing(self, rows: np.ndarray, scores: np.ndarray, reasons: list[str], method: str,
                 touched: list[list[str]] | None = None) -> pd.DataFrame:
        picked = self._listed.iloc[rows]  # rows first: a whole string column to numpy costs ms
        frame = pd.DataFrame(
            {
                "article_id": picked["article_id"].to_numpy(),
                "score": np.round(scores.astype(np.float64), 4),
                "reason": reasons,
                "prod_name": picked["prod_name"].to_numpy(),
                "product_type_name": picked["product_type_name"].to_numpy(),
                "colour_group_name": picked["colour_group_name"].to_numpy(),
            }
        )
        frame["rules"] = touched if touched is not None else [[] for _ in range(len(frame))]
        frame.attrs["method"] = method
        return frame

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


def chosen_method(store: ArtifactStore, catalog: Catalog) -> str | None:
    """The method the build's backtest chose for this data and this code's ranker (None: no current choice)."""
    meta = (store.manifest(CHOICE_ARTIFACT) or {}).get("meta", {})
    current = meta.get("data") == catalog.fingerprint() and meta.get("schema") == SCHEMA
    return meta.get("chosen") if current and meta.get("chosen") in METHODS else None
