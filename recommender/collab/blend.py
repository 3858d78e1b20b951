"""The hand-weighted blend: five signals per article, each scaled to [0, 1] over the catalogue, weighted
and summed; one implementation for one shopper (`blend`, with each signal's contribution for the reasons)
and for a block of customers (`blend_block`, the ranker's `blend` source and the submission).

    neighbours  purchases of the customer's nearest customers, weighted by similarity and recency
    als         customer factors · article factors
    trend       recent sales of the article (exponential decay)
    repurchase  the customer's own purchases of the article, and at `variant_factor` of other colours of
                the products they bought (the article itself only when bought items are not excluded)
    type        how much of the customer's history is the article's product type, times its trend

Articles that stopped selling are multiplied down, and they and articles without an image fill at most
`max_limited_share` of a list.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError
from .factors import single_threaded_blas
from .params import SIGNALS
from .state import CollabState
from .topk import limited_cap, select_from, select_rows, weighted_rows


@dataclass
class Profile:
    """What the engine knows about one shopper: purchases, factor, nearest customers."""

    articles: np.ndarray  # article rows bought (or picked), distinct and sorted
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


def used_signals(weights: Mapping[str, float]) -> list[str]:
    """The signals a blend with these weights needs, in SIGNALS order."""
    return [name for name in SIGNALS if weights.get(name, 0.0)]


# --- profiles ----------------------------------------------------------------------------------------


def profile(state: CollabState, code: int, neighbours: int | None = None) -> Profile:
    """A known customer (by code): purchases in the training window, ALS factor, nearest customers."""
    counts, recency = state.interactions.counts, state.interactions.recency
    start, end = counts.indptr[code], counts.indptr[code + 1]
    if start == end:
        return Profile.empty()
    factor = state.als.user_factors[code]
    codes, sims = state.nearest(factor, state.params.neighbours if neighbours is None else neighbours, exclude=code)
    return Profile(counts.indices[start:end], counts.data[start:end], recency.data[start:end], factor, codes, sims)


def fold_in(state: CollabState, article_ids: Sequence[str], neighbours: int | None = None) -> Profile:
    """A new shopper known by a few picked articles, folded into the trained ALS (`recalculate_user`)."""
    rows = state.catalog.article_rows(article_ids)
    if not len(rows):
        raise InputError("pick at least one article to recommend from")
    # An article picked twice counts as two purchases; picks are "now", so recency does not decay them.
    articles, counts = np.unique(np.asarray(rows, dtype=np.int32), return_counts=True)
    counts = counts.astype(np.float32)
    with single_threaded_blas():
        factor = state.als.recalculate_user(0, state.confidence.row(articles, counts))
    codes, sims = state.nearest(factor, state.params.neighbours if neighbours is None else neighbours)
    return Profile(articles, counts, counts, factor, codes, sims)


# --- one shopper -------------------------------------------------------------------------------------


def signals(
    state: CollabState, profile: Profile, names: Sequence[str] = SIGNALS, trend: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Each named signal as a dense float32 vector over the catalogue's articles, scaled to [0, 1]
    (``trend``: the trend at another cut than the state's, for the ranker's training windows)."""
    trend = state.stats.trend if trend is None else trend
    out = {name: trend if name == "trend" else np.zeros(state.n_articles, np.float32) for name in names}
    if "neighbours" in names and len(profile.neighbour_codes):
        weights = np.clip(profile.neighbour_sims, 0.0, None).astype(np.float32)
        bought = state.interactions.recency[profile.neighbour_codes].minimum(1.0)
        out["neighbours"] = (bought.T @ weights) / max(float(weights.sum()), 1e-12)
    if "als" in names and profile.factor is not None:
        with single_threaded_blas():
            als = state.als.item_factors @ profile.factor
        out["als"] = np.clip(als / max(float(als.max()), 1e-12), 0.0, None)
    if "repurchase" in names and len(profile.articles):
        own = (profile.recency / profile.recency.max()).astype(np.float32)
        products = np.bincount(state.product_codes[profile.articles], weights=own, minlength=state.n_products)
        repurchase = np.minimum(state.params.variant_factor * products.astype(np.float32)[state.product_codes], 1.0)
        repurchase[profile.articles] = own
        out["repurchase"] = repurchase
    if "type" in names and len(profile.articles):
        type_share = type_shares(state, profile)[state.type_codes] * trend
        out["type"] = type_share / max(float(type_share.max()), 1e-12)
    return out


def rank(
    state: CollabState, profile: Profile, k: int, exclude_bought: bool, weights: Mapping[str, float] | None = None,
    unavailable: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k article rows, their scores, and each signal's contribution to them (SIGNALS × k); never an
    ``unavailable`` article (a mask over article rows)."""
    weights = state.params.weights() if weights is None else weights
    return blend(state, profile, signals(state, profile, used_signals(weights)), k, exclude_bought, weights,
                 unavailable)


def blend(
    state: CollabState, profile: Profile, signals: Mapping[str, np.ndarray], k: int, exclude_bought: bool,
    weights: Mapping[str, float], unavailable: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`rank` from signals already computed (evaluation blends one customer's signals many ways)."""
    used = used_signals(weights)
    availability = state.stats.availability
    total = np.zeros(state.n_articles, np.float32)
    for name in used:
        total += np.float32(weights[name]) * signals[name]
    total *= availability
    if exclude_bought:
        total[profile.articles] = 0.0
    if unavailable is not None:
        total[unavailable] = 0.0
    top = select(state, total, k)
    contributions = np.zeros((len(SIGNALS), len(top)), dtype=np.float32)
    for name in used:
        contributions[SIGNALS.index(name)] = weights[name] * signals[name][top] * availability[top]
    return top, total[top], contributions


def select(state: CollabState, total: np.ndarray, k: int) -> np.ndarray:
    """The k best articles of a catalogue-wide score vector, limited ones capped (`topk.select_from`)."""
    return select_from(np.arange(len(total)), total, k, state.stats.limited, limited_cap(k, state.params.max_limited_share))


def type_shares(state: CollabState, profile: Profile) -> np.ndarray:
    """Share of the shopper's purchases of each product type."""
    if not len(profile.articles):
        return np.zeros(len(state.type_names), np.float32)
    shares = np.bincount(state.type_codes[profile.articles], weights=profile.counts, minlength=len(state.type_names))
    return (shares / shares.sum()).astype(np.float32)


# --- a block of customers ----------------------------------------------------------------------------


def blend_block(state: CollabState, profiles: Sequence[Profile], als: np.ndarray, k: int, trend: np.ndarray) -> list:
    """`blend`'s (rows, scores) with the default weights, bought articles included, for several customers
    at once: each signal added to a [customers × articles] matrix in `signals`' order and arithmetic
    (``als``: the customers' ALS scores, `factors.als_scores`)."""
    weights = state.params.weights()
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
            shares = np.take(np.stack([type_shares(state, p) for p in profiles]), state.type_codes, axis=1)
            shares *= trend
            shares /= np.maximum(shares.max(axis=1, keepdims=True), np.float32(1e-12))
            shares *= weight
            total += shares
        elif name == "neighbours":  # first: it commutes with the als term already in the sum
            for i, (rows, values) in enumerate(_neighbour_votes(state, profiles)):
                total[i, rows] += weight * values
        elif name == "repurchase":
            for i, one in enumerate(profiles):
                rows, values = _repurchase_votes(state, one)
                total[i, rows] += weight * values
    total *= state.stats.availability
    tops = select_rows(total, k, state.stats.limited, limited_cap(k, state.params.max_limited_share))
    return [(rows.astype(np.int64), total[i, rows]) for i, rows in enumerate(tops)]


def _neighbour_votes(state: CollabState, profiles: Sequence[Profile]) -> list[tuple[np.ndarray, np.ndarray]]:
    """`signals`' neighbours signal of each profile where it is not 0 (article rows, values)."""
    weights = [np.clip(p.neighbour_sims, 0.0, None).astype(np.float32) for p in profiles]
    votes = weighted_rows(state.bought, [(p.neighbour_codes, w) for p, w in zip(profiles, weights)])
    return [(rows, values / max(float(w.sum()), 1e-12)) for (rows, values), w in zip(votes, weights)]


def _repurchase_votes(state: CollabState, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """`signals`' repurchase signal where it is not 0: the articles of the products the customer bought."""
    if not len(profile.articles):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    own = (profile.recency / profile.recency.max()).astype(np.float32)
    products, inverse = np.unique(state.product_codes[profile.articles], return_inverse=True)
    weights = np.bincount(inverse, weights=own).astype(np.float32)
    order, offsets = state.product_articles
    rows = np.sort(np.concatenate([order[offsets[p] : offsets[p + 1]] for p in products]))
    values = np.minimum(state.params.variant_factor * weights[np.searchsorted(products, state.product_codes[rows])], 1.0)
    values[np.searchsorted(rows, profile.articles)] = own
    return rows, values
