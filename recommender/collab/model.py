"""The collaborative model: ALS + HNSW over purchases, the hand-weighted blend, and (when trained) the ranker.

    transactions ─► Interactions (counts, recency-decayed counts) ─► Confidence (bm25 / tf-idf) ─► ALS factors
    customer factors (L2-normalised) ─► HNSW index ─► similar customers ─► "customers like you bought"

The blend scores every article with five signals, each scaled to [0, 1] over the catalogue:

    neighbours  purchases of the customer's nearest customers, weighted by similarity and recency
    als         customer factors · article factors
    trend       recent sales of the article (exponential decay)
    repurchase  the customer's own purchases of the article, and at `variant_factor` of other colours of
                the products they bought (the article itself only when bought items are not excluded)
    type        how much of the customer's history is the article's product type, times its trend

When the build trained a ranker (recommender.collab.ranker), a customer with history is ranked by it over
~200 candidates from several sources instead; the blend remains for shoppers known only by picked
articles and for data too thin to train on. Articles that stopped selling are multiplied down, and they
and articles without an image fill at most a quarter of a list.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Mapping, Sequence

import hnswlib
import implicit.cpu.als
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..catalog import Catalog
from ..errors import ArtifactError, InputError
from ..interactions import Confidence, Interactions, build_interactions
from ..store import ArtifactStore
from .factors import build_hnsw, fit_als, nearest, single_threaded_blas
from .candidates import BLOCK, Window, candidates_block, top_rows, top_scores, weighted_rows
from .features import features_block
from .history import CustomerHistory
from .ranker import Ranker
from .reasons import explain
from .params import SIGNALS, TREND_WINDOW_DAYS, CollabParams, Progress, no_progress
from .stats import ArticleStats, robust_end

ARTIFACT = "collab"
LISTED_COLUMNS = ["article_id", "prod_name", "product_type_name", "colour_group_name"]


@dataclass
class Profile:
    """What the engine knows about one shopper: purchases, factor, nearest customers."""

    articles: np.ndarray  # article rows bought (or picked)
    counts: np.ndarray
    recency: np.ndarray
    factor: np.ndarray | None  # ALS factor; None without history
    neighbour_codes: np.ndarray
    neighbour_sims: np.ndarray

    @classmethod
    def empty(cls) -> "Profile":
        """A shopper with no purchases: only article-level signals apply."""
        nothing = np.zeros(0, np.float32)
        return cls(np.zeros(0, np.int32), nothing, nothing, None, np.zeros(0, np.int64), nothing)


# --- the model -----------------------------------------------------------------------------------


def used_signals(weights: Mapping[str, float]) -> list[str]:
    """The signals a blend with these weights needs, in SIGNALS order."""
    return [name for name in SIGNALS if weights.get(name, 0.0)]


class CollabModel:
    def __init__(
        self,
        catalog: Catalog,
        params: CollabParams,
        interactions: Interactions,
        confidence: Confidence,
        als: implicit.cpu.als.AlternatingLeastSquares,
        index: hnswlib.Index,
        stats: ArticleStats,
    ):
        self.catalog = catalog
        self.params = params
        self.interactions = interactions
        self.confidence = confidence
        self.als = als
        self.index = index
        self.stats = stats
        self.index.set_ef(params.hnsw_ef)
        self.index.set_num_threads(1)  # a block's queries on one thread: the submission's processes are the parallelism
        self.ranker = None  # a trained recommender.collab.ranker.Ranker, attached by load/fit_ranker
        self.type_codes, self.type_names = pd.factorize(catalog.articles["product_type_name"])
        self.type_codes = self.type_codes.astype(np.int32)
        # Colour variants share a product_code; without the column every article is its own product.
        products = catalog.articles.get("product_code", catalog.articles["article_id"])
        self.product_codes = pd.factorize(products)[0].astype(np.int32)
        self.n_products = int(self.product_codes.max()) + 1
        self._listed = catalog.articles[LISTED_COLUMNS]
        self._has_history = np.diff(interactions.counts.indptr) > 0

    # -- building --------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        catalog: Catalog,
        params: CollabParams = CollabParams(),
        *,
        until=None,
        progress: Progress | None = None,
        factorize=fit_als,
    ) -> "CollabModel":
        """Train on the catalogue's transactions (only those before ``until`` when given).

        ``factorize(user_items, params, report)`` returns the fitted ALS model: implicit here, or factors
        computed elsewhere (the Spark build) wrapped in one.
        """
        report = progress or no_progress
        report(0.0, "building the customer × article matrix")
        until = cls.training_cut(catalog, until)
        inter = build_interactions(
            catalog.transactions,
            len(catalog.customer_ids),
            len(catalog.articles),
            until=until,
            half_life_days=params.recency_half_life_days,
        )
        train = catalog.transactions.iloc[: inter.n_transactions]
        stats = ArticleStats.compute(train, inter.now, catalog.articles["has_image"].to_numpy(), params)
        confidence, user_items = Confidence.fit(inter.recency, params.weighting)
        report(0.1, f"ALS: {params.factors} factors, {params.iterations} iterations")
        als = factorize(user_items, params, lambda f, m: report(0.1 + 0.7 * f, m))
        report(0.8, "HNSW index of customers")
        with_history = np.flatnonzero(np.diff(inter.counts.indptr) > 0)
        index = build_hnsw(als.user_factors, with_history, params, lambda f, m: report(0.8 + 0.2 * f, m))
        report(1.0, "collaborative model ready")
        return cls(catalog, params, inter, confidence, als, index, stats)

    @staticmethod
    def training_cut(catalog: Catalog, until=None):
        """``until``, or where a stray late tail of rows starts (None: train on every row)."""
        if until is None and catalog.transactions is not None and len(catalog.transactions):
            end = robust_end(catalog.transactions["t_dat"].to_numpy())
            until = end if end <= catalog.transactions["t_dat"].iat[-1] else None
        return until

    def save(self, store: ArtifactStore, meta: Mapping | None = None) -> None:
        """One artifact: matrices, id mappings, ALS factors, HNSW index (consistent by construction)."""
        inter = self.interactions
        full_meta = {
            **(meta or {}),
            "data": self.catalog.fingerprint(),
            "params": asdict(self.params),
            "now": str(inter.now)[:10],
            "transactions": inter.n_transactions,
            "customers": inter.counts.shape[0],
            "articles": inter.counts.shape[1],
            "indexed_customers": self.index.get_current_count(),
        }
        with store.write(ARTIFACT, full_meta) as tmp:
            sp.save_npz(tmp / "counts.npz", inter.counts, compressed=False)
            if inter.recency is not inter.counts:
                sp.save_npz(tmp / "recency.npz", inter.recency, compressed=False)
            self.als.save(str(tmp / "als.npz"))
            self.index.save_index(str(tmp / "customers.hnsw"))
            np.savez(
                tmp / "arrays.npz",
                customer_ids=np.asarray(self.catalog.customer_ids, dtype="S64"),
                article_ids=self.catalog.articles["article_id"].to_numpy().astype("S10"),
                article_length_norm=(
                    self.confidence.article_length_norm
                    if self.confidence.article_length_norm is not None
                    else np.zeros(0, np.float32)
                ),
                **self.stats.arrays(),
            )

    @staticmethod
    def is_current(store: ArtifactStore, catalog: Catalog, params: CollabParams = CollabParams()) -> bool:
        """Whether the stored model was built from this catalogue with these parameters."""
        return store.is_current(ARTIFACT, {"data": catalog.fingerprint(), "params": asdict(params)})

    @classmethod
    def load(cls, store: ArtifactStore, catalog: Catalog) -> "CollabModel":
        """The stored model; ArtifactError when it is missing or was built from other data."""
        art = store.load(ARTIFACT, expect={"data": catalog.fingerprint()})
        params = CollabParams.from_dict(art.meta["params"])
        try:
            with np.load(art.path / "arrays.npz") as arrays:
                arrays = dict(arrays)
            counts = sp.load_npz(art.path / "counts.npz").tocsr()
            recency_path = art.path / "recency.npz"
            recency = sp.load_npz(recency_path).tocsr() if recency_path.exists() else counts
            with single_threaded_blas():
                als = implicit.cpu.als.AlternatingLeastSquares.load(str(art.path / "als.npz"))
            index = hnswlib.Index(space="ip", dim=als.factors)
            index.load_index(str(art.path / "customers.hnsw"))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ArtifactError(
                f"collaborative artifact in {art.path} is unreadable ({exc}); rebuild with `{store.rebuild_hint}`"
            ) from exc
        same_ids = np.array_equal(
            arrays["customer_ids"], np.asarray(catalog.customer_ids, dtype="S64")
        ) and np.array_equal(arrays["article_ids"], catalog.articles["article_id"].to_numpy().astype("S10"))
        if not same_ids:
            raise ArtifactError(
                f"collaborative artifact in {art.path} maps other customer or article ids than {catalog.root}; "
                f"rebuild with `{store.rebuild_hint}`"
            )
        inter = Interactions(counts, recency, np.datetime64(art.meta["now"], "ns"), art.meta["transactions"])
        length_norm = arrays["article_length_norm"]
        confidence = Confidence(params.weighting, counts.shape[1], length_norm if length_norm.size else None)
        stats = ArticleStats(**{f.name: arrays[f.name] for f in fields(ArticleStats)})
        model = cls(catalog, params, inter, confidence, als, index, stats)
        model.ranker = Ranker.load(store, catalog)
        return model

    # -- profiles --------------------------------------------------------------------------------

    def _code_with_history(self, customer_id: str) -> int:
        code = self.catalog.customer_code(customer_id)
        if not self._has_history[code]:
            raise InputError(
                f"customer {customer_id[:12]}… has no purchases before {str(self.interactions.now)[:10]}: "
                "pick a few articles instead (recommend_for_items / --items)"
            )
        return code

    def profile(self, code: int, neighbours: int | None = None) -> Profile:
        """A known customer (by code): purchases in the training window, ALS factor, nearest customers."""
        counts, recency = self.interactions.counts, self.interactions.recency
        start, end = counts.indptr[code], counts.indptr[code + 1]
        articles = counts.indices[start:end]
        if start == end:
            return Profile.empty()
        factor = self.als.user_factors[code]
        k = self.params.neighbours if neighbours is None else neighbours
        codes, sims = self._nearest(factor, k, exclude=code)
        return Profile(articles, counts.data[start:end], recency.data[start:end], factor, codes, sims)

    def _fold_in(self, article_ids: Sequence[str], neighbours: int | None = None) -> Profile:
        rows = self.catalog.article_rows(article_ids)
        if not len(rows):
            raise InputError("pick at least one article to recommend from")
        # An article picked twice counts as two purchases; picks are "now", so recency does not decay them.
        articles, counts = np.unique(np.asarray(rows, dtype=np.int32), return_counts=True)
        counts = counts.astype(np.float32)
        with single_threaded_blas():
            factor = self.als.recalculate_user(0, self.confidence.row(articles, counts))
        codes, sims = self._nearest(factor, self.params.neighbours if neighbours is None else neighbours)
        return Profile(articles, counts, counts, factor, codes, sims)

    def _nearest(self, factor: np.ndarray, k: int, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return nearest(self.index, factor, k, exclude)

    # -- similar customers ------------------------------------------------------------------------

    def similar_customers(self, customer_id: str, k: int = 10) -> pd.DataFrame:
        """The k customers whose taste (ALS factors) is closest, with what they share."""
        code = self._code_with_history(customer_id)
        profile = self.profile(code, neighbours=k)
        return self._neighbour_frame(profile, profile.neighbour_codes, profile.neighbour_sims)

    def similar_to_items(self, article_ids: Sequence[str], k: int = 10) -> pd.DataFrame:
        """Similar customers for a shopper known only by a few picked articles (fold-in)."""
        profile = self._fold_in(article_ids, neighbours=k)
        return self._neighbour_frame(profile, profile.neighbour_codes, profile.neighbour_sims)

    def _neighbour_frame(self, profile: Profile, codes: np.ndarray, sims: np.ndarray) -> pd.DataFrame:
        counts = self.interactions.counts
        own_types = np.bincount(self.type_codes[profile.articles], minlength=len(self.type_names))
        shared_articles, shared_types = [], []
        for code in codes:
            theirs = counts.indices[counts.indptr[code] : counts.indptr[code + 1]]
            shared_articles.append(len(np.intersect1d(profile.articles, theirs, assume_unique=True)))
            their_types = np.bincount(self.type_codes[theirs], minlength=len(own_types))
            overlap = np.minimum(own_types, their_types)
            top = np.argsort(-overlap, kind="stable")[:3]
            shared_types.append([self.type_names[t] for t in top if overlap[t] > 0])
        return pd.DataFrame(
            {
                "customer_id": self.catalog.customer_ids[codes].astype(str) if len(codes) else [],
                "similarity": np.round(sims.astype(np.float64), 4),
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
        if self.ranker is None:
            return self._frame(self.profile(code), k, exclude_bought)
        _check_k(k)
        rows, scores, cands, X = self.ranked(code, k, exclude_bought)
        positions = np.searchsorted(cands.articles, rows)
        contributions = self.ranker.contributions(X[positions])
        reasons = [explain(self.window, code, cands, int(p), contributions[j]) for j, p in enumerate(positions)]
        return self._listing(rows, scores, reasons)

    @cached_property
    def window(self) -> Window:
        """Candidate sources and features at this model's "now" (built on first use)."""
        return Window(self)

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
        w = self.window
        block = w.block(codes)
        exclude = [np.unique(mine.articles) for mine in block.mine] if exclude_bought else None
        block_cands = candidates_block(w, block, self.params.candidates_per_source, exclude)
        block_X = features_block(w, block.codes, block_cands)
        rows = [X for X in block_X if len(X)]
        scores = self.ranker.score(np.vstack(rows)) if rows else np.zeros(0)
        out, at = [], 0
        for cands, X in zip(block_cands, block_X):
            mine = scores[at : at + len(X)]
            at += len(X)
            ranked = self._select_from(cands.articles, mine - mine.min(initial=0.0) + 1.0, k)  # all above 0
            out.append((ranked, mine[np.searchsorted(cands.articles, ranked)], cands, X))
        return out

    def recommend_for_items(self, article_ids: Sequence[str], k: int = 12) -> pd.DataFrame:
        """Cold start: recommendations for a shopper who picked a few articles (never the picks themselves).

        The picks are folded into the trained model with implicit's `recalculate_user`: no retraining.
        """
        return self._frame(self._fold_in(article_ids), k, exclude_bought=True)

    def signals(
        self, profile: Profile, names: Sequence[str] = SIGNALS, trend: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Each named signal as a dense float32 vector over the catalogue's articles, scaled to [0, 1]
        (``trend``: the trend at another cut than the model's, for the ranker's training windows)."""
        n = self.interactions.counts.shape[1]
        trend = self.stats.trend if trend is None else trend
        out = {name: trend if name == "trend" else np.zeros(n, np.float32) for name in names}
        if "neighbours" in names and len(profile.neighbour_codes):
            weights = np.clip(profile.neighbour_sims, 0.0, None).astype(np.float32)
            bought = self.interactions.recency[profile.neighbour_codes].minimum(1.0)
            out["neighbours"] = (bought.T @ weights) / max(float(weights.sum()), 1e-12)
        if "als" in names and profile.factor is not None:
            with single_threaded_blas():
                als = self.als.item_factors @ profile.factor
            out["als"] = np.clip(als / max(float(als.max()), 1e-12), 0.0, None)
        if "repurchase" in names and len(profile.articles):
            own = (profile.recency / profile.recency.max()).astype(np.float32)
            products = np.bincount(self.product_codes[profile.articles], weights=own, minlength=self.n_products)
            repurchase = np.minimum(self.params.variant_factor * products.astype(np.float32)[self.product_codes], 1.0)
            repurchase[profile.articles] = own
            out["repurchase"] = repurchase
        if "type" in names and len(profile.articles):
            shares = np.bincount(
                self.type_codes[profile.articles], weights=profile.counts, minlength=len(self.type_names)
            )
            type_share = (shares / shares.sum()).astype(np.float32)[self.type_codes] * trend
            out["type"] = type_share / max(float(type_share.max()), 1e-12)
        return out

    def rank(
        self, profile: Profile, k: int, exclude_bought: bool, weights: Mapping[str, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k article rows, their scores, and each signal's contribution to them (signals × k)."""
        weights = self.params.weights() if weights is None else weights
        return self.blend(profile, self.signals(profile, used_signals(weights)), k, exclude_bought, weights)

    def blend(
        self, profile: Profile, signals: Mapping[str, np.ndarray], k: int, exclude_bought: bool,
        weights: Mapping[str, float],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`rank` from signals already computed (evaluation blends one customer's signals many ways)."""
        used = used_signals(weights)
        total = np.zeros(self.interactions.counts.shape[1], np.float32)
        for name in used:
            total += np.float32(weights[name]) * signals[name]
        total *= self.stats.availability
        if exclude_bought:
            total[profile.articles] = 0.0
        top = self._select(total, k)
        contributions = np.zeros((len(SIGNALS), len(top)), dtype=np.float32)
        for name in used:
            contributions[SIGNALS.index(name)] = weights[name] * signals[name][top] * self.stats.availability[top]
        return top, total[top], contributions

    def blend_block(self, profiles: Sequence[Profile], als: np.ndarray, k: int, trend: np.ndarray) -> list:
        """`blend`'s (rows, scores) with the default weights, bought articles included, for several customers
        at once: each signal added to a [customers × articles] matrix in `signals`' order and arithmetic
        (``als``: the customers' ALS scores, `factors.als_scores`)."""
        weights = self.params.weights()
        used = used_signals(weights)
        if "als" in used:  # the first term: 0 + it is exact, so it starts the sum (in place from here on)
            total = als / np.maximum(als.max(axis=1, keepdims=True), np.float32(1e-12))
            np.maximum(total, 0.0, out=total)
            total *= np.float32(weights["als"])
        else:
            total = np.zeros((len(profiles), len(trend)), np.float32)
        for name in used:
            weight = np.float32(weights[name])
            if name == "trend":
                total += weight * trend
            elif name == "type":
                shares = np.take(np.stack([self._type_shares(p) for p in profiles]), self.type_codes, axis=1)
                shares *= trend
                shares /= np.maximum(shares.max(axis=1, keepdims=True), np.float32(1e-12))
                shares *= weight
                total += shares
            elif name == "neighbours":  # first: it commutes with the als term already in the sum
                for i, (rows, values) in enumerate(self._neighbour_votes(profiles)):
                    total[i, rows] += weight * values
            elif name == "repurchase":
                for i, profile in enumerate(profiles):
                    rows, values = self._repurchase_votes(profile)
                    total[i, rows] += weight * values
        total *= self.stats.availability
        return [(rows.astype(np.int64), total[i, rows]) for i, rows in enumerate(self._select_rows(total, k))]

    def _type_shares(self, profile: Profile) -> np.ndarray:
        if not len(profile.articles):
            return np.zeros(len(self.type_names), np.float32)
        shares = np.bincount(self.type_codes[profile.articles], weights=profile.counts, minlength=len(self.type_names))
        return (shares / shares.sum()).astype(np.float32)

    def _neighbour_votes(self, profiles: Sequence[Profile]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`signals`' neighbours signal of each profile where it is not 0 (article rows, values)."""
        weights = [np.clip(p.neighbour_sims, 0.0, None).astype(np.float32) for p in profiles]
        votes = weighted_rows(self.bought, [(p.neighbour_codes, w) for p, w in zip(profiles, weights)])
        return [(rows, values / max(float(w.sum()), 1e-12)) for (rows, values), w in zip(votes, weights)]

    @cached_property
    def bought(self) -> sp.csr_matrix:
        """customer × article: 1 where the customer bought the article (recency-decayed counts capped at 1)."""
        return self.interactions.recency.minimum(1.0).tocsr()

    def _repurchase_votes(self, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
        """`signals`' repurchase signal where it is not 0: the articles of the products the customer bought."""
        if not len(profile.articles):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        own = (profile.recency / profile.recency.max()).astype(np.float32)
        products, inverse = np.unique(self.product_codes[profile.articles], return_inverse=True)
        weights = np.bincount(inverse, weights=own).astype(np.float32)
        order, offsets = self.product_articles
        rows = np.sort(np.concatenate([order[offsets[p] : offsets[p + 1]] for p in products]))
        values = np.minimum(self.params.variant_factor * weights[np.searchsorted(products, self.product_codes[rows])], 1.0)
        values[np.searchsorted(rows, profile.articles)] = own
        return rows, values

    @cached_property
    def product_articles(self) -> tuple[np.ndarray, np.ndarray]:
        """Article rows grouped by product (order, offsets): a product's colours without scanning the catalogue."""
        order = np.argsort(self.product_codes, kind="stable")
        return order, np.searchsorted(self.product_codes[order], np.arange(self.n_products + 1))

    def _select_rows(self, total: np.ndarray, k: int) -> list[np.ndarray]:
        """`_select` of each row of a [customers × articles] matrix (one partition for the whole block)."""
        limited, cap = self.stats.limited, self._cap(k)
        tops = [rows for rows, _ in top_rows(total, k)]
        over = [i for i, rows in enumerate(tops) if limited[rows].sum() > cap]
        if over and not limited.all():  # (all limited: the k best are the k best limited ones)
            available, fillers = np.flatnonzero(~limited), np.flatnonzero(limited)
            best_available, best_limited = top_rows(total[over][:, available], k), top_rows(total[over][:, fillers], k)
            for i, (found, _), (filling, _) in zip(over, best_available, best_limited):
                tops[i] = _cap_limited(available[found], fillers[filling], total[i], k, cap)
        return tops

    def _select(self, total: np.ndarray, k: int) -> np.ndarray:
        """`_select_from` over the whole catalogue."""
        return self._select_from(np.arange(len(total)), total, k)

    def _select_from(self, rows: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        """The k best-scoring of the articles ``rows`` (sorted) with a score above 0, of which at most
        max_limited_share have no image or no longer sell (more only to fill k). Equal scores go to the lower
        article row, so a list never depends on how a selection algorithm orders ties."""
        best, _ = top_scores(scores, k)
        limited, cap = self.stats.limited[rows], self._cap(k)
        if limited[best].sum() > cap:
            available, fillers = np.flatnonzero(~limited), np.flatnonzero(limited)
            best = _cap_limited(available[top_scores(scores[available], k)[0]],
                                fillers[top_scores(scores[fillers], k)[0]], scores, k, cap)
        return rows[best]

    def _cap(self, k: int) -> int:
        return int(round(k * self.params.max_limited_share))

    def _frame(self, profile: Profile, k: int, exclude_bought: bool) -> pd.DataFrame:
        _check_k(k)
        rows, scores, contributions = self.rank(profile, k, exclude_bought)
        reasons = [self._reason(profile, row, contributions[:, i]) for i, row in enumerate(rows)]
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

    def _reason(self, profile: Profile, row: int, contribution: np.ndarray) -> str:
        """The signals that carry the score (the top one, and the next when it is at least half as strong)."""
        order = np.argsort(-contribution, kind="stable")
        parts = [self._explain(SIGNALS[order[0]], profile, row)]
        if contribution[order[1]] >= 0.5 * contribution[order[0]] > 0:
            parts.append(self._explain(SIGNALS[order[1]], profile, row))
        if not len(profile.articles):
            parts.append("no purchase history yet")
        return "; ".join(parts)

    def _explain(self, signal: str, profile: Profile, row: int) -> str:
        if signal == "neighbours":
            recency = self.interactions.recency
            bought = sum(
                row in recency.indices[recency.indptr[c] : recency.indptr[c + 1]] for c in profile.neighbour_codes
            )
            return f"customers like you bought it ({bought} of your {len(profile.neighbour_codes)} nearest)"
        if signal == "als":
            return "matches the taste of your purchases (ALS)"
        if signal == "repurchase":
            mine = np.flatnonzero(profile.articles == row)
            if not len(mine):
                name = self.catalog.articles["prod_name"].iat[row]
                return f"another colour of the {name} you bought"
            count = int(profile.counts[mine[0]])
            return f"you bought it before ({count}×)" if count > 1 else "you bought it before"
        if signal == "type":
            type_code = self.type_codes[row]
            mine = int(profile.counts[self.type_codes[profile.articles] == type_code].sum())
            return f"you buy {self.type_names[type_code]} often ({mine} of {int(profile.counts.sum())} purchases)"
        week = int(self.stats.week_sales[row])
        return f"trending this week ({week} sold in the last {TREND_WINDOW_DAYS} days)" if week else "popular lately"

    # -- for the UI ------------------------------------------------------------------------------

    def history(self, customer_id: str) -> pd.DataFrame:
        """The customer's purchases in the training window, newest first, with article metadata."""
        code = self.catalog.customer_code(customer_id)
        mine = self.catalog.transactions.iloc[self.purchases.transaction_rows(code)[::-1]]
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

    @cached_property
    def purchases(self) -> CustomerHistory:
        """Every customer's purchases in the training window, indexed by customer (built on first use)."""
        train = self.catalog.transactions.iloc[: self.interactions.n_transactions]
        return CustomerHistory(train, len(self.catalog.customer_ids))

    def example_customers(self, n: int = 5) -> list[str]:
        """Customers with the most distinct articles bought (rich histories for a demo picker)."""
        distinct = np.diff(self.interactions.counts.indptr)
        codes = np.argsort(-distinct, kind="stable")[:n]
        return [str(self.catalog.customer_ids[c]) for c in codes if distinct[c] > 0]


def _check_k(k: int) -> None:
    if k < 1:
        raise InputError(f"k must be at least 1, not {k}")


def _cap_limited(available: np.ndarray, fillers: np.ndarray, total: np.ndarray, k: int, cap: int) -> np.ndarray:
    """The best ``available`` articles with at most ``cap`` limited ones (``fillers``), more only to fill k
    (positions into ``total``; equal scores: the lower position first)."""
    chosen = np.concatenate([available, fillers[:cap]])
    chosen = chosen[np.lexsort((chosen, -total[chosen]))][:k]
    if len(chosen) < k:  # too few available articles: fill with the limited ones after all
        chosen = np.concatenate([chosen, fillers[cap : cap + k - len(chosen)]])
        chosen = chosen[np.lexsort((chosen, -total[chosen]))]
    return chosen
