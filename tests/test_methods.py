"""The named methods on hand-made candidates (exact orders), the week-and-customer bootstrap, and the
choice rule on weeks with known scores."""
from __future__ import annotations

import numpy as np
import pytest

from recommender.collab.candidates import SOURCES, Candidates, Purchases
from recommender.collab.methods import FUSION_K, METHODS, check_method, ensemble_terms, order_scores
from recommender.errors import InputError
from recommender.evaluate import choose, paired_bootstrap, week_bootstrap


def hand_made(ranks: dict[str, list[float]], n: int) -> Candidates:
    table = np.full((n, len(SOURCES)), np.nan, np.float32)
    for source, values in ranks.items():
        table[:, SOURCES.index(source)] = values
    empty = Purchases(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int8))
    return Candidates(np.arange(10, 10 + n), table, table.copy(), (np.zeros(0, np.int64), np.zeros(0)), empty)


NAN = np.nan
# Four candidates (articles 10..13): the ranker prefers 10 > 11 > 12 > 13; ALS proposed 13 first and 12
# second; last purchases proposed 12 first.
CANDS = hand_made({"als": [NAN, NAN, 2, 1], "last_purchases": [NAN, NAN, 1, NAN]}, 4)
RANKER = np.array([0.9, 0.5, 0.1, -0.3])


def test_ensemble_is_reciprocal_rank_fusion_of_its_three_lists():
    terms = ensemble_terms(CANDS, RANKER)
    expected = np.array([[1 / (FUSION_K + 1), 0, 0],
                         [1 / (FUSION_K + 2), 0, 0],
                         [1 / (FUSION_K + 3), 1 / (FUSION_K + 2), 1 / (FUSION_K + 1)],
                         [1 / (FUSION_K + 4), 1 / (FUSION_K + 1), 0]])  # fmt: skip
    assert terms == pytest.approx(expected)
    fused = order_scores("ensemble", CANDS, RANKER)
    # 12 is in all three lists, 13 in two: they overtake the ranker's own first two.
    assert np.argsort(-fused, kind="stable").tolist() == [2, 3, 0, 1]


def test_candidate_methods_order_by_their_own_list():
    assert np.argsort(-order_scores("ranker", CANDS, RANKER), kind="stable").tolist() == [0, 1, 2, 3]
    assert (order_scores("ranker", CANDS, RANKER) > 0).all()  # every candidate stays selectable
    heuristic = order_scores("last purchases + popular", CANDS, RANKER)
    assert heuristic.tolist() == [0, 0, 3, 0]  # only what the heuristic proposed …
    trending = hand_made({"last_purchases": [NAN, NAN, 1, NAN], "trending": [2, NAN, NAN, 1]}, 4)
    # … then the week's trend, below it (bought articles left out of the heuristic's own list)
    assert order_scores("last purchases + popular", trending, RANKER).tolist() == [0.5, 0, 3, 1]
    with pytest.raises(ValueError):
        order_scores("als", CANDS, RANKER)


def test_unknown_method_names_the_choices():
    assert check_method("ensemble") == "ensemble"
    with pytest.raises(InputError, match="unknown method 'best'.*ranker, ensemble, blend"):
        check_method("best")
    assert METHODS[:2] == ("ranker", "ensemble")


def test_week_bootstrap_resamples_weeks_as_well_as_customers():
    # Two weeks, every customer of a week alike: customers-only resampling sees no uncertainty at all,
    # resampling the weeks sees that a third week could be either.
    weeks = [np.zeros(100), np.ones(100)]
    low, high = week_bootstrap(weeks, samples=4000)
    assert low == pytest.approx(0.0) and high == pytest.approx(1.0)
    assert paired_bootstrap(weeks, [np.zeros(100)] * 2) == pytest.approx((0.0, 1.0))
    # Identical weeks of a constant: exactly that constant.
    assert week_bootstrap([np.full(50, 0.3)] * 5) == pytest.approx((0.3, 0.3))
    # One week: customers resampled only, about ±1.96 sd / sqrt(n) for a mean of 0.5.
    rng = np.random.default_rng(2)
    week = rng.normal(0.5, 1.0, 4000)
    low, high = week_bootstrap([week])
    half = 1.96 / np.sqrt(4000)
    assert low == pytest.approx(week.mean() - half, abs=0.005) and high == pytest.approx(week.mean() + half, abs=0.005)
    assert week_bootstrap([]) == (0.0, 0.0)


def test_choice_prefers_the_steadier_method_to_the_higher_but_erratic_one():
    # "erratic" averages 0.5 but is 0 in half the weeks; "steady" averages 0.45 every week.
    erratic = [np.full(80, v) for v in (1.0, 0.0, 1.0, 0.0, 1.0, 0.0)]
    steady = [np.full(80, 0.45) for _ in range(6)]
    scores = {m: [np.zeros(80)] * 6 for m in METHODS}
    scores["ranker"], scores["ensemble"] = erratic, steady
    choice = choose(scores)
    assert choice["method"] == "ensemble"
    assert choice["lower_bounds"]["ensemble"] == pytest.approx(0.45)
    assert choice["lower_bounds"]["ranker"] < 0.45
    # Equal bounds: the earlier row (the order of METHODS) wins.
    scores["ranker"] = steady
    assert choose(scores)["method"] == "ranker"
