"""Each candidate source and the features on a tiny hand-made transaction table with known answers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.catalog import Catalog
from recommender.collab import CollabParams, CollabState
from recommender.collab.blend import profile, rank
from recommender.collab.topk import SETS_PER_PICK, top_rows
from recommender.collab import candidates as src
from recommender.collab.candidates import SOURCES, Window, age_buckets, candidates_block
from recommender.collab.features import FEATURES, features_block
from recommender.collab.history import CustomerHistory
from recommender.collab.stats import robust_end
from recommender.lookalikes import Looks, product_codes

LAST = np.datetime64("2020-09-20", "ns")  # the last day of sales: "now" is the day after
#            product  type        colour   index group
ARTICLES = [("P1", "Dress", "Red", "Ladieswear"),     # 0
            ("P1", "Dress", "Blue", "Ladieswear"),    # 1  another colour of 0
            ("P2", "Top", "Black", "Ladieswear"),     # 2
            ("P3", "Trousers", "Grey", "Menswear"),   # 3
            ("P4", "Shirt", "White", "Menswear"),     # 4
            ("P5", "Skirt", "Black", "Ladieswear"),   # 5
            ("P6", "Hoodie", "Grey", "Divided"),      # 6
            ("P7", "Sweater", "Red", "Menswear")]     # 7  fmt: skip
CUSTOMERS = {"A": 22, "B": 23, "C": 40, "D": 41, "E": 24}  # E buys nothing
# (customer, article, days before LAST, price, channel)
PURCHASES = [("A", 0, 20, 0.05, 2), ("A", 2, 1, 0.02, 2), ("A", 2, 0, 0.02, 1),
             ("B", 2, 3, 0.02, 2), ("B", 5, 3, 0.03, 2),
             ("C", 3, 1, 0.04, 1), ("C", 4, 1, 0.03, 1), ("C", 7, 40, 0.03, 1),
             ("D", 3, 5, 0.04, 2), ("D", 6, 2, 0.01, 2), ("D", 7, 10, 0.03, 2)]  # fmt: skip


def customer_id(name: str) -> str:
    return name.lower() * 64


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    articles = pd.DataFrame(
        {
            "article_id": [f"{100 + i:010d}" for i in range(len(ARTICLES))],
            "product_code": [a[0] for a in ARTICLES],
            "prod_name": [f"{a[1]} {a[2]}" for a in ARTICLES],
            "product_type_name": [a[1] for a in ARTICLES],
            "colour_group_name": [a[2] for a in ARTICLES],
            "index_group_name": [a[3] for a in ARTICLES],
            "has_image": True,
        }
    )
    names = list(CUSTOMERS)
    rows = sorted(PURCHASES, key=lambda p: -p[2])
    transactions = pd.DataFrame(
        {
            "t_dat": [LAST - np.timedelta64(p[2], "D") for p in rows],
            "customer": np.array([names.index(p[0]) for p in rows], np.int32),
            "article": np.array([p[1] for p in rows], np.int32),
            "price": np.array([p[3] for p in rows], np.float32),
            "sales_channel_id": np.array([p[4] for p in rows], np.int8),
        }
    )
    ids = np.array([customer_id(n) for n in names], dtype=object)
    customers = pd.DataFrame({"customer_id": ids, "age": [float(CUSTOMERS[n]) for n in names]})
    return Catalog(Path("/nowhere/tiny"), articles, customers, transactions, ids, "tiny")


@pytest.fixture(scope="module")
def window(catalog) -> Window:
    return Window(CollabState.fit(catalog, CollabParams(factors=4, iterations=3)))


def code(name: str) -> int:
    return list(CUSTOMERS).index(name)


def proposed(source, window, name, n=10, **kwargs):
    if source.__name__ in src.BLOCK_SOURCES:  # computed for a block of customers: here a block of one
        near = [kwargs["near"]] if "near" in kwargs else None
        articles, scores = source(window, window.block([code(name)], near=near), n)[0]
    else:
        articles, scores = source(window, code(name), window.purchases(code(name)), n, **kwargs)
    return articles.tolist(), scores



def candidates(window: Window, customer: int, per_source: int, exclude=None):
    """One customer's candidates: a block of one."""
    return candidates_block(window, window.block([customer]), per_source, [exclude])[0]

def test_repurchase_is_time_decayed(window):
    articles, scores = proposed(src.repurchase, window, "A")
    assert articles == [2, 0]  # bought 1 and 2 days ago, twice, before the one of 21 days ago
    assert scores[0] == pytest.approx(2 ** (-1 / 14) + 2 ** (-2 / 14))
    assert scores[1] == pytest.approx(2 ** (-21 / 14))
    assert proposed(src.repurchase, window, "E")[0] == []


def test_other_colours_of_bought_products(window):
    assert proposed(src.other_colours, window, "A")[0] == [1]
    assert proposed(src.other_colours, window, "C")[0] == []  # C's products have one colour each


def test_customers_like_you_vote_with_recent_purchases(window):
    # B as A's only neighbour: B's purchases of the last 30 days, ties by article row.
    near = (np.array([code("B")]), np.array([0.9], np.float32))
    articles, scores = proposed(src.neighbours, window, "A", near=near)
    assert articles == [2, 5] and scores.tolist() == pytest.approx([0.9, 0.9])
    # Two neighbours: an article both bought gets both votes; C's 40-day-old purchase is too old.
    near = (np.array([code("C"), code("D")]), np.array([0.5, 0.25], np.float32))
    articles, scores = proposed(src.neighbours, window, "A", near=near)
    assert articles == [3, 4, 6, 7] and scores.tolist() == pytest.approx([0.75, 0.5, 0.25, 0.25])


def test_als_top_n_is_the_factor_ranking_of_selling_articles(window):
    articles, _ = proposed(src.als, window, "C", n=3)
    factors = window.state.als
    expected = np.argsort(-(factors.item_factors @ factors.user_factors[code("C")]), kind="stable")
    assert articles == [a for a in expected if window.sales_30d[a] > 0][:3]
    assert proposed(src.als, window, "E")[0] == []


def test_bought_together_within_a_customers_week(window):
    assert proposed(src.bought_together, window, "A")[0] == [5]  # B bought 2 with 5
    # C bought 3 with 4; D bought 3 (5 days ago) and 6 (2 days ago) within the same 7-day bucket.
    assert proposed(src.bought_together, window, "D")[0] == [4]


def test_trending_overall_by_age_and_by_index_group(window):
    # Sales of the last 30 days decayed by day: 2 sold 4× in the last days, 3 twice; 0 (21 days ago) last.
    articles, _ = proposed(src.trending, window, "E")
    assert articles[:2] == [2, 3] and articles[-1] == 0 and set(articles) == {0, 2, 3, 4, 5, 6, 7}
    # Under-25s (A, B): 2 (3 sold) before 5 (1 sold); 40–44s (C, D) bought 3 twice.
    assert proposed(src.age_trending, window, "E")[0] == [2, 5]
    assert proposed(src.age_trending, window, "C")[0][0] == 3
    # C buys Menswear: the Menswear articles only.
    assert set(proposed(src.index_group_trending, window, "C")[0]) == {3, 4, 7}
    assert proposed(src.index_group_trending, window, "E")[0] == []
    assert proposed(src.popular, window, "E")[0][:2] == [2, 3]


def test_last_purchases_then_the_weeks_best_sellers(window):
    # A's own articles, most recent first (2 today, 0 three weeks ago), then the last 7 days' best sellers
    # not already listed: 2 (3 sold), 3 (2 sold), then 4, 5, 6 (1 each, by article row); 7 sold 11 days ago.
    articles, scores = proposed(src.last_purchases, window, "A")
    assert articles == [2, 0, 3, 4, 5, 6] and scores.tolist() == [10, 9, 8, 7, 6, 5]
    assert proposed(src.last_purchases, window, "E")[0] == [2, 3, 4, 5, 6]
    assert proposed(src.last_purchases, window, "A", n=3)[0] == [2, 0, 3]


def test_blend_source_is_the_hand_weighted_blend(window):
    state = window.state
    for name in ["A", "C", "E"]:
        expected = rank(state, profile(state, code(name)), 5, exclude_bought=False)[0].tolist()
        assert proposed(src.blend, window, name, n=5)[0] == expected, name
    # At an earlier cut the blend sees only the purchases before it: D's purchases of the last 2 days
    # (article 6) are unknown 3 days before the end.
    earlier = Window(state, until=LAST - np.timedelta64(2, "D"))
    seen = earlier.profile(earlier.purchases(code("D")), state.factor(code("D")), (np.zeros(0, np.int64), np.zeros(0)))
    assert seen.articles.tolist() == [3, 7] and seen.counts.tolist() == [1, 1]


def test_candidates_remember_sources_and_ranks(window):
    cands = candidates(window, code("A"), per_source=10)
    frame = cands.frame().set_index("article")
    assert frame.at[2, "rank_repurchase"] == 1 and frame.at[0, "rank_repurchase"] == 2
    assert frame.at[1, "rank_other_colours"] == 1
    assert frame.at[5, "rank_bought_together"] == 1
    assert np.isnan(frame.at[1, "rank_repurchase"])
    # Excluded articles are never proposed.
    assert 2 not in candidates(window, code("A"), 10, exclude=np.array([2])).articles
    # A customer without history still gets trending and popular candidates.
    empty = candidates(window, code("E"), per_source=10).frame()
    assert len(empty) and empty["rank_repurchase"].isna().all() and empty["rank_trending"].notna().any()
    assert list(empty.columns) == ["article"] + [f"rank_{s}" for s in SOURCES]


def test_feature_values_on_known_rows(window):
    cands = candidates(window, code("A"), per_source=10)
    X = pd.DataFrame(features_block(window, [code("A")], [cands])[0], columns=FEATURES, index=cands.articles)
    assert X.at[2, "days_since_bought_article"] == 1 and X.at[2, "times_bought"] == 2
    assert np.isnan(X.at[1, "days_since_bought_article"]) and X.at[1, "days_since_bought_product"] == 21
    assert X.at[1, "type_share"] == pytest.approx(1 / 3)  # one Dress among three purchases
    assert X.at[5, "colour_share"] == pytest.approx(2 / 3)  # two Black purchases
    assert X.at[5, "index_group_share"] == pytest.approx(1.0)
    assert X.at[2, "purchases"] == 3 and X.at[2, "days_since_last_purchase"] == 1
    assert X.at[2, "online_share"] == pytest.approx(2 / 3) and X.at[2, "age_bucket"] == 0
    assert X.at[5, "price_ratio"] == pytest.approx(0.03 / np.mean([0.05, 0.02, 0.02]), rel=1e-5)
    assert X.at[2, "sales_1d"] == 1 and X.at[2, "sales_7d"] == 3 and X.at[0, "sales_30d"] == 1
    assert X.at[2, "article_age"] == 4  # first sold by B 3 days before the last day: 4 before "now"
    assert X.at[2, "sources"] == np.isfinite(cands.ranks[list(cands.articles).index(2)]).sum()


def _top_by_sorting(row: np.ndarray, n: int) -> list[int]:
    """The reference: every positive score sorted, best first, ties to the lower column."""
    positive = np.flatnonzero(row > 0)
    return positive[np.lexsort((positive, -row[positive]))][:n].tolist()


def _best_in_one_set(rng) -> np.ndarray:
    """Rows whose best scores all fall in one of the bound's strided column sets (for n = 48)."""
    rows = rng.random((7, 20_000))
    sets = 20_000 // (20_000 // (48 * SETS_PER_PICK))
    rows[:, ::sets] += 10.0
    return rows


@pytest.mark.parametrize("kind", ["random", "few values", "best at the end", "best in one set", "few positive",
                                  "negative"])
def test_top_rows_of_wide_rows_equals_sorting_them(kind):
    # Rows wide enough for the bound from strided column sets (the blend's and ALS's blocks): the same
    # columns and scores as sorting each row, ties included, whatever the layout of the best columns.
    rng = np.random.default_rng(len(kind))
    scores = {"random": lambda: rng.standard_normal((7, 20_000)),
              "few values": lambda: rng.integers(-1, 4, (7, 20_000)),
              "best at the end": lambda: np.sort(rng.random((7, 20_000)), axis=1),
              "best in one set": lambda: _best_in_one_set(rng),
              "few positive": lambda: np.where(rng.random((7, 20_000)) < 0.001, 1.0, 0.0),
              "negative": lambda: -rng.random((7, 20_000))}[kind]().astype(np.float32)
    for n in (1, 12, 48, 300):
        for row, (columns, values) in zip(scores, top_rows(scores, n)):
            assert columns.tolist() == _top_by_sorting(row, n)
            assert values.tolist() == row[columns].tolist()


def test_age_buckets():
    assert age_buckets(np.array([16, 24.9, 25, 34, 35, 64, 65, 99, np.nan])).tolist() == [0, 0, 1, 1, 2, 4, 5, 5, -1]


def test_history_index_finds_each_customers_rows(catalog):
    history = CustomerHistory(catalog.transactions, len(CUSTOMERS))
    tx = catalog.transactions
    for name in CUSTOMERS:
        rows = history.transaction_rows(code(name))
        assert rows.tolist() == np.flatnonzero(tx["customer"].to_numpy() == code(name)).tolist()
    assert history.count(code("E")) == 0


def test_one_far_future_row_does_not_move_now():
    days = np.repeat(np.arange("2020-08-01", "2020-09-01", dtype="datetime64[D]"), 20).astype("datetime64[ns]")
    assert robust_end(days) == np.datetime64("2020-09-01", "ns")
    stray = np.append(days, np.datetime64("2031-01-01", "ns"))
    assert robust_end(stray) == np.datetime64("2020-09-01", "ns")


# Content vectors for "looks like what you bought": unit rows over 4 directions.
_r = np.sqrt(0.5)
VECTORS = np.array([[1, 0, 0, 0], [1, 0, 0, 0],                 # 0, 1: one product, the same look
                    [0, 1, 0, 0], [0, 0, 1, 0],                 # 2, 3
                    [0, np.sqrt(1 - 0.81), 0.9, 0], [_r, _r, 0, 0],  # 4: close to 3; 5: between 0 and 2
                    [0, 0, 0, 1], [0.8, 0, 0, 0.6]], np.float32)  # 6; 7: close to 0  fmt: skip


def looks_of(catalog, vectors) -> Looks:
    return Looks.from_vectors(vectors, product_codes(catalog))


@pytest.fixture(scope="module")
def looks_window(catalog) -> Window:
    return Window(CollabState.fit(catalog, CollabParams(factors=4, iterations=3), looks=looks_of(catalog, VECTORS)))


def test_lookalike_table_lists_other_products_best_first(catalog):
    looks = looks_of(catalog, VECTORS)
    assert looks.neighbours[0][:2].tolist() == [7, 5]  # 1 is P1 too: never its own look-alike
    assert looks.similarities[0][:2].tolist() == pytest.approx([0.8, _r])
    assert looks.neighbours[3][0] == 4 and looks.similarities[3][0] == pytest.approx(0.9)
    assert (looks.neighbours[0] >= 0).sum() == 6  # 8 articles less itself and its other colour; -1 after


def test_looks_like_what_you_bought(looks_window):
    # A's seeds, newest first: 2 (bought 1 day before now), 0 (21 days). Products P1 and P2 are A's own:
    # 1 (P1's other colour) is other_colours' to propose. 5 is 0.707 from both seeds, 7 is 0.8 from 0,
    # 4 is 0.436 from 2; 3 and 6 look like neither.
    articles, scores = proposed(src.looks_like, looks_window, "A")
    assert articles == [5, 7, 4]
    assert scores.tolist() == pytest.approx([_r * 2 ** (-1 / 30), 0.8 * 2 ** (-21 / 30), np.sqrt(0.19) * 2 ** (-1 / 30)])
    # D's seeds: 6 (3 days), 3 (6 days), 7 (11 days). 0 and 1 are one product that looks like 7: once.
    articles, scores = proposed(src.looks_like, looks_window, "D")
    assert articles == [4, 0, 5]
    assert scores.tolist() == pytest.approx([0.9 * 2 ** (-6 / 30), 0.8 * 2 ** (-11 / 30), 0.8 * _r * 2 ** (-11 / 30)])
    assert proposed(src.looks_like, looks_window, "E")[0] == []  # nothing bought: nothing to look like
    assert proposed(src.looks_like, looks_window, "D", n=1)[0] == [4]


def test_looks_like_proposes_articles_that_never_sold(catalog):
    # An article nobody bought yet (a new arrival) is proposed like any other: 8 is a new red dress look.
    articles = pd.concat([catalog.articles, catalog.articles.iloc[[0]].assign(article_id="0000000999", product_code="P9")],
                         ignore_index=True)
    grown = Catalog(catalog.root, articles, catalog.customers, catalog.transactions, catalog.customer_ids, "tiny+1")
    vectors = np.vstack([VECTORS, [[0.6, 0, 0, 0.8]]]).astype(np.float32)
    w = Window(CollabState.fit(grown, CollabParams(factors=4, iterations=3), looks=looks_of(grown, vectors)))
    found, _ = src.looks_like(w, code("D"), w.purchases(code("D")), 3)
    assert np.isnan(w.article_age[8]) and found.tolist() == [4, 8, 0]  # 8: 0.8 from 6, D's newest purchase


def test_without_vectors_the_content_source_and_taste_features_are_empty(window):
    assert proposed(src.looks_like, window, "A")[0] == []
    cands = candidates(window, code("A"), 10)
    X = features_block(window, [code("A")], [cands])[0]
    for name in ("content_max_sim", "content_mean_sim", "neighbour_content_sim"):
        assert np.isnan(X[:, FEATURES.index(name)]).all(), name


def test_taste_features_on_known_rows(looks_window):
    cands = candidates(looks_window, code("A"), 10)
    X = features_block(looks_window, [code("A")], [cands])[0]
    row = {int(a): i for i, a in enumerate(cands.articles)}
    at = lambda article, name: X[row[article], FEATURES.index(name)]
    # A's purchases, newest first: 2 (1 day), 0 (21 days); weights 2^(-days/30).
    w2, w0 = 2 ** (-1 / 30), 2 ** (-21 / 30)
    assert at(5, "content_max_sim") == pytest.approx(_r) and at(5, "content_mean_sim") == pytest.approx(_r)
    assert at(7, "content_max_sim") == pytest.approx(0.8)
    assert at(7, "content_mean_sim") == pytest.approx(0.8 * w0 / (w2 + w0))
    assert at(2, "content_max_sim") == pytest.approx(1.0)  # a purchase looks exactly like itself


def test_taste_affinity_and_why_on_known_rows(catalog):
    from recommender.collab.taste import Taste

    state = CollabState.fit(catalog, CollabParams(factors=4, iterations=3))
    # A's purchases: the red dress 0 once, the black top 2 twice: type shares Dress 1/3, Top 2/3; colours
    # Red 1/3, Black 2/3. Without a factor and vectors those two shares are the affinity, averaged.
    taste = Taste(state, np.array([0, 2, 2]))
    affinity, why = taste.affinity(np.array([0, 2, 5, 3]))
    assert affinity.tolist() == pytest.approx([(1 / 3 + 1 / 3) / 2, (2 / 3 + 2 / 3) / 2, (0 + 2 / 3) / 2, 0.0])
    assert why == ["you often buy Dress in Red", "you often buy Top in Black", "you often buy Black", "close to your taste"]
    with_factor = Taste(state, np.array([0, 2, 2]), factor=state.factor(code("A")))
    als = state.als.item_factors[[0, 2]] @ state.factor(code("A"))
    scaled = (als - als.min()) / (als.max() - als.min())  # the ALS signal joins, scaled to [0, 1]
    assert with_factor.affinity(np.array([0, 2]))[0].tolist() == pytest.approx([(1 / 3 + 1 / 3 + scaled[0]) / 3,
                                                                             (2 / 3 + 2 / 3 + scaled[1]) / 3])
    # The ranker's scores join as their rank among the rows (0 the lowest, 1 the highest), weighing
    # RANKER_SHARE; the other signals' mean weighs the rest.
    from recommender.collab.taste import RANKER_SHARE

    scored = Taste(state, np.array([0, 2, 2]), ranker_scores=lambda rows: np.array([0.1, 0.9, 0.5, 0.2])[: len(rows)])
    others = [(1 / 3 + 1 / 3) / 2, (2 / 3 + 2 / 3) / 2, (0 + 2 / 3) / 2, 0.0]
    ranks = [0.0, 1.0, 2 / 3, 1 / 3]
    assert scored.affinity(np.array([0, 2, 5, 3]))[0].tolist() == pytest.approx(
        [(1 - RANKER_SHARE) * o + RANKER_SHARE * r for o, r in zip(others, ranks)])
