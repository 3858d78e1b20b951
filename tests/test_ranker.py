"""The LightGBM ranker on the demo: deterministic, stored with its features, used by recommend() with reasons;
the fallback to the blend when data is thin; the submission file."""
from __future__ import annotations

import dataclasses
import io
import re

import numpy as np
import pytest

from recommender.collab import CollabModel, CollabParams, CollabState
from recommender.collab.blend import blend as blend_signals, select, signals, used_signals
from recommender.collab.topk import limited_cap, select_from, select_rows
from recommender.collab.features import FEATURES
from recommender.collab.candidates import BLOCK, blend
from recommender.collab.ranker import (ARTIFACT, WEEK, Ranker, build_ranker, train_ranker, training_data,
                                       training_starts)
from recommender.collab import submission
from recommender.collab.submission import HEADER, prediction_rows, write_submission
from recommender.store import ArtifactStore

PARAMS = CollabParams()
KNOWN_REASONS = re.compile(
    r"you bought it|another colour of|customers like you bought it \(\d+ of your \d+ nearest|matches the taste"
    r"|often bought with .+ that you bought|trending|popular|you buy .+ often"
)


def models_of(catalog):
    cache = {}

    def model_at(cut):
        key = None if cut is None else str(cut)[:10]
        if key not in cache:
            cache[key] = CollabState.fit(catalog, PARAMS, until=cut)
        return cache[key]

    return model_at


@pytest.fixture(scope="module")
def ranked_model(demo_catalog):
    model_at = models_of(demo_catalog)
    state = model_at(None)
    ranker, message = train_ranker(demo_catalog, PARAMS, state.interactions.now, model_at)
    assert ranker is not None, message
    return CollabModel(state, ranker), model_at


def test_ranker_is_deterministic_and_stored_with_its_features(ranked_model, demo_catalog, tmp_path):
    model, model_at = ranked_model
    assert model.ranker.meta["weeks"] == PARAMS.ranker_weeks and model.ranker.meta["positives"] >= 20
    # The build's step trains it again from scratch (new ALS fits): the very same trees.
    store = ArtifactStore(tmp_path / "artifacts")
    model.state.save(store)
    assert build_ranker(store, model.state, lambda cut: CollabState.fit(demo_catalog, PARAMS, until=cut)) is None
    assert Ranker.is_current(store, demo_catalog, PARAMS)
    assert (store.load(ARTIFACT).path / "features.json").read_text().count('"') == 2 * len(FEATURES)
    loaded = CollabModel.load(store, demo_catalog)
    assert loaded.ranker is not None and loaded.ranker.features == FEATURES
    assert loaded.ranker.booster.model_to_string() == model.ranker.booster.model_to_string()
    customer_id = model.example_customers(1)[0]
    assert loaded.recommend(customer_id).equals(model.recommend(customer_id))


def test_a_ranker_built_by_other_code_or_for_other_factors_is_retrained_not_used(ranked_model, demo_catalog,
                                                                               tmp_path, monkeypatch):
    # Another list of sources or features (here: the schema digest changed, as a new feature would change
    # it), or factors of another ALS engine than the served ones: the stored ranker is outdated, nothing
    # loads it silently, and the build trains a new one.
    from recommender.collab import ranker as ranker_module

    model, _ = ranked_model
    store = ArtifactStore(tmp_path / "artifacts")
    model.state.save(store)
    fit = lambda cut: CollabState.fit(demo_catalog, PARAMS, until=cut)  # noqa: E731
    assert build_ranker(store, model.state, fit) is None
    trained = store.manifest(ARTIFACT)["folder"]
    assert Ranker.is_current(store, demo_catalog, PARAMS) and Ranker.load(store, demo_catalog) is not None
    assert not Ranker.is_current(store, demo_catalog, PARAMS, factors="spark")
    monkeypatch.setattr(ranker_module, "SCHEMA", "another-feature-list")
    assert not Ranker.is_current(store, demo_catalog, PARAMS) and Ranker.load(store, demo_catalog) is None
    assert build_ranker(store, model.state, fit) is None
    assert store.manifest(ARTIFACT)["folder"] != trained and store.manifest(ARTIFACT)["meta"]["schema"] == "another-feature-list"
    assert CollabModel.load(store, demo_catalog).ranker is not None


def test_recommend_uses_the_ranker_with_reasons(ranked_model):
    model, _ = ranked_model
    for customer_id in model.example_customers(10):
        recs = model.recommend(customer_id, k=12)
        assert len(recs) == 12 and recs["article_id"].is_unique
        assert list(recs.columns[:3]) == ["article_id", "score", "reason"]  # the page's columns are kept
        assert recs["score"].is_monotonic_decreasing
        assert recs["reason"].str.contains(KNOWN_REASONS).all(), recs["reason"].tolist()
        bought = set(model.history(customer_id)["article_id"])
        assert not bought & set(recs["article_id"])
        assert len(bought & set(model.recommend(customer_id, k=12, exclude_bought=False)["article_id"])) > 0


def test_thin_data_falls_back_to_the_blend_and_the_build_says_so(demo_catalog, tmp_path):
    tx = demo_catalog.transactions
    first_weeks = tx[tx["t_dat"] < tx["t_dat"].iat[0] + np.timedelta64(10, "D")].reset_index(drop=True)
    thin = dataclasses.replace(demo_catalog, transactions=first_weeks, data_fingerprint="thin")
    store = ArtifactStore(tmp_path / "artifacts")
    model = CollabModel.fit(thin, PARAMS)
    model.state.save(store)
    fit_state = lambda cut: CollabState.fit(thin, PARAMS, until=cut)  # noqa: E731
    notice = build_ranker(store, model.state, fit_state)
    assert notice and notice.startswith("too little data to train the ranker")
    assert "recommendations use the hand-weighted blend" in notice
    assert build_ranker(store, model.state, fit_state) == notice  # recorded: the next build does not retrain, and says it again
    loaded = CollabModel.load(store, thin)
    assert loaded.ranker is None
    customer_id = thin.customer_ids[int(first_weeks["customer"].iat[-1])]
    assert loaded.recommend(customer_id).equals(model.recommend(customer_id))


def test_training_takes_as_many_weeks_as_the_customer_budget_needs(demo_catalog):
    now = CollabState.training_cut(demo_catalog) or demo_catalog.transactions["t_dat"].iat[-1]
    every = training_starts(demo_catalog, CollabParams(ranker_weeks=12, ranker_customers=10**6), now)
    assert len(every) == 12 and every[0] == np.datetime64(now, "ns") - WEEK  # thin data: every week allowed
    # a budget the newest week's buyers already fill: one group of weeks sharing one ALS fit
    few = training_starts(demo_catalog, CollabParams(ranker_weeks=12, ranker_customers=1, ranker_model_weeks=3), now)
    assert few == every[:3]
    assert training_starts(demo_catalog, CollabParams(ranker_weeks=2, ranker_customers=1, ranker_model_weeks=3), now) == every[:2]


def test_training_fits_one_model_per_group_of_weeks(demo_catalog):
    params = CollabParams(ranker_weeks=6, ranker_model_weeks=3)
    now = CollabState.training_cut(demo_catalog) or demo_catalog.transactions["t_dat"].iat[-1]
    cuts = []

    def model_at(cut):
        cuts.append(cut)
        return CollabState.fit(demo_catalog, params, until=cut)

    data = training_data(demo_catalog, params, now, model_at)
    starts = training_starts(demo_catalog, params, now)
    assert cuts == [starts[2], starts[5]]  # fitted before the oldest week of each group, once
    assert data.weeks == 6


def test_block_ranking_equals_one_customer_at_a_time(ranked_model, demo_catalog):
    model, _ = ranked_model
    codes = np.arange(len(demo_catalog.customer_ids))  # every customer, with history or not, in several blocks
    assert len(codes) > 3 * BLOCK
    for exclude_bought in (False, True):
        block = model.ranked_block(codes, 12, exclude_bought)["ranker"]
        assert len(block) == len(codes)
        for code, rows in zip(codes, block):
            assert rows.tolist() == model.ranked(int(code), 12, exclude_bought)[0].tolist()


def test_blend_source_of_a_block_is_the_one_customer_blend(ranked_model, demo_catalog):
    # The dense one-customer blend over the catalogue (what evaluate's blend row ranks by): the same
    # articles and scores (a feature of the ranker), for every customer. The block's ALS scores come from
    # one matrix product, which may round the last bit differently from the one-customer product.
    model, _ = ranked_model
    window, weights = model.window, model.params.weights()
    codes = np.arange(len(demo_catalog.customer_ids))
    for start in range(0, len(codes), BLOCK):
        block = window.block(codes[start : start + BLOCK])
        for code, mine, near, (rows, scores) in zip(block.codes, block.mine, block.near, blend(window, block, 48)):
            profile = window.profile(mine, model.state.factor(int(code)), near)
            scored = signals(model.state, profile, used_signals(weights), trend=window.blend_trend)
            expected, expected_scores, _ = blend_signals(model.state, profile, scored, 48, exclude_bought=False, weights=weights)
            assert rows.tolist() == expected.tolist()
            np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)


def test_block_neighbours_are_each_customers_own_search(ranked_model, demo_catalog):
    # One HNSW call for a block: each customer gets what a search of its own finds, never itself.
    model, _ = ranked_model
    codes = np.arange(len(demo_catalog.customer_ids))
    block = model.window.block(codes)
    for code, has, (near, sims) in zip(codes, block.has_factor, block.near):
        expected = model.state.nearest(model.state.als.user_factors[code], PARAMS.neighbours, exclude=int(code)) if has else ([], [])
        assert near.tolist() == list(expected[0]) and code not in near
        np.testing.assert_array_equal(sims, expected[1])


def test_block_selection_equals_the_dense_one_with_ties(ranked_model):
    # A block's selection (one partition for all its customers) against the one-customer selection over the
    # catalogue: the same lists, ties included.
    model, _ = ranked_model
    n = len(model.state.stats.limited)
    rng = np.random.default_rng(0)
    totals = []
    limited, available = np.flatnonzero(model.state.stats.limited), np.flatnonzero(~model.state.stats.limited)
    for trial in range(120):
        share = trial % 3 / 2  # none, half or all of the 150 from the limited articles (at most 3 of 12 shown)
        picked = rng.choice(limited, min(int(150 * share), len(limited)), replace=False)
        rows = np.sort(np.concatenate([picked, rng.choice(available, 150 - len(picked), replace=False)]))
        scores = (rng.integers(1, 4 if trial % 2 else 10**6, len(rows)) / 7).astype(np.float32)  # many ties, or few
        total = np.zeros(n, np.float32)
        total[rows] = scores
        totals.append(total)
    limited, cap = model.state.stats.limited, limited_cap(12, PARAMS.max_limited_share)
    block = select_rows(np.stack(totals), 12, limited, cap)
    assert [rows.tolist() for rows in block] == [select(model.state, total, 12).tolist() for total in totals]
    assert model.state.stats.limited.any() and not model.state.stats.limited.all()  # both kinds of articles take part


def test_selection_caps_limited_articles_and_breaks_ties_by_article_row(ranked_model):
    model, _ = ranked_model
    limited, available = np.flatnonzero(model.state.stats.limited)[:6], np.flatnonzero(~model.state.stats.limited)[:12]
    rows = np.sort(np.concatenate([limited, available]))
    scores = np.zeros(len(rows), np.float32)
    scores[np.isin(rows, limited)] = 5.0  # the six best are all limited, tied
    scores[np.isin(rows, available)] = np.repeat([3.0, 2.0, 1.0], 4)  # then four ties of three scores
    # 3 of 12 limited (the lowest rows of the tie), then the available ones by score, lower row first
    is_limited, cap = model.state.stats.limited, limited_cap(12, PARAMS.max_limited_share)
    assert select_from(rows, scores, 12, is_limited[rows], cap).tolist() == limited[:3].tolist() + available[:9].tolist()
    # too few available: limited ones fill the list, in score order
    assert select_from(rows, scores, 18, is_limited[rows], cap).tolist() == limited.tolist() + available.tolist()
    # over the catalogue, and for a block of customers: the same
    total = np.zeros(len(model.state.stats.limited), np.float32)
    total[rows] = scores
    assert select(model.state, total, 12).tolist() == limited[:3].tolist() + available[:9].tolist()
    both = select_rows(np.stack([total, total * 0]), 12, is_limited, cap)
    assert both[0].tolist() == select(model.state, total, 12).tolist()
    assert both[1].tolist() == []  # nothing above 0: nothing


def test_submission_file_format_and_row_count(ranked_model, demo_catalog, monkeypatch):
    model, _ = ranked_model
    monkeypatch.setattr(submission, "BLOCK", 7)  # 26 ids: three full blocks and a partial one
    ids = list(demo_catalog.customer_ids[:25]) + ["0" * 64]  # the last one is not in the data
    out = io.StringIO()
    assert write_submission(model, ids, out) == len(ids)
    lines = out.getvalue().splitlines()
    assert lines[0] == HEADER and len(lines) == len(ids) + 1
    for customer_id, line in zip(ids, lines[1:]):
        cid, prediction = line.split(",")
        articles = prediction.split(" ")
        assert cid == customer_id and len(articles) == 12 and len(set(articles)) == 12
        assert all(re.fullmatch(r"\d{10}", a) for a in articles)
        code = demo_catalog.customer_ids.tolist().index(cid) if cid in demo_catalog.customer_ids else -1
        expected = demo_catalog.articles["article_id"].to_numpy()[prediction_rows(model, code, 12)]
        assert articles == expected.tolist()  # the block path gives each customer's own ranking


def test_submission_in_worker_processes_is_the_same_file(ranked_model, demo_catalog, monkeypatch):
    model, _ = ranked_model
    monkeypatch.setattr(submission, "BLOCK", 5)  # 120 ids: 24 blocks, enough for two forked workers
    ids = list(demo_catalog.customer_ids[:119]) + ["0" * 64]
    alone, shared = io.StringIO(), io.StringIO()
    assert write_submission(model, ids, alone, workers=1) == write_submission(model, ids, shared, workers=2) == 120
    assert shared.getvalue() == alone.getvalue()
