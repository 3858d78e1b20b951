"""Facts about a built engine for the app's insights page (and notebooks): the dataset, the content
index, the model, and how much of the catalogue recommendations reach (how well they do per week and
method is the build's backtest: `evaluate.stored_backtest`).

Plain frames and dicts; the page only draws them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .catalog import Catalog

Progress = Callable[[float, str], None]


def dataset_facts(catalog: Catalog) -> dict:
    articles, tx = catalog.articles, catalog.transactions
    with_image = int(articles["has_image"].sum())
    facts = {
        "articles": len(articles),
        "with_image": with_image,
        "without_image": len(articles) - with_image,
        "customers": 0 if catalog.customers is None else len(catalog.customers),
        "customers_with_purchases": 0,
        "transactions": 0,
        "first_day": None,
        "last_day": None,
    }
    if tx is not None and len(tx):
        facts.update(
            customers_with_purchases=int(np.count_nonzero(np.bincount(tx["customer"].to_numpy()))),
            transactions=len(tx),
            first_day=tx["t_dat"].iat[0],  # transactions are sorted by day
            last_day=tx["t_dat"].iat[-1],
        )
    return facts


def weekly_sales(catalog: Catalog) -> pd.DataFrame:
    """week (the Monday it starts), purchases, revenue (sum of the normalised prices)."""
    tx = catalog.transactions
    if tx is None or tx.empty:
        return pd.DataFrame({"week": pd.Series(dtype="datetime64[ns]"), "purchases": [], "revenue": []})
    days = tx["t_dat"].to_numpy().astype("datetime64[D]")
    # 1970-01-01 was a Thursday: shift by 3 days so weeks start on Mondays.
    weeks = ((days.astype(np.int64) + 3) // 7) * 7 - 3
    codes, first = np.unique(weeks, return_inverse=True)
    return pd.DataFrame({
        "week": codes.astype("datetime64[D]").astype("datetime64[ns]"),
        "purchases": np.bincount(first),
        "revenue": np.bincount(first, weights=tx["price"].to_numpy(dtype=np.float64)),
    })  # fmt: skip


def model_facts(embedder) -> dict:
    """Name, source and, for a model trained on this catalogue, its loss per epoch."""
    facts = {"model": embedder.model_name, "source": embedder.pretrained, "fingerprint": embedder.fingerprint,
             "epoch_losses": [], "trained_on_articles": None}  # fmt: skip
    checkpoint = Path(str(embedder.pretrained))
    if checkpoint.is_file():
        import torch

        try:
            saved = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=True)
        except Exception:  # not a train-clip checkpoint: no training record to show
            saved = {}
        trained = saved.get("trained", {}) if isinstance(saved, dict) else {}
        facts["epoch_losses"] = [float(x) for x in trained.get("epoch_losses", [])]
        facts["trained_on_articles"] = trained.get("n_articles")
        facts["source"] = checkpoint.name
    return facts


def recommendation_coverage(collab, customers: int = 300, k: int = 12, seed: int = 0) -> dict:
    """How much of the catalogue the recommendations reach, over a random sample of customers with purchases."""
    catalog = collab.catalog
    tx = catalog.transactions
    codes = np.flatnonzero(np.bincount(tx["customer"].to_numpy(), minlength=len(catalog.customer_ids)))
    sample = np.random.default_rng(seed).choice(codes, size=min(customers, len(codes)), replace=False)
    counts: dict[str, int] = {}
    for code in sample:
        for article_id in collab.recommend(str(catalog.customer_ids[code]), k=k)["article_id"]:
            counts[article_id] = counts.get(article_id, 0) + 1
    shown = sum(counts.values())
    top = sorted(counts.values(), reverse=True)[: max(1, len(catalog.articles) // 100)]
    return {
        "customers": len(sample),
        "k": k,
        "distinct_articles": len(counts),
        "catalogue_share": len(counts) / len(catalog.articles),
        "top_percent_share": sum(top) / shown if shown else 0.0,  # of all places, taken by the top 1% articles
    }
