"""Offline evaluation as in the H&M competition: a time split, 12 predictions per customer, MAP@12.

Train on everything before the last ``test_days`` days (or on all transactions, testing on a separate
file), predict 12 articles for every customer who bought in the test window, and score the blended
recommender, its ALS and customers-like-you signals on their own, and two popularity baselines.
Bought items are not excluded here: the competition counts repurchases as hits.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .catalog import Catalog, read_transactions
from .collab import CollabModel, CollabParams, Profile, Progress, used_signals
from .errors import DataError

# Each model row ranks with these signal weights (None: the configured blend).
MODEL_ROWS = {"blended": None, "als": {"als": 1.0}, "customers-like-you": {"neighbours": 1.0}}


def average_precision_at_k(actual, predicted, k: int = 12) -> float:
    """The competition's AP@k: mean of precision@i over the ranks i of hits, divided by min(|actual|, k)."""
    actual = set(actual)
    if not actual:
        return 0.0
    hits, score, seen = 0, 0.0, set()
    for rank, item in enumerate(list(predicted)[:k], start=1):
        if item in actual and item not in seen:
            hits += 1
            score += hits / rank
        seen.add(item)
    return score / min(len(actual), k)


def map_at_k(actual: Sequence, predicted: Sequence[Sequence], k: int = 12) -> float:
    """Mean AP@k over customers (the H&M competition metric)."""
    if len(actual) != len(predicted):
        raise ValueError(f"{len(actual)} actual lists but {len(predicted)} predicted lists")
    if not len(actual):
        return 0.0
    return float(np.mean([average_precision_at_k(a, p, k) for a, p in zip(actual, predicted)]))


def recall_at_k(actual: Sequence, predicted: Sequence[Sequence], k: int = 12) -> float:
    """Mean over customers of the share of their (distinct) test articles found in the top k."""
    scores = [len(set(a) & set(list(p)[:k])) / len(set(a)) for a, p in zip(actual, predicted) if len(set(a))]
    return float(np.mean(scores)) if scores else 0.0


def coverage(predicted: Sequence[Sequence], n_items: int, k: int = 12) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    distinct = set()
    for p in predicted:
        distinct.update(list(p)[:k])
    return len(distinct) / n_items if n_items else 0.0


def split(catalog: Catalog, test_days: int = 7, test_transactions: str | Path | None = None):
    """(train-until date or None for all, test transactions as a frame with catalogue codes)."""
    tx = catalog.transactions
    if test_transactions is not None:
        path = Path(test_transactions)
        if not path.is_file():
            raise DataError(f"test transactions file {path} does not exist")
        test, test_ids = read_transactions(path, catalog.articles)
        if test.empty:
            raise DataError(f"{test_transactions} holds no transactions: nothing to evaluate")
        # The file has its own customer codes; map them onto the catalogue's (-1: unknown customer).
        codes = pd.Index(catalog.customer_ids).get_indexer(test_ids)
        test = test.assign(customer=codes[test["customer"].to_numpy()])
        return None, test
    if tx is None or tx.empty:
        raise DataError(f"{catalog.root} has no transactions to evaluate on")
    until = tx["t_dat"].iat[-1] - pd.Timedelta(days=test_days - 1)
    test = tx[tx["t_dat"] >= until]
    if len(test) == len(tx):
        raise DataError(f"all transactions in {catalog.root} fall in the last {test_days} days: nothing to train on")
    return until, test


def evaluate(
    catalog: Catalog,
    params: CollabParams = CollabParams(),
    *,
    test_days: int = 7,
    test_transactions: str | Path | None = None,
    k: int = 12,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Rows: blended, als, customers-like-you, popular all-time, popular last week;
    columns MAP@k, recall@k, coverage, customers."""
    report = progress or (lambda fraction, message: None)
    until, test = split(catalog, test_days, test_transactions)
    model = CollabModel.fit(catalog, params, until=until, progress=lambda f, m: report(0.5 * f, m))
    table = score(model, test, MODEL_ROWS, k, progress=lambda f, m: report(0.5 + 0.5 * f, m))
    customers, until = int(table["customers"].iat[0]), str(model.interactions.now)[:10]
    report(1.0, f"evaluated on {customers:,} customers, trained on purchases before {until}")
    return table


def score(
    model: CollabModel,
    test: pd.DataFrame,
    rows: Mapping[str, Mapping[str, float] | None],
    k: int = 12,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Score ``model`` ranked with each of ``rows`` (name → signal weights) and the popularity baselines."""
    report = progress or (lambda fraction, message: None)
    truth = test.groupby("customer", sort=True)["article"].agg(lambda a: set(a.tolist()))
    actual = truth.tolist()
    predictions = {name: [] for name in rows}
    blends = {name: model.params.weights() if weights is None else weights for name, weights in rows.items()}
    needed = sorted({signal for weights in blends.values() for signal in used_signals(weights)})
    for i, code in enumerate(truth.index):
        if i % 500 == 0:
            report(i / len(truth), f"predicting for {len(truth):,} customers")
        profile = model.profile(int(code)) if code >= 0 else Profile.empty()
        signals = model.signals(profile, needed)  # once per customer, however many blends are scored
        for name, weights in blends.items():
            ranked, _, _ = model.blend(profile, signals, k, exclude_bought=False, weights=weights)
            predictions[name].append(ranked.tolist())
    for name, sales in (("popular all-time", model.stats.sales), ("popular last week", model.stats.week_sales)):
        top = np.argsort(-sales, kind="stable")[:k].tolist()
        predictions[name] = [top] * len(actual)

    n_articles = model.interactions.counts.shape[1]
    table = pd.DataFrame(
        {
            name: {
                f"MAP@{k}": map_at_k(actual, predicted, k),
                f"recall@{k}": recall_at_k(actual, predicted, k),
                "coverage": coverage(predicted, n_articles, k),
                "customers": len(actual),
            }
            for name, predicted in predictions.items()
        }
    ).T
    table["customers"] = table["customers"].astype(int)
    return table.rename_axis("method").reset_index()
