"""Features of each (customer, candidate) pair for the ranker; one row per candidate, columns FEATURES."""
from __future__ import annotations

import numpy as np

from .candidates import LOOKALIKE_HALF_LIFE_DAYS, SOURCES, Candidates, Window, candidates_block, recent_distinct
from .factors import single_threaded_blas
from .topk import weighted_rows

CUSTOMER_FEATURES = ["purchases", "days_since_last_purchase", "online_share", "age_bucket"]
ARTICLE_FEATURES = ["article_age", "sales_1d", "sales_7d", "sales_30d", "article_online_share"]
PAIR_FEATURES = [
    "sources", "als_score", "neighbour_votes", "days_since_bought_article", "days_since_bought_product",
    "times_bought", "price_ratio", "type_share", "colour_share", "index_group_share",
    "content_max_sim", "content_mean_sim", "neighbour_content_sim",
]  # fmt: skip
TASTE_PURCHASES = 32  # the most recent distinct purchases the taste features compare a candidate with
FEATURES = (
    [f"rank_{s}" for s in SOURCES] + [f"score_{s}" for s in SOURCES]
    + PAIR_FEATURES + CUSTOMER_FEATURES + ARTICLE_FEATURES
)


def _lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray, missing) -> np.ndarray:
    """values at ``wanted`` among ``keys`` (sorted, unique); ``missing`` where a key is absent."""
    out = np.full(len(wanted), missing, dtype=np.result_type(values, type(missing)))
    if len(keys) and len(wanted):
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        found = keys[at] == wanted
        out[found] = values[at[found]]
    return out


def _days_since(bought_keys: np.ndarray, ages: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Days since the most recent purchase of each key (NaN: never bought)."""
    order = np.lexsort((ages, bought_keys))  # by key, the most recent purchase first
    unique, first = np.unique(bought_keys[order], return_index=True)
    return _lookup(unique, ages[order][first], keys, np.float32(np.nan)).astype(np.float32)


def _share(bought_keys: np.ndarray, keys: np.ndarray, bought: np.ndarray) -> np.ndarray:
    """Share of the customer's purchases with each candidate's code (type, colour, index group); ``bought``:
    the customer's number of purchases, per candidate."""
    unique, counts = np.unique(bought_keys, return_counts=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = _lookup(unique, counts, keys, 0) / bought
    return np.where(bought > 0, share, 0.0).astype(np.float32)


def features_block(w: Window, codes, block: list[Candidates]) -> list[np.ndarray]:
    """Per customer of a block: float32 [candidates × len(FEATURES)], NaN where a value does not exist
    (LightGBM treats it as missing), computed over all their (customer, candidate) pairs at once."""
    sizes = [len(cands.articles) for cands in block]
    if not sum(sizes):
        return [np.zeros((0, len(FEATURES)), np.float32) for _ in block]
    customer = np.repeat(np.arange(len(block)), sizes)  # each pair's customer (position in the block)
    articles = np.concatenate([cands.articles for cands in block])
    mine = [cands.mine for cands in block]
    bought = np.repeat([len(m) for m in mine], sizes)  # the pair's customer's purchases
    owner = np.concatenate([np.full(len(m), i, np.int64) for i, m in enumerate(mine)])  # each purchase's customer
    mine_articles = np.concatenate([m.articles for m in mine]).astype(np.int64)
    mine_ages = np.concatenate([m.age_days for m in mine])
    key = lambda who, values, span: who * span + values  # (customer, value) as one sortable number

    columns: dict[str, np.ndarray] = {}
    ranks, scores = np.vstack([cands.ranks for cands in block]), np.vstack([cands.scores for cands in block])
    for i, source in enumerate(SOURCES):
        columns[f"rank_{source}"] = ranks[:, i]
        columns[f"score_{source}"] = scores[:, i]
    columns["sources"] = np.isfinite(ranks).sum(axis=1).astype(np.float32)
    with single_threaded_blas():  # once a block: entering it costs ~30 µs
        columns["als_score"] = np.concatenate([_als_scores(w, int(code), cands.articles) for code, cands in zip(codes, block)])
    votes = weighted_rows(w.recent_buyers, [(cands.near[0], np.ones(len(cands.near[0]), np.float32)) for cands in block])
    columns["neighbour_votes"] = _lookup(
        np.concatenate([key(i, rows.astype(np.int64), w.n_articles) for i, (rows, _) in enumerate(votes)]),
        np.concatenate([values for _, values in votes]), key(customer, articles, w.n_articles), np.float32(0))
    columns["days_since_bought_article"] = _days_since(
        key(owner, mine_articles, w.n_articles), mine_ages, key(customer, articles, w.n_articles))
    n_products = int(w.product_codes.max()) + 1
    columns["days_since_bought_product"] = _days_since(
        key(owner, w.product_codes[mine_articles], n_products), mine_ages, key(customer, w.product_codes[articles], n_products))
    unique, counts = np.unique(key(owner, mine_articles, w.n_articles), return_counts=True)
    columns["times_bought"] = _lookup(unique, counts, key(customer, articles, w.n_articles), 0).astype(np.float32)
    usual_price = np.array([np.mean(m.prices) if len(m) else np.nan for m in mine], np.float32)
    columns["price_ratio"] = w.article_price[articles] / usual_price[customer]
    for name, codes_of in (("type_share", w.type_codes), ("colour_share", w.colour_codes), ("index_group_share", w.group_codes)):
        span = int(codes_of.max()) + 1
        columns[name] = _share(key(owner, codes_of[mine_articles], span), key(customer, codes_of[articles], span), bought)
    columns.update(_taste(w, block, votes))
    columns["purchases"] = bought.astype(np.float32)
    columns["days_since_last_purchase"] = np.array([m.age_days.min() if len(m) else np.nan for m in mine], np.float32)[customer]
    columns["online_share"] = np.array([np.mean(m.channels == 2) if len(m) else np.nan for m in mine], np.float32)[customer]
    buckets = w.customer_buckets[np.asarray(codes, dtype=np.int64)]
    columns["age_bucket"] = np.where(buckets >= 0, buckets, np.nan).astype(np.float32)[customer]
    columns["article_age"] = w.article_age[articles]
    columns["sales_1d"] = w.sales_1d[articles]
    columns["sales_7d"] = w.sales_7d[articles]
    columns["sales_30d"] = w.sales_30d[articles]
    columns["article_online_share"] = w.article_online[articles]
    X = np.column_stack([np.asarray(columns[name], np.float32) for name in FEATURES])
    return np.split(X, np.cumsum(sizes)[:-1])


def features_of(w: Window, code: int, articles: np.ndarray, per_source: int) -> np.ndarray:
    """One customer's features of any articles, in their order (personalised search scores its results
    with the ranker): each article's source ranks and scores where a source proposes it, else missing."""
    block = w.block([code])
    proposed = candidates_block(w, block, per_source)[0]
    order = np.argsort(articles, kind="stable")
    wanted = np.asarray(articles, dtype=proposed.articles.dtype)[order]
    at = np.minimum(np.searchsorted(proposed.articles, wanted), max(len(proposed.articles) - 1, 0))
    found = proposed.articles[at] == wanted if len(proposed.articles) else np.zeros(len(wanted), dtype=bool)
    ranks = np.full((len(wanted), len(SOURCES)), np.nan, np.float32)
    scores = np.full_like(ranks, np.nan)
    ranks[found], scores[found] = proposed.ranks[at[found]], proposed.scores[at[found]]
    X = features_block(w, block.codes, [Candidates(wanted, ranks, scores, proposed.near, proposed.mine)])[0]
    out = np.empty_like(X)
    out[order] = X
    return out


def _taste(w: Window, block: list[Candidates], votes: list) -> dict[str, np.ndarray]:
    """How close each candidate looks (content vectors) to the customer's recent purchases (the closest,
    and the recency-weighted mean) and to what their neighbours bought lately (their purchases' mean
    vector); NaN without content vectors or without purchases / neighbours."""
    names = ("content_max_sim", "content_mean_sim", "neighbour_content_sim")
    looks = w.state.looks
    if looks is None:
        size = sum(len(cands.articles) for cands in block)
        return {name: np.full(size, np.nan, np.float32) for name in names}
    vectors = looks.vectors
    parts = {name: [] for name in names}
    for cands, (voted, counts) in zip(block, votes):
        mine = np.asarray(vectors[cands.articles])
        rows, ages = recent_distinct(cands.mine, TASTE_PURCHASES)
        if len(rows):
            similarity = mine @ np.asarray(vectors[rows]).T  # candidates × purchases
            weight = np.exp2(-ages / LOOKALIKE_HALF_LIFE_DAYS)
            parts["content_max_sim"].append(similarity.max(axis=1))
            parts["content_mean_sim"].append(similarity @ (weight / weight.sum()))
        else:
            parts["content_max_sim"].append(np.full(len(mine), np.nan))
            parts["content_mean_sim"].append(np.full(len(mine), np.nan))
        if len(voted):
            taste = counts.astype(np.float32) @ np.asarray(vectors[voted])
            parts["neighbour_content_sim"].append(mine @ (taste / max(float(np.linalg.norm(taste)), 1e-12)))
        else:
            parts["neighbour_content_sim"].append(np.full(len(mine), np.nan))
    return {name: np.concatenate(values).astype(np.float32) for name, values in parts.items()}


def _als_scores(w: Window, code: int, articles: np.ndarray) -> np.ndarray:
    """The customer's ALS score of each candidate (NaN without a factor): the ranker was trained on this
    float32 product, so it stays one small product per customer (under `single_threaded_blas`)."""
    factor = w.state.factor(code)
    if factor is None:
        return np.full(len(articles), np.nan, np.float32)
    return (w.state.als.item_factors[articles] @ factor).astype(np.float32)
