"""ALS customer/article factors (implicit) and the customer neighbour index over them (hnswlib)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import hnswlib
import implicit.cpu.als
import implicit.gpu
import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares
from threadpoolctl import ThreadpoolController

from .params import CollabParams, Progress


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """implicit parallelises ALS itself; a multi-threaded BLAS underneath oversubscribes the cores
    (implicit warns about exactly this and asks for threadpool_limits(1, "blas")). Queries need it too:
    a one-customer matrix-vector product on a busy machine is many times slower with 2 BLAS threads.
    The controller is built once: `threadpool_limits()` rescans the loaded libraries on every call. Where
    BLAS already runs on one thread (the serve plan of `runtime.configure_threads`) nothing is changed: the
    limit is process-wide, so toggling it from concurrent request threads would race."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas")
    if all(library["num_threads"] == 1 for library in _blas.info()):
        yield
        return
    with _blas.limit(limits=1):
        yield


_blas = None


def fit_als(user_items: sp.csr_matrix, params: CollabParams, report: Progress) -> implicit.cpu.als.AlternatingLeastSquares:
    """ALS on the weighted customer × article matrix; always returned as a CPU model (queries run there)."""

    def on_iteration(iteration, elapsed, loss):
        report((iteration + 1) / params.iterations, f"ALS iteration {iteration + 1}/{params.iterations}")

    with single_threaded_blas():
        als = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=params.alpha,
            iterations=params.iterations,
            random_state=params.random_state,
            use_gpu=implicit.gpu.HAS_CUDA,
        )
        als.fit(user_items, show_progress=False, callback=on_iteration)
    if not isinstance(als, implicit.cpu.als.AlternatingLeastSquares):
        als = als.to_cpu()
    return als


def build_hnsw(user_factors: np.ndarray, codes: np.ndarray, params: CollabParams, report: Progress) -> hnswlib.Index:
    """Cosine similarity as inner product on L2-normalised customer factors; labels are customer codes."""
    index = hnswlib.Index(space="ip", dim=user_factors.shape[1])
    index.init_index(
        max_elements=max(len(codes), 1),
        ef_construction=params.hnsw_ef_construction,
        M=params.hnsw_M,
        random_seed=params.random_state,
    )
    chunk = 100_000
    for start in range(0, len(codes), chunk):
        batch = codes[start : start + chunk]
        vectors = user_factors[batch]
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        index.add_items(vectors.astype(np.float32), batch, num_threads=-1)
        report((start + len(batch)) / len(codes), f"HNSW: {start + len(batch):,}/{len(codes):,} customers")
    return index  # query settings (ef, threads): CollabModel's, for built and loaded indexes alike


def als_scores(user_factors: np.ndarray, item_factors: np.ndarray) -> np.ndarray:
    """Customer factors · article factors for a block of customers: float32 [customers × articles], one
    single-threaded matrix product (GEMM). Its rounding depends on the block's shape, so a score may differ
    in the last bit from the same customer's score in another block: only an exact tie could turn on it."""
    with single_threaded_blas():
        return np.ascontiguousarray(user_factors, np.float32) @ item_factors.T


def nearest(index: hnswlib.Index, factor: np.ndarray, k: int, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k customers whose factors are closest to ``factor`` (codes, cosine similarities), without ``exclude``."""
    return nearest_block(index, factor[None, :], k, None if exclude is None else [exclude])[0]


def nearest_block(index: hnswlib.Index, factors: np.ndarray, k: int,
                  exclude: list[int] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """`nearest` for each row of ``factors`` (``exclude``: one code per row), one HNSW call for them all:
    each query's search is the same as alone."""
    want = min(k + (exclude is not None), index.get_current_count())
    if want <= 0 or not len(factors):
        return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(len(factors))]
    queries = np.stack([f / max(float(np.linalg.norm(f)), 1e-12) for f in factors])  # each as `nearest` always did
    labels, distances = index.knn_query(queries.astype(np.float32), k=want)
    out = []
    for i, (codes, sims) in enumerate(zip(labels.astype(np.int64), 1.0 - distances)):  # "ip" distance: 1 - similarity
        keep = codes != exclude[i] if exclude is not None else slice(None)
        out.append((codes[keep][:k], sims[keep][:k]))
    return out
