"""Collaborative engine on the small demo catalogue: real implicit ALS and hnswlib, planted tastes as ground truth."""
from __future__ import annotations

import dataclasses
import warnings

import implicit.utils
import numpy as np
import pytest
from implicit.nearest_neighbours import bm25_weight, tfidf_weight

from tests.conftest import DEMO_TEST_SIZE
from recommender.collab import CollabModel, CollabParams, CollabState, single_threaded_blas
from recommender.collab.blend import profile
from recommender.demo import planted_tastes
from recommender.errors import ArtifactError, DataError, InputError
from recommender.interactions import BM25_K1, BM25_B, Confidence, build_interactions
from recommender.store import ArtifactStore

UNKNOWN_CUSTOMER = "f" * 64


@pytest.fixture(scope="session")
def model(demo_catalog) -> CollabModel:
    return CollabModel.fit(demo_catalog)


@pytest.fixture(scope="session")
def tastes(demo_catalog):
    return planted_tastes(DEMO_TEST_SIZE["n_customers"], DEMO_TEST_SIZE["seed"]).set_index("customer_id")


def rich_customers(model, n=30) -> list[str]:
    return model.example_customers(n)


def test_similar_customers_share_planted_tastes(model, tastes):
    shares, random_shares = [], []
    everyone = tastes.index.to_numpy()
    rng = np.random.default_rng(0)
    for customer_id in rich_customers(model):
        mine = set(tastes.at[customer_id, "product_types"])
        similar = model.similar_customers(customer_id, k=10)
        assert len(similar) == 10 and customer_id not in set(similar["customer_id"])
        assert similar["similarity"].is_monotonic_decreasing
        shares.append(np.mean([bool(mine & set(tastes.at[c, "product_types"])) for c in similar["customer_id"]]))
        others = rng.choice(everyone, 10, replace=False)
        random_shares.append(np.mean([bool(mine & set(tastes.at[c, "product_types"])) for c in others]))
    # Most of a customer's 10 nearest share one of its favourite product types; random customers mostly don't.
    assert np.mean(shares) >= 0.7, (np.mean(shares), np.mean(random_shares))
    assert np.mean(shares) > np.mean(random_shares) + 0.3


def test_similar_customers_say_what_they_share(model):
    customer_id = rich_customers(model, 1)[0]
    similar = model.similar_customers(customer_id, k=10)
    mine = set(model.history(customer_id)["product_type_name"])
    for row in similar.itertuples():
        theirs = model.history(row.customer_id)
        shared = set(model.history(customer_id)["article_id"]) & set(theirs["article_id"])
        assert row.shared_articles == len(shared)
        assert set(row.shared_types) <= mine & set(theirs["product_type_name"])
    assert similar["shared_types"].map(len).sum() > 0


def test_hnsw_recall_against_exact_search(model):
    indexed = np.flatnonzero(np.diff(model.state.interactions.counts.indptr) > 0)
    with single_threaded_blas():
        exact, _ = model.state.als.similar_users(indexed, N=11, users=indexed)
    hits = 0
    for code, truth in zip(indexed, exact):
        found = profile(model.state, int(code), neighbours=10).neighbour_codes
        hits += len(set(found.tolist()) & set(truth[truth != code][:10].tolist()))
    assert hits / (10 * len(indexed)) >= 0.98


def test_fold_in_finds_the_neighbours_of_a_retrained_model(demo_catalog, model):
    """A customer left out of training and folded in from their purchases lands among the same customers."""
    overlaps = []
    for customer_id in rich_customers(model, 3):
        code = demo_catalog.customer_code(customer_id)
        tx = demo_catalog.transactions
        without = dataclasses.replace(demo_catalog, transactions=tx[tx["customer"] != code].reset_index(drop=True))
        model_without = CollabModel.fit(without)
        bought = model.history(customer_id)["article_id"].tolist()
        folded = set(model_without.similar_to_items(bought, k=10)["customer_id"])
        retrained = set(model.similar_customers(customer_id, k=10)["customer_id"])
        overlaps.append(len(folded & retrained))
    assert min(overlaps) >= 5 and np.mean(overlaps) >= 6, overlaps


def test_recommendations_follow_the_planted_tastes_with_reasons(model, tastes, demo_catalog):
    distinct = np.diff(model.state.interactions.counts.indptr)
    typical = np.flatnonzero((distinct >= 10) & (distinct <= 40))  # heavy buyers have bought most of their types
    types = demo_catalog.articles["product_type_name"]
    shares, base_rates = [], []
    for code in typical:
        customer_id = demo_catalog.customer_ids[code]
        recs = model.recommend(customer_id, k=12)
        assert len(recs) == 12 and recs["score"].is_monotonic_decreasing
        assert recs["reason"].str.len().gt(0).all()
        liked = set(tastes.at[customer_id, "product_types"])
        shares.append(recs["product_type_name"].isin(liked).mean())
        base_rates.append(types.isin(liked).mean())
    assert np.mean(shares) >= 0.5 and np.mean(shares) > 3 * np.mean(base_rates), (np.mean(shares), np.mean(base_rates))
    reasons = " ".join(model.recommend(demo_catalog.customer_ids[typical[0]], k=12)["reason"])
    assert "customers like you bought it" in reasons or "you buy" in reasons


def test_exclude_bought(model):
    customer_id = rich_customers(model, 1)[0]
    bought = set(model.history(customer_id)["article_id"])
    assert not set(model.recommend(customer_id, k=30)["article_id"]) & bought
    with_bought = model.recommend(customer_id, k=30, exclude_bought=False)
    assert set(with_bought["article_id"]) & bought
    assert with_bought["reason"].str.contains("you bought it before").any()


def test_retired_and_imageless_articles_do_not_crowd_the_list(demo_catalog, model):
    customer_id = rich_customers(model, 1)[0]
    first = model.recommend(customer_id, k=12)["article_id"]
    # Take away the images of everything that was recommended: other articles take their place.
    articles = demo_catalog.articles.copy()
    articles.loc[articles["article_id"].isin(first), "has_image"] = False
    imageless = CollabModel.fit(dataclasses.replace(demo_catalog, articles=articles))
    again = imageless.recommend(customer_id, k=12)["article_id"]
    assert again.isin(first).sum() <= 3

    # Articles retired by the demo generator stopped selling long before the end of the data: scored down.
    stale = model.state.stats.availability < 1.0
    assert stale.mean() > 0.1 and (model.state.stats.limited >= stale).all()
    for cid in rich_customers(model, 10):
        rows = [demo_catalog.article_row(a) for a in model.recommend(cid, k=12)["article_id"]]
        assert stale[rows].sum() <= 1 and model.state.stats.limited[rows].sum() <= 3


def test_cold_start_from_picked_articles(model, demo_catalog, tastes):
    customer_id = rich_customers(model, 1)[0]
    picks = model.history(customer_id)["article_id"].head(4).tolist()
    recs = model.recommend_for_items(picks, k=12)
    assert len(recs) == 12 and not set(recs["article_id"]) & set(picks)
    similar = model.similar_to_items(picks, k=10)
    assert len(similar) == 10 and (similar["shared_articles"] > 0).any()
    # Types the shopper picked come back.
    picked_types = set(demo_catalog.articles.set_index("article_id").loc[picks, "product_type_name"])
    assert recs["product_type_name"].isin(picked_types).mean() >= 0.5


def test_customer_without_history_gets_trending_articles(demo_catalog):
    # A customer whose purchases all fall after the training window.
    tx = demo_catalog.transactions
    late = tx.groupby("customer")["t_dat"].min().sort_values().index[-1]
    until = tx.loc[tx["customer"] == late, "t_dat"].min()
    model = CollabModel.fit(demo_catalog, until=until)
    customer_id = demo_catalog.customer_ids[late]
    recs = model.recommend(customer_id, k=12)
    assert len(recs) == 12 and recs["reason"].str.contains("no purchase history yet").all()
    with pytest.raises(InputError, match="no purchases before .*pick a few articles"):
        model.similar_customers(customer_id)


def test_bad_input_messages(model, demo_catalog):
    with pytest.raises(InputError, match="'xyz' is not a customer id"):
        model.recommend("xyz")
    with pytest.raises(InputError, match="is not in this dataset"):
        model.similar_customers(UNKNOWN_CUSTOMER)
    with pytest.raises(InputError, match="is not in this dataset"):
        model.history(UNKNOWN_CUSTOMER)
    with pytest.raises(InputError, match="article 0000000001 is not in the catalogue"):
        model.recommend_for_items(["0000000001"])
    with pytest.raises(InputError, match="not an article id"):
        model.similar_to_items(["shirt"])
    with pytest.raises(InputError, match="pick at least one article"):
        model.recommend_for_items([])
    with pytest.raises(InputError, match="k must be at least 1"):
        model.recommend(rich_customers(model, 1)[0], k=0)


def test_customer_with_one_purchase_works(demo_catalog):
    tx = demo_catalog.transactions
    code = int(tx["customer"].iat[-1])
    mine = np.flatnonzero(tx["customer"].to_numpy() == code)
    one = dataclasses.replace(demo_catalog, transactions=tx.drop(index=mine[:-1]).reset_index(drop=True))
    model = CollabModel.fit(one)
    customer_id = demo_catalog.customer_ids[code]
    assert len(model.history(customer_id)) == 1
    recs = model.recommend(customer_id, k=12)
    assert len(recs) == 12 and recs["reason"].str.len().gt(0).all()
    similar = model.similar_customers(customer_id, k=10)
    assert len(similar) == 10 and (similar["shared_articles"] <= 1).all()


def test_empty_transactions_are_a_data_error(demo_catalog):
    empty = dataclasses.replace(demo_catalog, transactions=demo_catalog.transactions.iloc[:0])
    with pytest.raises(DataError, match="no transactions"):
        CollabModel.fit(empty)
    with pytest.raises(DataError, match="no transactions before"):
        CollabModel.fit(demo_catalog, until=demo_catalog.transactions["t_dat"].iat[0])


def test_save_load_round_trip_and_refusal(model, demo_catalog, tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    model.state.save(store)
    assert CollabState.is_current(store, demo_catalog, model.params)
    loaded = CollabModel.load(store, demo_catalog)
    customer_id = rich_customers(model, 1)[0]
    assert loaded.recommend(customer_id).equals(model.recommend(customer_id))
    assert loaded.similar_customers(customer_id).equals(model.similar_customers(customer_id))
    picks = model.history(customer_id)["article_id"].head(3).tolist()
    assert loaded.recommend_for_items(picks).equals(model.recommend_for_items(picks))

    other = dataclasses.replace(demo_catalog, data_fingerprint="other-data")
    with pytest.raises(ArtifactError, match="does not match"):
        CollabModel.load(store, other)
    reordered = dataclasses.replace(demo_catalog, customer_ids=demo_catalog.customer_ids[::-1].copy())
    with pytest.raises(ArtifactError, match="maps other customer or article ids"):
        CollabModel.load(store, reordered)


def test_interactions_counts_and_recency(demo_catalog):
    tx = demo_catalog.transactions
    n_customers, n_articles = len(demo_catalog.customer_ids), len(demo_catalog.articles)
    inter = build_interactions(tx, n_customers, n_articles, half_life_days=30)
    assert inter.counts.sum() == len(tx)
    row = tx.iloc[-1]
    bought = tx[(tx["customer"] == row.customer) & (tx["article"] == row.article)]
    assert inter.counts[row.customer, row.article] == len(bought)
    # A purchase made on the last day counts (almost) fully, older ones less.
    assert inter.recency.sum() < inter.counts.sum()
    assert inter.recency[row.customer, row.article] == pytest.approx(
        np.exp2(-((inter.now - bought["t_dat"].to_numpy()) / np.timedelta64(1, "D")) / 30).sum(), rel=1e-5
    )


@pytest.mark.parametrize("weighting, weight", [("bm25", bm25_weight), ("tfidf", tfidf_weight)])
def test_fold_in_rows_are_weighted_like_training_rows(demo_catalog, weighting, weight):
    inter = build_interactions(demo_catalog.transactions, len(demo_catalog.customer_ids), len(demo_catalog.articles))
    confidence, weighted = Confidence.fit(inter.counts, weighting)
    kwargs = {"K1": BM25_K1, "B": BM25_B} if weighting == "bm25" else {}
    expected = weight(inter.counts.T, **kwargs).T.tocsr()
    assert abs(weighted - expected).max() < 1e-4
    code = int(np.argmax(np.diff(inter.counts.indptr)))
    row = inter.counts[code]
    assert abs(confidence.row(row.indices, row.data) - weighted[code]).max() < 1e-4


def test_als_runs_without_the_openblas_warning(demo_catalog):
    implicit.utils._checked_blas_config = False  # implicit warns once per process
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        CollabModel.fit(demo_catalog, CollabParams(factors=8, iterations=2))
    assert implicit.utils._checked_blas_config


def test_concurrent_first_requests_build_each_table_once(demo_catalog, monkeypatch):
    # 8 threads ask a cold model for recommendations at once: the window, the histories and the bought
    # matrix are each built once (functools.cached_property takes no lock on Python 3.12+).
    import threading

    from recommender.collab import candidates, history

    built = {"window": 0, "history": 0}
    window_init, history_init = candidates.Window.__init__, history.CustomerHistory.__init__

    def counting_window(self, *args, **kwargs):
        built["window"] += 1
        window_init(self, *args, **kwargs)

    def counting_history(self, *args, **kwargs):
        built["history"] += 1
        history_init(self, *args, **kwargs)

    monkeypatch.setattr(candidates.Window, "__init__", counting_window)
    monkeypatch.setattr(history.CustomerHistory, "__init__", counting_history)
    model = CollabModel.fit(demo_catalog)
    customers = model.example_customers(8)
    barrier, errors = threading.Barrier(8), []

    def first_request(customer_id):
        barrier.wait()
        try:
            model.window.block([model.catalog.customer_code(customer_id)])
            model.history(customer_id)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=first_request, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and built == {"window": 1, "history": 1}
