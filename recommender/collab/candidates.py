"""Candidate sources: each proposes a few articles for one customer, best first, with a score.

A `Window` holds what every source needs at one cut ("now"): the state trained before it (ALS, HNSW,
purchases) and article statistics. `candidates_block()` merges the sources into one table per customer in
which every candidate remembers each source's rank and score (NaN: that source did not propose it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..runtime import built_once
from .blend import Profile, blend_block
from .factors import als_scores, nearest_block
from .history import CustomerHistory
from .state import CollabState
from .topk import nothing, top_columns, top_rows, top_scores, weighted_rows

REPURCHASE_HALF_LIFE_DAYS = 14.0  # a purchase 2 weeks ago proposes its article half as strongly as one today
NEIGHBOUR_DAYS = 30  # "customers like you" vote with what they bought in the last 30 days
TOGETHER_DAYS = 56  # co-purchases counted within a customer's week, over the last 8 weeks
TOGETHER_SEEDS = 8  # the customer's most recent distinct purchases that seed bought-together
TREND_DAYS = 7
POPULAR_DAYS = 30
AGE_EDGES = (25, 35, 45, 55, 65)  # buckets: <25, 25–34, 35–44, 45–54, 55–64, 65+
AGE_LABELS = ("under 25", "25–34", "35–44", "45–54", "55–64", "65+")
TRENDING_HALF_LIFE_DAYS = 7.0  # the trending sources weigh a sale a week old half as much as one today
LOOKALIKE_SEEDS = 6  # the customer's most recent distinct purchases that seed "looks like what you bought"
LOOKALIKE_HALF_LIFE_DAYS = 30.0  # a seed bought a month ago counts half as much as one bought today
BLOCK = 32  # customers whose candidates are computed together: their ALS scores and blend, 32 × articles
# float32, stay in the CPU cache
SOURCES = (
    "repurchase", "other_colours", "neighbours", "als", "bought_together",
    "trending", "age_trending", "index_group_trending", "popular", "last_purchases", "blend", "looks_like",
)  # fmt: skip


def age_buckets(ages: np.ndarray) -> np.ndarray:
    """Bucket index per age (-1: unknown)."""
    ages = np.asarray(ages, dtype=np.float64)
    return np.where(np.isnan(ages), -1, np.searchsorted(AGE_EDGES, np.nan_to_num(ages), side="right")).astype(np.int8)


@dataclass
class Purchases:
    """One customer's purchases before the window's cut, oldest first."""

    articles: np.ndarray
    age_days: np.ndarray  # days before "now"
    prices: np.ndarray
    channels: np.ndarray

    def __len__(self) -> int:
        return len(self.articles)


@dataclass
class Block:
    """Customers whose candidates are computed together: their purchases, neighbours, and (on first use)
    their ALS scores over the whole catalogue as one matrix product."""

    window: "Window"
    codes: np.ndarray
    mine: list[Purchases]
    near: list[tuple[np.ndarray, np.ndarray]]

    @built_once
    def has_factor(self) -> np.ndarray:
        return self.window.state.has_history[self.codes]

    @built_once
    def als(self) -> np.ndarray:
        """float32 [customers × articles]: customer factor · article factor (0 for customers without one)."""
        factors = self.window.state.als
        if self.has_factor.all():  # as a rule: no copy then
            return als_scores(factors.user_factors[self.codes], factors.item_factors)
        scores = np.zeros((len(self.codes), self.window.n_articles), np.float32)
        scores[self.has_factor] = als_scores(factors.user_factors[self.codes[self.has_factor]], factors.item_factors)
        return scores


class Window:
    """Everything the sources and features need at one cut ("now").

    ``state`` (ALS factors, HNSW) was trained on the purchases before ``until`` or before an earlier day:
    training windows share one state fitted before the first of them, so the ranker's training costs one
    ALS fit, not one per week. Histories, sales and trends use every purchase before ``until`` (default:
    the state's own cut)."""

    def __init__(self, state: CollabState, until: np.datetime64 | None = None, customer_ages: np.ndarray | None = None):
        self.state = state
        catalog = state.catalog
        self.n_articles = len(catalog.articles)
        if until is None:
            self.now, end, self.history = state.interactions.now, state.interactions.n_transactions, state.purchases
        else:
            self.now = np.datetime64(until, "ns")
            end = int(np.searchsorted(catalog.transactions["t_dat"].to_numpy(), self.now, side="left"))
            self.history = CustomerHistory(catalog.transactions.iloc[:end], len(catalog.customer_ids))
        tx = catalog.transactions.iloc[:end]
        self.tx_articles = tx["article"].to_numpy()
        self.tx_age = ((self.now - tx["t_dat"].to_numpy()) / np.timedelta64(1, "D")).astype(np.float32)
        self.tx_customers = tx["customer"].to_numpy()
        self.product_codes = state.product_codes
        self.type_codes = state.type_codes
        self.colour_codes = pd.factorize(catalog.articles["colour_group_name"])[0].astype(np.int32)
        self.group_codes, self.group_names = pd.factorize(catalog.articles["index_group_name"])
        self.group_codes = self.group_codes.astype(np.int32)
        ages = customer_ages if customer_ages is not None else customer_age_array(catalog)
        self.customer_buckets = age_buckets(ages)
        n = self.n_articles
        sales = lambda days: np.bincount(self.tx_articles[self.tx_age <= days], minlength=n).astype(np.float32)
        self.sales_1d, self.sales_7d, self.sales_30d = sales(1), sales(TREND_DAYS), sales(POPULAR_DAYS)
        first = np.full(n, np.nan, np.float32)
        np.fmax.at(first, self.tx_articles, self.tx_age)
        self.article_age = first  # days since the first sale (NaN: never sold)
        price_sum = np.bincount(self.tx_articles, weights=tx["price"].to_numpy(), minlength=n)
        counts = np.bincount(self.tx_articles, minlength=n)
        self.article_price = np.where(counts > 0, price_sum / np.maximum(counts, 1), np.nan).astype(np.float32)
        online = np.bincount(self.tx_articles, weights=tx["sales_channel_id"].to_numpy() == 2, minlength=n)
        self.article_online = np.where(counts > 0, online / np.maximum(counts, 1), np.nan).astype(np.float32)
        recent = self.tx_age <= POPULAR_DAYS  # decayed by day: the last days weigh most
        self.trend = self.decayed_sales(recent, TRENDING_HALF_LIFE_DAYS)
        self._shared: dict = {}

    def decayed_sales(self, sales: np.ndarray | slice, half_life_days: float) -> np.ndarray:
        """Sales per article of the purchases ``sales`` selects, each worth less the older it is."""
        return np.bincount(self.tx_articles[sales], weights=np.exp2(-self.tx_age[sales] / half_life_days),
                           minlength=self.n_articles)

    @built_once
    def blend_trend(self) -> np.ndarray:
        """The blend's trend signal at this cut (the state's own when the cut is the state's)."""
        if self.now == self.state.interactions.now:
            return self.state.stats.trend
        trend = self.decayed_sales(slice(None), self.state.params.trend_half_life_days)
        return (trend / max(trend.max(), 1e-12)).astype(np.float32)

    def prepare(self) -> "Window":
        """Build now every table the sources share, rather than on first use: forked workers then share
        one copy instead of each building its own."""
        for name in ("selling", "recent_buyers", "together", "trending_by_age", "blend_trend"):
            getattr(self, name)
        self.state.product_articles, self.state.bought  # the sources' and the blend's
        return self

    def shared(self, key, compute):
        """A proposal list that does not depend on the customer (trending, by age, …), computed once."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    # -- per customer -----------------------------------------------------------------------------

    def purchases(self, code: int) -> Purchases:
        history = self.history
        rows = history.rows(code)
        age = ((self.now - history.days[rows]) / np.timedelta64(1, "D")).astype(np.float32)
        return Purchases(history.articles[rows], age, history.prices[rows], history.channels[rows])

    def profile(self, mine: Purchases, factor: np.ndarray | None, near: tuple[np.ndarray, np.ndarray]):
        """The blend's view of the customer at this cut: purchases (counts, recency-decayed), factor, neighbours."""
        if not len(mine):
            return Profile.empty()
        articles, inverse = np.unique(mine.articles, return_inverse=True)
        half_life = self.state.params.recency_half_life_days
        decay = np.exp2(-mine.age_days / half_life) if half_life else np.ones(len(mine))
        counts = np.bincount(inverse, minlength=len(articles)).astype(np.float32)
        recency = np.bincount(inverse, weights=decay, minlength=len(articles)).astype(np.float32)
        return Profile(articles.astype(np.int32), counts, recency, factor, near[0], near[1])

    def block(self, codes, near: list | None = None) -> Block:
        """These customers' purchases and neighbours (``near``: given instead, one (codes, sims) each)."""
        codes = np.asarray(codes, dtype=np.int64)
        mine = [self.purchases(int(code)) for code in codes]
        block = Block(self, codes, mine, near)
        if near is None:
            block.near = self.neighbours(codes, block.has_factor)
        return block

    def neighbours(self, codes: np.ndarray, has_factor: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each customer's nearest customers (none without a factor), one HNSW call for the block."""
        out = [(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(codes)
        state = self.state
        found = nearest_block(state.index, state.als.user_factors[codes[has_factor]],
                              state.params.neighbours, [int(c) for c in codes[has_factor]])
        for i, near in zip(np.flatnonzero(has_factor), found):
            out[i] = near
        return out

    # -- tables shared by all customers --------------------------------------------------------------

    @built_once
    def selling(self) -> np.ndarray:
        """Articles sold in the last 30 days: the ALS source's choice."""
        return np.flatnonzero(self.sales_30d > 0)

    @built_once
    def recent_buyers(self) -> sp.csr_matrix:
        """customer × article, 1 where the customer bought the article in the last NEIGHBOUR_DAYS."""
        recent = self.tx_age <= NEIGHBOUR_DAYS
        shape = (len(self.customer_buckets), self.n_articles)
        matrix = sp.csr_matrix((np.ones(int(recent.sum()), np.float32),
                                (self.tx_customers[recent], self.tx_articles[recent])), shape=shape)
        matrix.data[:] = 1.0
        return matrix

    @built_once
    def together(self) -> sp.csr_matrix:
        """article × article: how many customer-weeks (last TOGETHER_DAYS) bought both."""
        recent = self.tx_age <= TOGETHER_DAYS
        week = (self.tx_age[recent] // 7).astype(np.int64)
        baskets = pd.factorize(self.tx_customers[recent].astype(np.int64) * 1000 + week)[0]
        basket_items = sp.csr_matrix((np.ones(len(baskets), np.float32), (baskets, self.tx_articles[recent])),
                                     shape=(int(baskets.max()) + 1 if len(baskets) else 0, self.n_articles))
        basket_items.data[:] = 1.0
        pairs = (basket_items.T @ basket_items).tocsr()
        pairs.setdiag(0)
        pairs.eliminate_zeros()
        return pairs

    @built_once
    def trending_by_age(self) -> dict[int, np.ndarray]:
        """Decayed last-week sales per age bucket, over the catalogue."""
        week = self.tx_age <= TREND_DAYS
        buckets = self.customer_buckets[self.tx_customers[week]]
        weights = np.exp2(-self.tx_age[week] / TRENDING_HALF_LIFE_DAYS)
        return {int(b): np.bincount(self.tx_articles[week][buckets == b], weights=weights[buckets == b],
                                    minlength=self.n_articles) for b in np.unique(buckets) if b >= 0}


def customer_age_array(catalog) -> np.ndarray:
    """Each customer code's age from customers.csv (NaN when unknown or without the file)."""
    ages = np.full(len(catalog.customer_ids), np.nan)
    customers = catalog.customers
    if customers is not None and "age" in customers:
        codes = catalog.customer_codes_of_column(customers["customer_id"])
        known = codes >= 0
        ages[codes[known]] = pd.to_numeric(customers["age"], errors="coerce").to_numpy()[known]
    return ages


# --- the sources -------------------------------------------------------------------------------------
# Each takes the window, the customer's code and purchases, and n; returns (article rows, scores) best first.


def repurchase(w: Window, code: int, mine: Purchases, n: int):
    """What the customer bought, each purchase worth less the older it is."""
    articles, inverse = np.unique(mine.articles, return_inverse=True)
    scores = np.bincount(inverse, weights=np.exp2(-mine.age_days / REPURCHASE_HALF_LIFE_DAYS), minlength=len(articles))
    return top_columns(articles, scores, n)


def other_colours(w: Window, code: int, mine: Purchases, n: int):
    """Other colours (same product_code) of what the customer bought, recent purchases and best sellers first."""
    if not len(mine):
        return nothing()
    bought_products, inverse = np.unique(w.product_codes[mine.articles], return_inverse=True)
    weight = np.bincount(inverse, weights=np.exp2(-mine.age_days / REPURCHASE_HALF_LIFE_DAYS))
    order, offsets = w.state.product_articles
    siblings = np.concatenate([order[offsets[p] : offsets[p + 1]] for p in bought_products])
    siblings = np.setdiff1d(siblings, mine.articles)
    product_weight = weight[np.searchsorted(bought_products, w.product_codes[siblings])]
    return top_columns(siblings, product_weight * (1.0 + np.log1p(w.sales_30d[siblings])), n)


def neighbours(w: Window, block: Block, n: int):
    """What the customer's nearest customers (HNSW on ALS factors) bought lately, weighted by similarity."""
    votes = weighted_rows(w.recent_buyers, [(codes, np.clip(sims, 0.0, None).astype(np.float32))
                                            for codes, sims in block.near])
    return [top_columns(columns, scores, n) for columns, scores in votes]


def als(w: Window, block: Block, n: int):
    """The ALS top-n: customer factor · article factors, among articles sold in the last 30 days."""
    selling, has = w.selling, np.flatnonzero(block.has_factor)
    scores = block.als[np.ix_(has, selling)]
    scores -= np.minimum(scores.min(axis=1, keepdims=True, initial=0.0), 0.0)  # the lowest score becomes 0 …
    scores += np.float32(1e-6)  # … and every selling article stays above 0
    out = [(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(block.codes)
    for i, (positions, top) in zip(has, top_rows(scores, n)):
        out[i] = (selling[positions], top)
    return out


def bought_together(w: Window, block: Block, n: int):
    """Articles bought in the same week as the customer's latest purchases, by other customers."""
    seeds = [pd.unique(mine.articles[::-1])[:TOGETHER_SEEDS] for mine in block.mine]
    together = weighted_rows(w.together, [(rows, np.ones(len(rows), np.float32)) for rows in seeds])
    out = []
    for (columns, scores), mine in zip(together, block.mine):
        new = _absent(columns, mine.articles)
        out.append(top_columns(columns[new], scores[new], n))
    return out


def _absent(columns: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Mask of ``columns`` (sorted, unique; thousands) not in ``drop`` (a few): `~np.isin` without sorting both."""
    keep = np.ones(len(columns), bool)
    if len(columns) and len(drop):
        at = np.minimum(np.searchsorted(columns, drop), len(columns) - 1)
        keep[at[columns[at] == drop]] = False
    return keep


def trending(w: Window, code: int, mine: Purchases, n: int):
    """The week's best sellers overall (decayed by day)."""
    return w.shared(("trending", n), lambda: top_scores(w.trend, n))


def age_trending(w: Window, code: int, mine: Purchases, n: int):
    """The week's best sellers among customers of the same age bucket."""
    scores = w.trending_by_age.get(int(w.customer_buckets[code]))
    if scores is None:
        return nothing()
    return w.shared(("age", int(w.customer_buckets[code]), n), lambda: top_scores(scores, n))


def index_group_trending(w: Window, code: int, mine: Purchases, n: int):
    """The week's best sellers in the index group (Ladieswear, Menswear, …) the customer buys most."""
    if not len(mine):
        return nothing()
    group = int(np.argmax(np.bincount(w.group_codes[mine.articles])))
    return w.shared(("group", group, n), lambda: top_scores(w.trend, n, np.flatnonzero(w.group_codes == group)))


def popular(w: Window, code: int, mine: Purchases, n: int):
    """The month's best sellers: what a customer without history gets."""
    return w.shared(("popular", n), lambda: top_scores(w.sales_30d, n))


def last_purchases(w: Window, code: int, mine: Purchases, n: int):
    """The public "time is our best friend" heuristic as one list: the customer's own articles, most recently
    bought first, then the last 7 days' best sellers (score: n + 1 - position)."""
    own = pd.unique(mine.articles[::-1])[:n]
    week, _ = w.shared(("week", n), lambda: top_scores(w.sales_7d, n))
    picks = np.concatenate([own, week[~np.isin(week, own)]])[:n].astype(np.int64)
    return picks, np.arange(n, n - len(picks), -1).astype(np.float32)


def blend(w: Window, block: Block, n: int):
    """The hand-weighted blend's top n (`CollabModel.blend_block`), bought articles included, at this cut."""
    profiles = [w.profile(mine, w.state.factor(int(code)), near) for code, mine, near in zip(block.codes, block.mine, block.near)]
    return blend_block(w.state, profiles, block.als, n, trend=w.blend_trend)


def looks_like(w: Window, code: int, mine: Purchases, n: int):
    """Catalogue articles that look like the customer's latest purchases (the build's look-alike table over
    the content vectors: the photo's, or the caption's where there is no photo), unsold new arrivals
    included: an article scores its best similarity to a seed times the seed's recency weight; one article
    per product, none of a product the customer bought (other_colours proposes those)."""
    looks = w.state.looks
    rows, ages = recent_distinct(mine, LOOKALIKE_SEEDS)
    if looks is None or not len(rows):
        return nothing()
    near = np.asarray(looks.neighbours[rows])  # seeds × look-alikes
    weighted = np.asarray(looks.similarities[rows]) * np.exp2(-ages / LOOKALIKE_HALF_LIFE_DAYS)[:, None]
    found = near >= 0
    near, weighted = near[found].astype(np.int64), weighted[found]
    keep = ~np.isin(w.product_codes[near], w.product_codes[mine.articles])
    near, weighted = near[keep], weighted[keep]
    order = np.lexsort((near, -weighted))  # best first, ties to the lower row; an article's best seed first
    near, weighted = near[order], weighted[order]
    _, first = np.unique(w.product_codes[near], return_index=True)  # each product's best article once
    first = np.sort(first)
    first = first[weighted[first] > 0][:n]
    return near[first], weighted[first].astype(np.float32)


def recent_distinct(mine: Purchases, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The customer's ``n`` most recently bought distinct articles and how many days ago each was bought."""
    newest_first = np.argsort(mine.age_days, kind="stable")
    _, first = np.unique(mine.articles[newest_first], return_index=True)
    keep = np.sort(first)[:n]
    return mine.articles[newest_first][keep].astype(np.int64), mine.age_days[newest_first][keep]


SOURCE_FUNCTIONS = {
    "repurchase": repurchase, "other_colours": other_colours, "neighbours": neighbours, "als": als,
    "bought_together": bought_together, "trending": trending, "age_trending": age_trending,
    "index_group_trending": index_group_trending, "popular": popular, "last_purchases": last_purchases,
    "blend": blend, "looks_like": looks_like,
}  # fmt: skip
assert tuple(SOURCE_FUNCTIONS) == SOURCES
BLOCK_SOURCES = ("neighbours", "als", "bought_together", "blend")  # (window, block, n): a proposal per customer


@dataclass
class Candidates:
    """One customer's candidates: article rows, and per source their rank (1 = best) and score (NaN: not proposed)."""

    articles: np.ndarray
    ranks: np.ndarray  # float32 [candidates × sources]
    scores: np.ndarray  # float32 [candidates × sources]
    near: tuple[np.ndarray, np.ndarray]  # the customer's neighbours (codes, similarities)
    mine: Purchases

    def frame(self) -> pd.DataFrame:
        """For reading and tests: article row, then rank_<source> for each source."""
        return pd.DataFrame({"article": self.articles,
                             **{f"rank_{s}": self.ranks[:, i] for i, s in enumerate(SOURCES)}})


def candidates_block(w: Window, block: Block, per_source: int, exclude: list | None = None) -> list[Candidates]:
    """Every source's proposals for each customer of a block (one customer: a block of one), merged
    (``exclude``: per customer, article rows never proposed, or None)."""
    together = {name: SOURCE_FUNCTIONS[name](w, block, per_source) for name in BLOCK_SOURCES}
    proposals = []  # per customer, per source: (articles, scores)
    for i, code in enumerate(block.codes):
        proposals.append([together[name][i] if name in BLOCK_SOURCES
                          else SOURCE_FUNCTIONS[name](w, int(code), block.mine[i], per_source) for name in SOURCES])
    return _merge(w, block, proposals, exclude)


def _merge(w: Window, block: Block, proposals: list, exclude: list | None) -> list[Candidates]:
    """Each customer's proposals as one table: every proposed article once, each source's rank and score."""
    flat = [(i, s, rows, values) for i, lists in enumerate(proposals) for s, (rows, values) in enumerate(lists)]
    lengths = [len(rows) for *_, rows, _ in flat]
    customer = np.repeat([i for i, *_ in flat], lengths).astype(np.int64)
    source = np.repeat([s for _, s, *_ in flat], lengths)
    rank = np.concatenate([np.arange(1, n + 1) for n in lengths]) if flat else np.zeros(0, np.int64)
    key = customer * w.n_articles + np.concatenate([rows for *_, rows, _ in flat] + [np.zeros(0, np.int64)])
    keys = np.unique(key)  # (customer, article), by customer then article
    if exclude is not None:
        excluded = [i * w.n_articles + np.asarray(e, np.int64) for i, e in enumerate(exclude) if e is not None]
        keys = np.setdiff1d(keys, np.concatenate(excluded)) if excluded else keys
    at = np.minimum(np.searchsorted(keys, key), max(len(keys) - 1, 0))
    found = keys[at] == key if len(keys) else np.zeros(len(key), bool)
    ranks = np.full((len(keys), len(SOURCES)), np.nan, np.float32)
    scores = np.full_like(ranks, np.nan)
    ranks[at[found], source[found]] = rank[found]
    proposed_scores = np.concatenate([values for *_, values in flat] + [np.zeros(0, np.float32)])
    scores[at[found], source[found]] = proposed_scores[found]
    bounds = np.searchsorted(keys, np.arange(len(block.codes) + 1) * w.n_articles)
    return [Candidates(keys[a:b] - i * w.n_articles, ranks[a:b], scores[a:b], block.near[i], block.mine[i])
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
