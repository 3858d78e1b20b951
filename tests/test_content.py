"""Content search: FAISS index choice, recall, filters, persistence; queries with a tiny open_clip model."""
from __future__ import annotations

import numpy as np
import pytest

from recommender.content import ContentIndex, recall_at


def clustered(n: int, dim: int = 64, clusters: int = 200, spread: float = 0.6, sample: int = 0) -> np.ndarray:
    """Points of one fixed Gaussian mixture on the sphere (the structure real embeddings have and IVF
    relies on); another ``sample`` draws other points from the same mixture."""
    centres = np.random.default_rng(0).standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(1 + sample)
    points = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def ids(n: int) -> np.ndarray:
    return np.array([f"{i:010d}" for i in range(n)])


@pytest.fixture(scope="module")
def ann_index():
    vectors = clustered(20_000)
    return vectors, ContentIndex.build(vectors, ids(len(vectors)), exact_threshold=10_000)


def test_small_catalogue_gets_an_exact_index_and_exact_rankings():
    vectors = clustered(2_000)
    index = ContentIndex.build(vectors, ids(2_000))
    assert index.params["kind"] == "exact"
    query = vectors[:5]
    rows, scores = index.search(query, 10)
    expected = np.argsort(-(query @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)  # each vector is its own best match


def test_large_catalogue_gets_ivf_with_measured_recall(ann_index):
    vectors, index = ann_index
    assert index.params["kind"] == "ivf"
    assert index.params["recall_at_100"] >= 0.95
    assert index.params["nprobe"] < index.params["nlist"]
    # Held-out queries from the same mixture, checked against brute force.
    queries = clustered(300, sample=1)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :100]
    rows, _ = index.search(queries, 100)
    assert recall_at(rows, truth) >= 0.95


def test_unstructured_vectors_keep_the_exact_index():
    # Random directions have no clusters for IVF to exploit: reaching the recall target would mean
    # probing most lists, i.e. a scan, so the index stays exact.
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((12_000, 64)).astype(np.float32)
    index = ContentIndex.build(vectors, ids(len(vectors)), exact_threshold=10_000)
    assert index.params["kind"] == "exact"
    assert max(index.params["ivf_trial"]["recall_by_nprobe"].values()) < 0.95


@pytest.mark.parametrize("kind", ["exact", "ivf"])
@pytest.mark.parametrize("share", [0.3, 0.01, 0.0004])
def test_filters_return_k_allowed_results_when_k_exist(ann_index, kind, share):
    vectors, ivf = ann_index
    index = ivf if kind == "ivf" else ContentIndex.build(vectors, ids(len(vectors)))
    allowed = np.random.default_rng(2).random(len(vectors)) < share
    n_allowed = int(allowed.sum())
    queries = vectors[:20]
    rows, scores = index.search(queries, 12, allowed)
    found = (rows >= 0).sum(axis=1)
    assert (found == min(12, n_allowed)).all()
    assert allowed[rows[rows >= 0]].all()
    subset = np.flatnonzero(allowed)
    truth = subset[np.argsort(-(queries @ vectors[subset].T), axis=1)[:, :12]]
    assert recall_at(rows, truth) >= 0.95
    assert np.isneginf(scores[rows < 0]).all()


def test_persisted_index_round_trips(ann_index, tmp_path):
    vectors, index = ann_index
    index.save(tmp_path)
    loaded = ContentIndex.load(tmp_path)
    assert loaded.params == index.params
    np.testing.assert_array_equal(loaded.article_ids, index.article_ids)
    np.testing.assert_array_equal(loaded.search(vectors[:5], 10)[0], index.search(vectors[:5], 10)[0])
    np.testing.assert_allclose(loaded.reconstruct([3, 7]), vectors[[3, 7]], atol=1e-6)
