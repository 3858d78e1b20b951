"""Which articles look alike: each article's nearest articles of other products in the content index
(vectors: the photo's, or the caption's where there is no photo). "Looks like what you bought" and the
taste features read this (`Looks`) instead of scanning the catalogue for every customer: the table is made
once a build (the `lookalikes` artifact), so a customer costs a few look-ups however large the catalogue.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .catalog import Catalog
from .content_index import ContentIndex
from .progress import Progress
from .store import ArtifactStore

ARTIFACT = "lookalikes"
NEIGHBOURS = 32  # look-alikes kept an article: a customer's 6 seeds give ~190 to choose 48 from
SPARE = 16  # asked beyond NEIGHBOURS: a product's other colours are dropped from its own list
BATCH = 2048

Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]  # (queries, k) → (rows, scores), -1 padded


@dataclass
class Looks:
    """The content vectors and each article's look-alikes of other products (best first, -1: none)."""

    vectors: np.ndarray  # float32 [articles × dim], unit rows, catalogue order
    neighbours: np.ndarray  # int32 [articles × NEIGHBOURS]
    similarities: np.ndarray  # float32 [articles × NEIGHBOURS] (cosine)

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, products: np.ndarray, neighbours: int = NEIGHBOURS) -> "Looks":
        """An exact table by brute force (small catalogues, tests)."""
        vectors = np.asarray(vectors, np.float32)
        rows, sims = nearest_other_products(exact_search(vectors), vectors, products, neighbours)
        return cls(vectors, rows, sims)


def exact_search(vectors: np.ndarray) -> Search:
    def search(queries: np.ndarray, k: int):
        scores = queries @ vectors.T
        k = min(k, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return top, np.take_along_axis(scores, top, axis=1)

    return search


def nearest_other_products(search: Search, vectors: np.ndarray, products: np.ndarray, neighbours: int,
                           progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per article, its ``neighbours`` nearest articles of other products (rows, cosine), -1 / NaN padded."""
    n = len(vectors)
    rows = np.full((n, neighbours), -1, np.int32)
    sims = np.full((n, neighbours), np.nan, np.float32)
    for start in range(0, n, BATCH):
        stop = min(start + BATCH, n)
        found, scores = search(np.ascontiguousarray(vectors[start:stop], np.float32), neighbours + SPARE)
        for i, (near, near_scores) in enumerate(zip(found, scores), start):
            keep = (near >= 0) & (products[np.maximum(near, 0)] != products[i])
            near, near_scores = near[keep][:neighbours], near_scores[keep][:neighbours]
            rows[i, : len(near)], sims[i, : len(near)] = near, near_scores
        if progress:
            progress(stop / n, f"look-alikes: {stop:,} of {n:,} articles")
    return rows, sims


def product_codes(catalog: Catalog) -> np.ndarray:
    """Colour variants share a product_code; without the column every article is its own product."""
    return pd.factorize(catalog.articles.get("product_code", catalog.articles["article_id"]))[0].astype(np.int64)


def build_lookalikes(store: ArtifactStore, catalog: Catalog, *, progress: Progress | None = None) -> None:
    """The `lookalikes` artifact from the current content index; skipped when already built from it."""
    index_art = store.load("content_index")
    expect = {"content_index": index_art.path.name, "data": catalog.fingerprint(), "neighbours": NEIGHBOURS}
    if store.is_current(ARTIFACT, expect):
        return
    index = ContentIndex.load(index_art.path)
    vectors = np.load(store.load("embeddings").path / "vectors.npy", mmap_mode="r")
    search = lambda queries, k: index.search(queries, k)
    rows, sims = nearest_other_products(search, vectors, product_codes(catalog), NEIGHBOURS, progress)
    with store.write(ARTIFACT, expect) as folder:
        np.save(folder / "neighbours.npy", rows)
        np.save(folder / "similarities.npy", sims)


def load_looks(store: ArtifactStore, catalog: Catalog) -> Looks | None:
    """The build's vectors and look-alikes for these articles (memory-mapped: one copy in the page cache
    for every process), or None when there are none: the content source then proposes nothing."""
    try:
        embeddings, table = store.load("embeddings"), store.load(ARTIFACT, {"data": catalog.fingerprint()})
        ids = np.load(embeddings.path / "article_ids.npy")
        looks = Looks(np.load(embeddings.path / "vectors.npy", mmap_mode="r"),
                      np.load(table.path / "neighbours.npy", mmap_mode="r"),
                      np.load(table.path / "similarities.npy", mmap_mode="r"))
    except Exception:  # absent or damaged: recommendations do without content (search reports the index)
        return None
    same = len(ids) == len(catalog.articles) == len(looks.neighbours) and np.array_equal(
        ids.astype(str), catalog.articles["article_id"].to_numpy().astype(str))
    return looks if same else None
