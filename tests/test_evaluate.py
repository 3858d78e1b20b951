"""MAP@12 / recall / coverage by hand, the time split, and the blended recommender against the baselines."""
from __future__ import annotations

import dataclasses

import pytest

from recommender.errors import DataError
from recommender.evaluate import average_precision_at_k, coverage, evaluate, map_at_k, recall_at_k

METHODS = ["blended", "als", "customers-like-you", "popular all-time", "popular last week"]


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


def test_evaluate_on_demo_finds_the_planted_tastes(demo_catalog):
    table = evaluate(demo_catalog).set_index("method")
    assert list(table.index) == METHODS
    assert list(table.columns) == ["MAP@12", "recall@12", "coverage", "customers"]
    assert (table["customers"] > 0).all()
    assert table.loc["blended", "MAP@12"] > table.loc["popular all-time", "MAP@12"]
    assert table.loc["blended", "MAP@12"] > table.loc["popular last week", "MAP@12"]
    # Popularity recommends the same 12 articles to everybody.
    assert table.loc["popular all-time", "coverage"] == pytest.approx(12 / len(demo_catalog.articles))
    assert table.loc["blended", "coverage"] > 5 * table.loc["popular all-time", "coverage"]


def test_blended_beats_both_baselines_on_hm_sample(hm_catalog):
    table = evaluate(hm_catalog).set_index("method")
    blended = table.loc["blended", "MAP@12"]
    assert blended > table.loc["popular all-time", "MAP@12"]
    assert blended > table.loc["popular last week", "MAP@12"]
    assert table.loc["blended", "recall@12"] > table.loc["popular last week", "recall@12"]


def test_separate_test_file(demo_catalog, demo_dir, tmp_path):
    tx = demo_catalog.transactions.tail(40)
    lines = ["t_dat,customer_id,article_id,price,sales_channel_id"] + [
        f"{row.t_dat:%Y-%m-%d},{demo_catalog.customer_ids[row.customer]},"
        f"{demo_catalog.articles['article_id'].iat[row.article]},{row.price:.6f},{row.sales_channel_id}"
        for row in tx.itertuples()
    ]
    test_file = tmp_path / "test.csv"
    test_file.write_text("\n".join(lines) + "\n")
    table = evaluate(demo_catalog, test_transactions=test_file).set_index("method")
    assert table["customers"].iat[0] == tx["customer"].nunique()
    # These very purchases are in the training data, so repurchase finds many of them.
    assert table.loc["blended", "recall@12"] > 0.5

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


def test_no_transactions_is_a_clear_error(demo_catalog):
    without = dataclasses.replace(demo_catalog, transactions=demo_catalog.transactions.iloc[:0])
    with pytest.raises(DataError, match="no transactions"):
        evaluate(without)
