"""The demo's simulation: articles with launch and retirement periods, customers with planted tastes
(index group, product types, colours), and two years of seasonal purchases that follow them."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalog import ARTICLE_COLUMNS
from .vocabulary import (
    COLOURS,
    DAYS,
    GROUPS,
    N_PERIODS,
    PATTERNS,
    PERIOD_DAYS,
    PRODUCT_TYPES,
    SELLS,
    Progress,
    index_of,
)

# --- random streams ------------------------------------------------------------------------------------

STREAMS = {"articles": 1, "images": 2, "customers": 3, "transactions": 4}


def random_stream(seed: int, stream: str) -> np.random.Generator:
    """Independent stream per part, so e.g. customers' tastes do not depend on the catalogue size."""
    return np.random.default_rng([seed, STREAMS[stream]])


def _weighted_top_k(rng: np.random.Generator, log_weights: np.ndarray, k: int) -> np.ndarray:
    """Per row, k distinct column indices drawn by weight without replacement (Gumbel top-k)."""
    keys = log_weights + rng.gumbel(size=log_weights.shape).astype(log_weights.dtype)
    return np.argsort(-keys, axis=1, kind="stable")[:, :k]


def _choose_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """Per row of a (n, k) probability matrix, one column index."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities)) * cumulative[:, -1]
    return (u[:, None] >= cumulative).sum(axis=1).clip(max=probabilities.shape[1] - 1)


# --- calendar ------------------------------------------------------------------------------------------


def _calendar() -> dict[str, np.ndarray]:
    doy = DAYS.day_of_year.to_numpy()
    # Summer sale (late June-July), Black Friday week, winter sale (after Christmas to mid-January).
    sale = ((doy >= 176) & (doy <= 205)) | ((doy >= 328) & (doy <= 334)) | (doy >= 360) | (doy <= 14)
    weekday = np.array([0.9, 0.9, 0.95, 1.0, 1.05, 1.25, 1.0])[DAYS.day_of_week.to_numpy()]
    growth = 1.0 + 0.25 * np.arange(len(DAYS)) / len(DAYS)
    weight = growth * weekday * np.where(sale, 1.5, 1.0)
    period_doy = doy[np.minimum(np.arange(N_PERIODS) * PERIOD_DAYS + PERIOD_DAYS // 2, len(DAYS) - 1)]
    summer = np.cos(2 * np.pi * (period_doy - 196) / 365.25)  # +1 mid-July, -1 mid-January
    season = np.exp(1.2 * np.outer([t.summer for t in PRODUCT_TYPES], summer))  # types x periods
    return {"cdf": np.cumsum(weight) / weight.sum(), "sale": sale, "season": season}


# --- articles ------------------------------------------------------------------------------------------


@dataclass
class Articles:
    table: pd.DataFrame  # articles.csv rows
    type: np.ndarray
    colour: np.ndarray
    group: np.ndarray
    pattern: np.ndarray
    popularity: np.ndarray
    intro: np.ndarray  # first period on sale
    retire: np.ndarray  # last period on sale
    price_cents: np.ndarray
    has_image: np.ndarray


def make_articles(n_articles: int, seed: int) -> Articles:
    rng = random_stream(seed, "articles")
    n_types, n_colours, n_patterns = len(PRODUCT_TYPES), len(COLOURS), len(PATTERNS)

    # Products with 1-5 colour variants each.
    variants = 1 + np.minimum(rng.poisson(1.3, size=n_articles), 4)
    n_products = int(np.searchsorted(np.cumsum(variants), n_articles)) + 1
    variants = variants[:n_products]
    variants[-1] -= variants.sum() - n_articles

    type_weights = np.array([t.weight for t in PRODUCT_TYPES])
    ptype = rng.choice(n_types, n_products, p=type_weights / type_weights.sum())
    pattern = rng.choice(n_patterns, n_products, p=[p.weight for p in PATTERNS])
    # Every type and pattern present however small the catalogue; those first products sell all along.
    covered = min(n_types, n_products)
    ptype[:covered] = rng.permutation(n_types)[:covered]
    pattern[: min(n_patterns, n_products)] = np.arange(min(n_patterns, n_products))
    group_weights = SELLS * np.array([g.weight for g in GROUPS])
    group = _choose_rows(rng, group_weights[ptype] / group_weights[ptype].sum(axis=1, keepdims=True))

    intro = np.where(rng.random(n_products) < 0.55, 0, rng.integers(1, N_PERIODS - 1, n_products))
    retire = np.minimum(intro + rng.integers(6, 40, n_products) - 1, N_PERIODS - 1)
    intro[:covered], retire[:covered] = 0, N_PERIODS - 1
    style = rng.random(n_products)
    description = rng.random(n_products)
    product_popularity = rng.lognormal(0.0, 1.0, n_products)
    shelf_price = (np.array([t.price for t in PRODUCT_TYPES])[ptype]
                   * np.array([g.price_factor for g in GROUPS])[group]
                   * rng.choice([0.7, 0.85, 1.0, 1.2, 1.5], n_products))  # fmt: skip
    price_cents = np.maximum(1, np.round(shelf_price)).astype(np.int32) * 100 - 1  # x.99
    n_without_image = max(1, round(0.03 * n_products))
    without_image = np.zeros(n_products, bool)
    without_image[rng.choice(n_products, n_without_image, replace=False)] = True
    without_description = np.zeros(n_products, bool)
    without_description[rng.choice(n_products, max(1, round(0.005 * n_products)), replace=False)] = True

    # Distinct colours per product; the first products cover every colour.
    log_weights = np.tile(np.log([c.weight for c in COLOURS]).astype(np.float32), (n_products, 1))
    forced = min(n_colours, n_products)
    log_weights[np.arange(forced), np.arange(forced)] = np.inf
    colour_rank = _weighted_top_k(rng, log_weights, int(variants.max()))

    # Product codes rise with the introduction date, as H&M's do; articles come out sorted by id.
    codes = np.sort(rng.choice(860_000, n_products, replace=False) + 100_000)
    order = np.lexsort((np.arange(n_products), intro))
    (ptype, pattern, group, intro, retire, style, description, product_popularity, price_cents, without_image,
     without_description, colour_rank, variants) = (
        a[order] for a in (ptype, pattern, group, intro, retire, style, description, product_popularity,
                           price_cents, without_image, without_description, colour_rank, variants))  # fmt: skip

    product = np.repeat(np.arange(n_products), variants)
    variant = np.arange(n_articles) - np.repeat(np.cumsum(variants) - variants, variants)
    colour = colour_rank[product, variant]
    popularity = product_popularity[product] * rng.lognormal(0.0, 0.5, n_articles)

    names, descriptions = [], []
    for t, p, s, d, empty in zip(ptype, pattern, style, description, without_description):
        ptype_ = PRODUCT_TYPES[t]
        adjective = PATTERNS[p].adjective
        noun = f"{adjective} {ptype_.noun}" if adjective else ptype_.noun
        names.append(_capitalised(f"{ptype_.styles[int(s * len(ptype_.styles))]} {noun}"))
        descriptions.append(
            "" if empty else _capitalised(noun + ptype_.descriptions[int(d * len(ptype_.descriptions))])
        )
    code_text = np.array([f"{c:07d}" for c in codes])
    table = pd.DataFrame({"article_id": np.char.add(code_text[product],
                                                    np.char.zfill((variant + 1).astype(str), 3)),
                          "product_code": code_text[product],
                          "prod_name": np.array(names, dtype=object)[product]})  # fmt: skip
    table = table.join(_vocabulary_columns(ptype[product], group[product], pattern[product], colour))
    table["detail_desc"] = np.array(descriptions, dtype=object)[product]
    return Articles(
        table=table[ARTICLE_COLUMNS],
        type=ptype[product].astype(np.int16),
        colour=colour.astype(np.int16),
        group=group[product].astype(np.int16),
        pattern=pattern[product].astype(np.int16),
        popularity=popularity,
        intro=intro[product].astype(np.int16),
        retire=retire[product].astype(np.int16),
        price_cents=price_cents[product],
        has_image=~without_image[product],
    )


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _vocabulary_columns(ptype: np.ndarray, group: np.ndarray, pattern: np.ndarray,
                        colour: np.ndarray) -> pd.DataFrame:
    """The Kaggle code/name columns for each article, looked up from the vocabulary tables."""
    def lookup(rows: list[tuple], keys: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        values = np.array(rows, dtype=object)[keys]
        return {name: values[:, i] for i, name in enumerate(names)}

    n_groups = len(GROUPS)
    type_group_rows = []
    for t in PRODUCT_TYPES:
        for g in GROUPS:
            index_code, index_name = index_of(t, g)
            department = t.departments.get(index_code, (-1, "", -1, "", -1, ""))
            type_group_rows.append((t.no, t.name, t.product_group, *department[:2], index_code, index_name,
                                    g.no, g.name, *department[2:]))
    columns = {
        **lookup(type_group_rows, ptype * n_groups + group,
                 ["product_type_no", "product_type_name", "product_group_name", "department_no", "department_name",
                  "index_code", "index_name", "index_group_no", "index_group_name", "section_no", "section_name",
                  "garment_group_no", "garment_group_name"]),
        **lookup([(p.no, p.name) for p in PATTERNS], pattern,
                 ["graphical_appearance_no", "graphical_appearance_name"]),
        **lookup([(c.code, c.name, c.value_id, c.value_name, c.master_id, c.master_name) for c in COLOURS], colour,
                 ["colour_group_code", "colour_group_name", "perceived_colour_value_id",
                  "perceived_colour_value_name", "perceived_colour_master_id", "perceived_colour_master_name"]),
    }  # fmt: skip
    frame = pd.DataFrame(columns)
    numeric = [c for c in frame.columns if c.endswith(("_no", "_id")) and c != "article_id"]
    return frame.astype({c: np.int64 for c in numeric})


# --- customers -----------------------------------------------------------------------------------------


@dataclass
class Customers:
    ids: np.ndarray  # 64-hex customer_id, in generation order
    group: np.ndarray
    types: np.ndarray  # (n, 2) favourite product types, -1 = none
    colours: np.ndarray  # (n, 3) favourite colours, -1 = none
    online: np.ndarray  # probability of buying online (sales channel 2)
    activity: np.ndarray  # relative number of purchases
    first_day: np.ndarray  # when the customer starts / stops buying
    last_day: np.ndarray
    table: pd.DataFrame  # customers.csv rows, sorted by customer_id


def _hex_ids(seed: int, kind: str, n: int) -> np.ndarray:
    return np.array([hashlib.sha256(f"lookbook-demo/{seed}/{kind}/{i}".encode()).hexdigest() for i in range(n)])


def make_customers(n_customers: int, seed: int) -> Customers:
    rng = random_stream(seed, "customers")
    n = n_customers
    group = rng.choice(len(GROUPS), n, p=[g.weight for g in GROUPS])

    type_log_weights = np.where(SELLS.T, np.log([t.weight for t in PRODUCT_TYPES]), -np.inf).astype(np.float32)
    types = _weighted_top_k(rng, type_log_weights[group], 2).astype(np.int8)
    types[rng.random(n) < 0.5, 1] = -1
    colour_log_weights = np.log([c.weight for c in COLOURS]).astype(np.float32)
    colours = _weighted_top_k(rng, np.broadcast_to(colour_log_weights, (n, len(COLOURS))), 3).astype(np.int8)
    colours[rng.random(n) < 0.5, 2] = -1

    online = rng.beta(2.5, 1.2, n)
    activity = rng.lognormal(0.0, 0.9, n)
    first_day = np.maximum(0, rng.integers(-500, len(DAYS) - 90, n))
    churned = rng.random(n) < 0.2
    last_day = np.where(churned, np.minimum(first_day + rng.integers(90, 500, n), len(DAYS) - 1), len(DAYS) - 1)

    ids = _hex_ids(seed, "customer", n)
    n_postcodes = max(1, n // 3)
    postcodes = _hex_ids(seed, "postcode", n_postcodes)[(n_postcodes * rng.random(n) ** 2).astype(np.int64)]
    member = rng.random(n) < 0.36
    mean_age, sd_age = np.array([g.age for g in GROUPS], dtype=float)[group].T
    age = pd.array(np.clip(np.round(rng.normal(mean_age, sd_age)), 16, 90).astype(np.int64), dtype="Int64")
    age[rng.random(n) < 0.01] = pd.NA
    table = pd.DataFrame({
        "customer_id": ids,
        "FN": np.where(member, "1.0", ""),
        "Active": np.where(member & (rng.random(n) < 0.96), "1.0", ""),
        "club_member_status": rng.choice(["ACTIVE", "PRE-CREATE", "LEFT CLUB", ""], n, p=[0.92, 0.07, 0.005, 0.005]),
        "fashion_news_frequency": np.where(member, rng.choice(["Regularly", "Monthly"], n, p=[0.97, 0.03]),
                                           rng.choice(["NONE", ""], n, p=[0.985, 0.015])),
        "age": age,
        "postal_code": postcodes,
    }).sort_values("customer_id", kind="stable", ignore_index=True)  # fmt: skip
    return Customers(ids, group, types, colours, online, activity, first_day, last_day, table)


def planted_tastes(n_customers: int = 500, seed: int = 0) -> pd.DataFrame:
    """The tastes `generate_demo` planted in its customers: what recommendations should recover.

    One row per customer: customer_id, index_group_name, product_types (1-2 product_type_name values),
    colours (2-3 colour_group_name values).
    """
    customers = make_customers(n_customers, seed)
    return pd.DataFrame({
        "customer_id": customers.ids,
        "index_group_name": [GROUPS[g].name for g in customers.group],
        "product_types": [tuple(PRODUCT_TYPES[t].name for t in row if t >= 0) for row in customers.types],
        "colours": [tuple(COLOURS[c].name for c in row if c >= 0) for row in customers.colours],
    })  # fmt: skip


# --- transactions --------------------------------------------------------------------------------------

TASTE_SHARE = 0.80  # purchases that follow the customer's tastes
REPURCHASE_SHARE = 0.08  # buying again something bought before (when still on sale)
FAVOURITE_COLOUR_SHARE = 0.5
OWN_GROUP_SHARE = 0.7
SEASON_STRICTNESS = 0.5  # 0: tastes ignore the season, 1: a type sells in proportion to its season
BASKET_SHARE = 0.6  # a purchase made on the same day as the customer's previous one
DISCOUNTS = np.array([0.5, 0.6, 0.7, 0.8])
ROWS_PER_BLOCK = 2_000_000  # bounds the memory of the generation


class _CellSampler:
    """Draws articles by weight within cells (e.g. period x type x colour), for many rows at once."""

    SIZES = {"period": N_PERIODS, "group": len(GROUPS), "type": len(PRODUCT_TYPES), "colour": len(COLOURS)}

    def __init__(self, fields: tuple[str, ...], entries: dict[str, np.ndarray], weights: np.ndarray):
        self.fields = fields
        cells = self.cell(entries)
        order = np.argsort(cells, kind="stable")
        self.articles = entries["article"][order]
        self.cumulative = np.cumsum(weights[order])
        self.cells, self.start = np.unique(cells[order], return_index=True)
        self.stop = np.append(self.start[1:], len(order))

    def cell(self, values: dict[str, np.ndarray]) -> np.ndarray:
        key = np.zeros(len(values["period"]), np.int64)
        for name in self.fields:
            key = key * self.SIZES[name] + values[name]
        return key

    def sample(self, rows: dict[str, np.ndarray], uniform: np.ndarray) -> np.ndarray:
        """An article per row, -1 where the row's cell is empty."""
        cells = self.cell(rows)
        pos = np.searchsorted(self.cells, cells).clip(max=len(self.cells) - 1)
        found = self.cells[pos] == cells
        start, stop = self.start[pos], self.stop[pos]
        low = np.where(start > 0, self.cumulative[start - 1], 0.0)
        high = self.cumulative[stop - 1]
        hit = np.searchsorted(self.cumulative, low + uniform * (high - low), side="right").clip(start, stop - 1)
        return np.where(found, self.articles[hit], -1)


def _samplers(articles: Articles, season: np.ndarray) -> list[_CellSampler]:
    """From the most specific cell to the broadest; the last (period only) also serves popular purchases."""
    on_sale = (articles.retire - articles.intro + 1).astype(np.int64)
    article = np.repeat(np.arange(len(on_sale)), on_sale)
    period = articles.intro[article] + np.arange(len(article)) - np.repeat(np.cumsum(on_sale) - on_sale, on_sale)
    entries = {"article": article, "period": period, "group": articles.group[article],
               "type": articles.type[article], "colour": articles.colour[article]}  # fmt: skip
    # New arrivals sell best in their first months: "what is selling now" matters.
    age = period - articles.intro[article]
    launch = np.where(articles.intro[article] > 0, 1 + 2 * np.exp(-age / 4), 1.0)
    weights = articles.popularity[article] * season[entries["type"], period] * launch
    return [_CellSampler(fields, entries, weights) for fields in (
        ("period", "group", "type", "colour"), ("period", "type", "colour"), ("period", "group", "type"),
        ("period", "type"), ("period",))]  # fmt: skip


@dataclass
class Transactions:
    day: np.ndarray  # int16 index into DAYS
    customer: np.ndarray  # int32, generation order
    article: np.ndarray  # int32 row
    price_cents: np.ndarray  # int16
    channel: np.ndarray  # int8, 1 store / 2 online


def make_transactions(articles: Articles, customers: Customers, n_transactions: int, seed: int,
                       report: Progress) -> Transactions:
    rng = random_stream(seed, "transactions")
    calendar = _calendar()
    samplers = _samplers(articles, calendar["season"])
    counts = rng.multinomial(n_transactions, customers.activity / customers.activity.sum())
    ends = np.cumsum(counts)
    out = Transactions(np.empty(n_transactions, np.int16), np.empty(n_transactions, np.int32),
                        np.empty(n_transactions, np.int32), np.empty(n_transactions, np.int16),
                        np.empty(n_transactions, np.int8))
    # Blocks of whole customers, so memory stays bounded at any scale.
    thresholds = np.arange(ROWS_PER_BLOCK, n_transactions, ROWS_PER_BLOCK)
    last_customers = np.unique(np.append(np.searchsorted(ends, thresholds), len(counts) - 1))
    first_customer = 0
    for last_customer in last_customers.tolist():
        block = slice(first_customer, last_customer + 1)
        rows = slice(int(ends[first_customer] - counts[first_customer]), int(ends[last_customer]))
        _fill_block(out, rows, block, counts[block], articles, customers, calendar, samplers, rng)
        first_customer = last_customer + 1
        report(rows.stop / max(1, n_transactions), f"simulating purchases ({rows.stop:,}/{n_transactions:,})")
    return out


def _fill_block(out: Transactions, rows: slice, block: slice, counts: np.ndarray, articles: Articles,
                customers: Customers, calendar: dict, samplers: list[_CellSampler],
                rng: np.random.Generator) -> None:
    cust = np.repeat(np.arange(block.start, block.stop, dtype=np.int32), counts)
    n = len(cust)
    if n == 0:
        return
    first_row = np.repeat(np.cumsum(counts) - counts, counts)
    is_first = first_row == np.arange(n)

    # Days within the customer's active span, following the calendar's weights; sorted per customer.
    cdf = calendar["cdf"]
    low = np.where(customers.first_day[cust] > 0, cdf[customers.first_day[cust] - 1], 0.0)
    high = cdf[customers.last_day[cust]]
    day = np.searchsorted(cdf, low + rng.random(n) * (high - low), side="right").clip(
        customers.first_day[cust], customers.last_day[cust])
    key = (cust.astype(np.int64) - block.start) << 10 | day
    key.sort()
    day = key & 1023
    # Baskets: a purchase often shares the day (and the channel) of the customer's previous one.
    same_basket = (rng.random(n) < BASKET_SHARE) & ~is_first
    source = np.where(same_basket, 0, np.arange(n))
    np.maximum.accumulate(source, out=source)
    day = day[source]
    channel = np.where(rng.random(n) < customers.online[cust], 2, 1)[source]
    period = day // PERIOD_DAYS

    # Tastes: one of the favourite types (weighted by season), often a favourite colour and the own group.
    kind = rng.random(n)
    popular = (kind >= TASTE_SHARE) & (kind < 1 - REPURCHASE_SHARE)
    fav_types = customers.types[cust]
    season = calendar["season"]
    first_weight = season[fav_types[:, 0], period]
    second_weight = np.where(fav_types[:, 1] >= 0, season[fav_types[:, 1].clip(0), period], 0.0)
    second = rng.random(n) * (first_weight + second_weight) >= first_weight
    ptype = np.where(second, fav_types[:, 1], fav_types[:, 0])
    # Out of season, a taste purchase often gives way to a popular in-season one (few shorts in January).
    in_season = season[ptype, period] / season.max(axis=1)[ptype]
    popular |= rng.random(n) >= in_season**SEASON_STRICTNESS
    fav_colours = customers.colours[cust]
    n_fav_colours = (fav_colours >= 0).sum(axis=1)
    favourite = fav_colours[np.arange(n), (rng.random(n) * n_fav_colours).astype(np.int64)]
    wanted = {"period": period, "group": customers.group[cust], "type": ptype, "colour": favourite}
    # Soft constraints: a row asks for its colour / group only sometimes, so purchases spread over the
    # catalogue; a sampler serves a row when it asks no more than the row does (empty cells fall through).
    asks = {"colour": rng.random(n) < FAVOURITE_COLOUR_SHARE, "group": rng.random(n) < OWN_GROUP_SHARE}

    article = np.full(n, -1, np.int64)
    uniform = rng.random(n)
    for sampler in samplers:
        eligible = (article < 0) & ~popular
        for name, asked in asks.items():
            if name in sampler.fields:
                eligible &= asked
        todo = np.flatnonzero(eligible)
        article[todo] = sampler.sample({k: v[todo] for k, v in wanted.items()}, uniform[todo])
    todo = np.flatnonzero(popular)
    article[todo] = samplers[-1].sample({"period": period[todo]}, uniform[todo])

    # Repurchases of an earlier purchase that is still on sale.
    earlier = first_row + (rng.random(n) * (np.arange(n) - first_row)).astype(np.int64)
    again = article[earlier]
    repurchase = (kind >= 1 - REPURCHASE_SHARE) & ~is_first
    repurchase &= (articles.intro[again] <= period) & (period <= articles.retire[again])
    article = np.where(repurchase, again, article)

    # Prices: the shelf price, often discounted during sales.
    shelf = articles.price_cents[article]
    discounted = rng.random(n) < np.where(calendar["sale"][day], 0.45, 0.08)
    factor = DISCOUNTS[rng.integers(0, len(DISCOUNTS), n)]
    price = np.where(discounted, (shelf * factor // 100).astype(np.int32) * 100 + 99, shelf)

    out.day[rows], out.customer[rows], out.article[rows] = day, cust, article
    out.price_cents[rows], out.channel[rows] = price, channel
