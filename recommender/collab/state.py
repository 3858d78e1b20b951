"""The trained collaborative state: interactions, ALS factors, the customer HNSW index and article
statistics at one cut, with its persistence (the `collab` artifact). Built once, then only read by the
layers above it (blend → candidates → features → ranker → reasons → the `CollabModel` façade).

    transactions ─► Interactions (counts, recency-decayed counts) ─► Confidence (bm25 / tf-idf) ─► ALS factors
    customer factors (L2-normalised) ─► HNSW index ─► similar customers
"""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Mapping

import hnswlib
import implicit.cpu.als
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..catalog import Catalog
from ..errors import ArtifactError, InputError
from ..interactions import Confidence, Interactions, build_interactions
from ..lookalikes import Looks, load_looks, product_codes
from ..runtime import built_once
from ..store import ArtifactStore
from .factors import build_hnsw, fit_als, nearest, single_threaded_blas
from .history import CustomerHistory
from .params import CollabParams, Progress, no_progress
from .stats import ArticleStats, robust_end

ARTIFACT = "collab"


class CollabState:
    """What every recommendation reads: the catalogue's codes, interactions, ALS, HNSW and article stats."""

    def __init__(
        self,
        catalog: Catalog,
        params: CollabParams,
        interactions: Interactions,
        confidence: Confidence,
        als: implicit.cpu.als.AlternatingLeastSquares,
        index: hnswlib.Index,
        stats: ArticleStats,
        looks: Looks | None = None,
    ):
        self.catalog = catalog
        self.looks = looks  # content vectors and look-alikes; None: the content source and features are empty
        self.params = params
        self.interactions = interactions
        self.confidence = confidence
        self.als = als
        self.index = index
        self.stats = stats
        self.index.set_ef(params.hnsw_ef)
        self.index.set_num_threads(1)  # a block's queries on one thread: the submission's processes are the parallelism
        self.type_codes, self.type_names = pd.factorize(catalog.articles["product_type_name"])
        self.type_codes = self.type_codes.astype(np.int32)
        self.product_codes = product_codes(catalog).astype(np.int32)
        self.n_products = int(self.product_codes.max()) + 1
        self.has_history = np.diff(interactions.counts.indptr) > 0

    @property
    def n_articles(self) -> int:
        return self.interactions.counts.shape[1]

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
        looks: Looks | None = None,
    ) -> "CollabState":
        """Train on the catalogue's transactions (only those before ``until`` when given); ``looks``: the
        articles' content vectors and look-alikes (`load_looks`), which the content source and the taste
        features read.

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
        return cls(catalog, params, inter, confidence, als, index, stats, looks)

    def with_looks(self, looks: Looks | None) -> "CollabState":
        """This state reading these content looks (a state fitted elsewhere, e.g. on Spark)."""
        self.looks = looks
        return self

    @staticmethod
    def training_cut(catalog: Catalog, until=None):
        """``until``, or where a stray late tail of rows starts (None: train on every row)."""
        if until is None and catalog.transactions is not None and len(catalog.transactions):
            end = robust_end(catalog.transactions["t_dat"].to_numpy())
            until = end if end <= catalog.transactions["t_dat"].iat[-1] else None
        return until

    # -- the artifact ----------------------------------------------------------------------------

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
                customer_ids=self.catalog.customer_keys,
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
        """Whether the stored state was built from this catalogue with these parameters."""
        return store.is_current(ARTIFACT, {"data": catalog.fingerprint(), "params": asdict(params)})

    @classmethod
    def load(cls, store: ArtifactStore, catalog: Catalog) -> "CollabState":
        """The stored state; ArtifactError when it is missing or was built from other data."""
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
            arrays["customer_ids"], catalog.customer_keys
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
        return cls(catalog, params, inter, confidence, als, index, stats, load_looks(store, catalog))

    # -- one customer ----------------------------------------------------------------------------

    def code_with_history(self, customer_id: str) -> int:
        """The customer's code; InputError when they bought nothing before the cut."""
        code = self.catalog.customer_code(customer_id)
        if not self.has_history[code]:
            raise InputError(
                f"customer {customer_id[:12]}… has no purchases before {str(self.interactions.now)[:10]}: "
                "pick a few articles instead (recommend_for_items / --items)"
            )
        return code

    def factor(self, code: int) -> np.ndarray | None:
        """The customer's ALS factor (None: no purchases before the cut)."""
        return self.als.user_factors[code] if self.has_history[code] else None

    def nearest(self, factor: np.ndarray, k: int, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k customers nearest to ``factor`` (codes, cosine similarities), without ``exclude``."""
        return nearest(self.index, factor, k, exclude)

    # -- tables built on first use ---------------------------------------------------------------

    @built_once
    def bought(self) -> sp.csr_matrix:
        """customer × article: 1 where the customer bought the article (recency-decayed counts capped at 1)."""
        return self.interactions.recency.minimum(1.0).tocsr()

    @built_once
    def product_articles(self) -> tuple[np.ndarray, np.ndarray]:
        """Article rows grouped by product (order, offsets): a product's colours without scanning the catalogue."""
        order = np.argsort(self.product_codes, kind="stable")
        return order, np.searchsorted(self.product_codes[order], np.arange(self.n_products + 1))

    @built_once
    def purchases(self) -> CustomerHistory:
        """Every customer's purchases in the training window, indexed by customer."""
        train = self.catalog.transactions.iloc[: self.interactions.n_transactions]
        return CustomerHistory(train, len(self.catalog.customer_ids))

