"""MAP@12 / recall / coverage by hand, the bootstrap interval, weekly splits, and the ranker against the other rows."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recommender.collab import CollabParams
from recommender.errors import DataError
from recommender.evaluate import test_weeks as weeks_to_test  # a "test_" name would be collected as a test
from recommender.evaluate import (
    METHODS, average_precision_at_k, coverage, evaluate, map_at_k, paired_bootstrap, recall_at_k,
)


def test_average_precision_by_hand():
    # Hits at ranks 1 and 3 of 3 relevant: (1/1 + 2/3) / 3.
    assert average_precision_at_k({"a", "b", "c"}, ["a", "x", "b", "y"]) == pytest.approx((1 + 2 / 3) / 3)
    # A repeated hit counts once; no hits scores 0; nothing to find scores 0.
    assert average_precision_at_k({"a"}, ["a", "a"]) == pytest.approx(1.0)
    assert average_precision_at_k({"a"}, ["x", "y"]) == 0.0
    assert average_precision_at_k(set(), ["a"]) == 0.0
    # Only the first k predictions count, and the denominator is min(|actual|, k).
    assert average_precision_at_k({"a"}, ["x"] * 12 + ["a"]) == 0.0
    many = {str(i) for i in range(20)}
    assert average_precision_at_k(many, [str(i) for i in range(12)]) == pytest.approx(1.0)
    assert average_precision_at_k({"a", "b"}, ["x", "b"], k=2) == pytest.approx((1 / 2) / 2)


def test_map_recall_coverage_by_hand():
    actual = [{"a", "b"}, {"c"}, {"d", "e", "f", "g"}]
    predicted = [["b", "z", "a"], ["z", "y"], ["d", "z", "z", "e"]]
    # AP: (1/1 + 2/3)/2 = 0.8333; 0; (1/1 + 2/4)/4 = 0.375.
    assert map_at_k(actual, predicted) == pytest.approx((5 / 6 + 0 + 0.375) / 3)
    assert recall_at_k(actual, predicted) == pytest.approx((1 + 0 + 0.5) / 3)
    # Distinct predicted items: b z a y d e = 6 of a 10-item catalogue.
    assert coverage(predicted, n_items=10) == pytest.approx(0.6)
    assert map_at_k([], []) == 0.0
    with pytest.raises(ValueError):
        map_at_k([{"a"}], [])


@pytest.fixture(scope="module")
def demo_evaluation(demo_catalog):
    return evaluate(demo_catalog, weeks=5, report_weeks=3)


def test_evaluate_on_demo_is_nested_and_the_ranker_beats_the_baselines(demo_evaluation):
    result = demo_evaluation
    weekly, summary = result.weekly, result.summary.set_index("method")
    assert list(summary.index) == list(METHODS) and len(weekly) == 5 * len(METHODS)
    assert weekly["week"].nunique() == 5 and (weekly["customers"] > 0).all()
    assert not result.notes  # the demo has enough weeks to train the ranker every time
    # Chosen on the two older weeks only, by the rule, and the reference row of the reported summary.
    weeks = sorted(weekly["week"].unique())
    assert result.choice["weeks"] == weeks[:2] and result.choice["method"] in METHODS
    assert result.shipped == result.choice["method"] and summary["shipped"].sum() == 1
    assert summary.at[result.shipped, "shipped"] and summary.at[result.shipped, "shipped ÷ row"] == pytest.approx(1.0)
    # The summary holds the three newest weeks only: the means of their weekly figures.
    newest = weekly[weekly["week"].isin(weeks[2:])].groupby("method")["MAP@12"].mean()
    assert summary["MAP@12"].to_dict() == pytest.approx(newest.to_dict())
    assert (summary["95% low"] <= summary["MAP@12"]).all() and (summary["MAP@12"] <= summary["95% high"]).all()
    ranker = summary.at["ranker", "MAP@12"]
    for row in ["als", "customers-like-you", "popular last week"]:
        assert ranker > summary.at[row, "MAP@12"], row
    # Blocks of 4 weeks, the newest complete: the leader is the best mean of its block.
    blocks = result.blocks
    assert blocks["weeks"].tolist() == [weeks[0], f"{weeks[1]} – {weeks[4]}"]
    newest_block = weekly[weekly["week"].isin(weeks[1:])].groupby("method")["MAP@12"].mean()
    assert blocks["leader"].iat[-1] == newest_block.idxmax()
    # The split by truths that had sold before the week: the demo's buyers buy what sold before.
    assert weekly["MAP@12 sold before"].notna().all()


def test_paired_bootstrap_on_known_cases():
    rng = np.random.default_rng(1)
    b = [rng.random(200), rng.random(300)]
    # A constant improvement of 0.1 for every customer: the interval is exactly 0.1.
    low, high = paired_bootstrap([w + 0.1 for w in b], b, samples=500)
    assert low == pytest.approx(0.1) and high == pytest.approx(0.1)
    # Differences drawn with mean 0.05 and sd 1 over 4 weeks × 2,000 customers: the interval
    # is about ±1.96 × 1 / sqrt(8,000) around the observed mean.
    diffs = [rng.normal(0.05, 1.0, 2000) for _ in range(4)]
    zeros = [np.zeros(2000) for _ in range(4)]
    low, high = paired_bootstrap(diffs, zeros)
    observed = np.mean([d.mean() for d in diffs])
    half = 1.96 / np.sqrt(8000)
    assert low == pytest.approx(observed - half, abs=0.004) and high == pytest.approx(observed + half, abs=0.004)
    assert low < 0.05 < high


def test_blend_beats_popularity_on_hm_sample(hm_catalog):
    # Two training weeks for the ranker keep this fast; the ranker's own figures are in the README.
    summary = evaluate(hm_catalog, CollabParams(ranker_weeks=2), weeks=1).summary.set_index("method")
    assert summary.at["blend", "MAP@12"] > summary.at["popular last week", "MAP@12"]
    assert summary.at["blend", "recall@12"] > summary.at["popular last week", "recall@12"]


def test_separate_test_file(demo_catalog, demo_dir, tmp_path):
    tx = demo_catalog.transactions.tail(40)
    lines = ["t_dat,customer_id,article_id,price,sales_channel_id"] + [
        f"{row.t_dat:%Y-%m-%d},{demo_catalog.customer_ids[row.customer]},"
        f"{demo_catalog.articles['article_id'].iat[row.article]},{row.price:.6f},{row.sales_channel_id}"
        for row in tx.itertuples()
    ]
    # Two customers the data lacks: each is a cold-start customer of their own, never one merged customer.
    strangers = [f"{lines[1].split(',')[0]},{'e' * 63}{n},{lines[1].split(',')[2]},0.01,2" for n in (1, 2)]
    test_file = tmp_path / "test.csv"
    test_file.write_text("\n".join(lines + strangers) + "\n")
    result = evaluate(demo_catalog, test_transactions=test_file)
    weekly = result.weekly.set_index("method")
    assert (weekly["week"] == "file").all() and weekly["customers"].iat[0] == tx["customer"].nunique() + 2
    # The file's purchases are also in the data: training stops before the file's first day, so they
    # never leak in. The same as evaluating on data that ends before it.
    first = tx["t_dat"].iat[0]
    assert any(f"trained on the purchases before {first:%Y-%m-%d}" in note for note in result.notes)
    before = dataclasses.replace(demo_catalog, transactions=demo_catalog.transactions[demo_catalog.transactions["t_dat"] < first],
                                 data_fingerprint="before")
    alone = evaluate(before, test_transactions=test_file).weekly.set_index("method")
    assert weekly["MAP@12"].to_dict() == alone["MAP@12"].to_dict()
    assert weekly.loc["last purchases + popular", "recall@12"] < 0.5  # with the rows in training it was above

    empty = tmp_path / "empty.csv"
    empty.write_text("t_dat,customer_id,article_id,price,sales_channel_id\n")
    with pytest.raises(DataError, match="holds no transactions"):
        evaluate(demo_catalog, test_transactions=empty)
    with pytest.raises(DataError, match="does not exist"):
        evaluate(demo_catalog, test_transactions=tmp_path / "missing.csv")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(lines[0] + "\n" + lines[1].replace(lines[1].split(",")[2], "0000000001") + "\n")
    with pytest.raises(DataError, match="0000000001 is not in articles.csv"):
        evaluate(demo_catalog, test_transactions=unknown)


def test_skip_weeks_moves_the_test_weeks_earlier(demo_catalog):
    last = weeks_to_test(demo_catalog, 4)
    week = np.timedelta64(7, "D")
    assert weeks_to_test(demo_catalog, 2, skip_weeks=3) == [last[0] - week, last[0]]
    assert weeks_to_test(demo_catalog, 4, skip_weeks=4)[-1] == last[0] - week  # the tuning weeks end where the reported start


def test_no_transactions_or_too_few_weeks_are_clear_errors(demo_catalog):
    without = dataclasses.replace(demo_catalog, transactions=demo_catalog.transactions.iloc[:0])
    with pytest.raises(DataError, match="no transactions"):
        evaluate(without)
    with pytest.raises(DataError, match="fewer than 1000 weeks"):
        evaluate(demo_catalog, weeks=1000)
    with pytest.raises(DataError, match="fewer than 1000 weeks"):
        evaluate(demo_catalog, weeks=990, skip_weeks=10)
    with pytest.raises(DataError, match="--skip-weeks must be at least 0"):
        evaluate(demo_catalog, skip_weeks=-1)
    with pytest.raises(DataError, match="at least 1"):
        evaluate(demo_catalog, weeks=0)
