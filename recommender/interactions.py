"""Customer × article interaction matrices and the confidence weighting ALS is trained on.

Rows are the catalogue's customer codes and columns its article rows, so the id ↔ row/column
mappings are the catalogue's own (`Catalog.customer_ids`, `Catalog.articles.article_id`); the
collaborative artifact stores copies of both and refuses a catalogue whose ids differ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight, tfidf_weight

from .errors import DataError

WEIGHTINGS = ("bm25", "tfidf", "none")
BM25_K1, BM25_B = 100.0, 0.8  # implicit's defaults (its lastfm example)


@dataclass
class Interactions:
    counts: sp.csr_matrix  # purchases per (customer, article)
    recency: sp.csr_matrix  # the same purchases, each worth 0.5 ** (age / half-life); == counts without decay
    now: np.datetime64  # the reference day: first day after the training window
    n_transactions: int


def build_interactions(
    transactions: pd.DataFrame | None,
    n_customers: int,
    n_articles: int,
    *,
    until: np.datetime64 | None = None,
    half_life_days: float | None = None,
) -> Interactions:
    """Sum the purchases before ``until`` (all of them when None) into CSR matrices."""
    if transactions is None or transactions.empty:
        raise DataError("the catalogue has no transactions: collaborative filtering needs transactions_train.csv rows")
    days = transactions["t_dat"].to_numpy()
    if until is not None:
        until = np.datetime64(until, "ns")
        end = int(np.searchsorted(days, until, side="left"))  # transactions are sorted by t_dat
        if end == 0:
            raise DataError(f"no transactions before {str(until)[:10]}: nothing to train on")
        transactions, days = transactions.iloc[:end], days[:end]
        now = until
    else:
        now = days[-1] + np.timedelta64(1, "D")
    rows = transactions["customer"].to_numpy()
    cols = transactions["article"].to_numpy()
    shape = (n_customers, n_articles)
    counts = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    if half_life_days:
        age_days = (now - days) / np.timedelta64(1, "D")
        decay = np.exp2(-age_days / half_life_days).astype(np.float32)
        recency = sp.csr_matrix((decay, (rows, cols)), shape=shape)
    else:
        recency = counts
    return Interactions(counts, recency, now, len(rows))


@dataclass
class Confidence:
    """The weighting implicit recommends for ALS, applied as in its examples: to the item × user matrix.

    Fitting keeps the per-article statistics, so one new shopper's row (a cold-start fold-in) is
    weighted exactly as the training rows were.
    """

    weighting: str
    n_articles: int
    article_length_norm: np.ndarray | None = None  # bm25 only: (1 - B) + B * article total / mean total

    @classmethod
    def fit(cls, user_items: sp.csr_matrix, weighting: str) -> tuple["Confidence", sp.csr_matrix]:
        """The fitted weighting and the weighted customer × article matrix."""
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")
        n_articles = user_items.shape[1]
        if weighting == "none":
            return cls(weighting, n_articles), user_items.astype(np.float32)
        item_users = user_items.T
        if weighting == "bm25":
            weighted = bm25_weight(item_users, K1=BM25_K1, B=BM25_B)
            totals = np.ravel(item_users.sum(axis=1))
            length_norm = ((1.0 - BM25_B) + BM25_B * totals / totals.mean()).astype(np.float32)
            confidence = cls(weighting, n_articles, length_norm)
        else:
            weighted = tfidf_weight(item_users)
            confidence = cls(weighting, n_articles)
        return confidence, weighted.T.tocsr().astype(np.float32)

    def row(self, articles: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
        """A 1 × articles confidence row for one shopper (implicit's formulas for one user column)."""
        articles = np.asarray(articles, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if self.weighting != "none":
            idf = np.log(self.n_articles) - np.log1p(len(articles))
            if self.weighting == "bm25":
                norm = self.article_length_norm[articles]
                values = values * (BM25_K1 + 1.0) / (BM25_K1 * norm + values) * idf
            else:
                values = np.sqrt(values) * idf
        return sp.csr_matrix(
            (values.astype(np.float32), (np.zeros(len(articles), dtype=np.int64), articles)),
            shape=(1, self.n_articles),
        )
