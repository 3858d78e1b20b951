"""Features of each (customer, candidate) pair for the ranker; one row per candidate, columns FEATURES."""
from __future__ import annotations

import numpy as np

from .candidates import SOURCES, Candidates, Window
from .factors import single_threaded_blas

CUSTOMER_FEATURES = ["purchases", "days_since_last_purchase", "online_share", "age_bucket"]
ARTICLE_FEATURES = ["article_age", "sales_1d", "sales_7d", "sales_30d", "article_online_share"]
PAIR_FEATURES = [
    "sources", "als_score", "neighbour_votes", "days_since_bought_article", "days_since_bought_product",
    "times_bought", "price_ratio", "type_share", "colour_share", "index_group_share",
]  # fmt: skip
FEATURES = (
    [f"rank_{s}" for s in SOURCES] + [f"score_{s}" for s in SOURCES]
    + PAIR_FEATURES + CUSTOMER_FEATURES + ARTICLE_FEATURES
)


def _share(codes_bought: np.ndarray, codes_candidates: np.ndarray, minlength: int) -> np.ndarray:
    """Share of the customer's purchases with each candidate's code (type, colour, index group)."""
    if not len(codes_bought):
        return np.zeros(len(codes_candidates), np.float32)
    counts = np.bincount(codes_bought, minlength=minlength)
    return (counts[codes_candidates] / len(codes_bought)).astype(np.float32)


def _days_since(bought_keys: np.ndarray, ages: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Days since the most recent purchase of each key (NaN: never bought)."""
    out = np.full(len(keys), np.nan, np.float32)
    if len(bought_keys) and len(keys):
        order = np.lexsort((ages, bought_keys))  # by key, the most recent purchase first
        unique, first = np.unique(bought_keys[order], return_index=True)
        at = np.minimum(np.searchsorted(unique, keys), len(unique) - 1)
        found = unique[at] == keys
        out[found] = ages[order][first[at[found]]]
    return out


def features(w: Window, code: int, cands: Candidates) -> np.ndarray:
    """float32 [candidates × len(FEATURES)], NaN where a value does not exist (LightGBM treats it as missing)."""
    articles, mine = cands.articles, cands.mine
    n = len(articles)
    columns: dict[str, np.ndarray] = {}
    for i, source in enumerate(SOURCES):
        columns[f"rank_{source}"] = cands.ranks[:, i]
        columns[f"score_{source}"] = cands.scores[:, i]
    columns["sources"] = np.isfinite(cands.ranks).sum(axis=1).astype(np.float32)
    factor = w.factor(code)
    if factor is not None:
        with single_threaded_blas():
            columns["als_score"] = (w.model.als.item_factors[articles] @ factor).astype(np.float32)
    else:
        columns["als_score"] = np.full(n, np.nan, np.float32)
    near_codes, _ = cands.near
    if len(near_codes):
        columns["neighbour_votes"] = np.asarray(w.recent_buyers[near_codes][:, articles].sum(axis=0)).ravel()
    else:
        columns["neighbour_votes"] = np.zeros(n, np.float32)
    columns["days_since_bought_article"] = _days_since(mine.articles, mine.age_days, articles)
    columns["days_since_bought_product"] = _days_since(
        w.product_codes[mine.articles], mine.age_days, w.product_codes[articles])
    columns["times_bought"] = np.bincount(mine.articles, minlength=w.n_articles)[articles].astype(np.float32)
    usual_price = float(np.mean(mine.prices)) if len(mine) else np.nan
    columns["price_ratio"] = w.article_price[articles] / usual_price if len(mine) else np.full(n, np.nan, np.float32)
    columns["type_share"] = _share(w.type_codes[mine.articles], w.type_codes[articles], int(w.type_codes.max()) + 1)
    columns["colour_share"] = _share(w.colour_codes[mine.articles], w.colour_codes[articles], int(w.colour_codes.max()) + 1)
    columns["index_group_share"] = _share(w.group_codes[mine.articles], w.group_codes[articles], int(w.group_codes.max()) + 1)
    columns["purchases"] = np.full(n, len(mine), np.float32)
    columns["days_since_last_purchase"] = np.full(n, mine.age_days.min() if len(mine) else np.nan, np.float32)
    columns["online_share"] = np.full(n, np.mean(mine.channels == 2) if len(mine) else np.nan, np.float32)
    bucket = w.customer_buckets[code]
    columns["age_bucket"] = np.full(n, bucket if bucket >= 0 else np.nan, np.float32)
    columns["article_age"] = w.article_age[articles]
    columns["sales_1d"] = w.sales_1d[articles]
    columns["sales_7d"] = w.sales_7d[articles]
    columns["sales_30d"] = w.sales_30d[articles]
    columns["article_online_share"] = w.article_online[articles]
    return np.column_stack([np.asarray(columns[name], np.float32) for name in FEATURES]) if n else np.zeros((0, len(FEATURES)), np.float32)
