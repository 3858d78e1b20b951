"""Top-k selection shared by every layer: the k best of a score vector or of each row of a block, ties to the
lower article row, and the cap on "limited" articles (no image, or no longer selling) in a list."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

SETS_PER_PICK = 32  # `top_rows` bounds the n-th best by the maxima of 32 × n sets of columns: the bound
# lets hardly more than the n best through


def top_scores(scores: np.ndarray, n: int, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(articles, scores) of the n highest positive scores, best first; ``among`` restricts to those rows."""
    rows = np.flatnonzero(scores > 0) if among is None else among[scores[among] > 0]
    if len(rows) > n > 0:  # keep the n best, everything tied with the n-th and a few more, then sort only those
        values = scores[rows]
        rows = rows[values >= _nth_largest_bound(values[None, :], n)[0]]
    order = rows[np.lexsort((rows, -scores[rows]))][:n]  # ties: lower article row first (deterministic)
    return order.astype(np.int64), scores[order].astype(np.float32)


def nothing() -> tuple[np.ndarray, np.ndarray]:
    """An empty proposal (articles, scores)."""
    return np.zeros(0, np.int64), np.zeros(0, np.float32)


def top_rows(scores: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`top_scores` of each row of a [customers × columns] matrix, the whole block at once."""
    if n <= 0 or not scores.shape[1]:
        return [nothing() for _ in range(len(scores))]
    # Above 0 and at least a lower bound of the row's n-th largest (when that is above 0 too): one comparison.
    least = np.full(len(scores), np.nextafter(np.float32(0), np.float32(1)), np.float32)
    np.maximum(least, _nth_largest_bound(scores, n), out=least)
    rows, columns = np.divmod(np.flatnonzero(scores >= least[:, None]), scores.shape[1])  # (2-d nonzero is slow)
    values = scores[rows, columns]
    order = np.lexsort((columns, -values, rows))  # by row, then best first, ties: lower column first
    rows, columns, values = rows[order], columns[order], values[order]
    starts = np.searchsorted(rows, np.arange(len(scores) + 1))
    return [(columns[a : min(b, a + n)].astype(np.int64), values[a : min(b, a + n)].astype(np.float32))
            for a, b in zip(starts[:-1], starts[1:])]


def _nth_largest_bound(scores: np.ndarray, n: int) -> np.ndarray:
    """Per row, a value at most the row's n-th largest: the n-th largest of the maxima of disjoint sets of
    columns (n sets each hold an element at least that large). The sets are strided (columns j, j + m,
    j + 2m, …), so their maxima are an element-wise maximum of contiguous slices; then only a small matrix
    is partitioned, not the whole block, and few more elements than the n best pass the bound."""
    width = scores.shape[1]
    if width <= n:
        return np.full(len(scores), -np.inf, np.float32)
    depth = width // (n * SETS_PER_PICK)  # columns a set
    if depth < 2:  # narrow rows: partition them whole
        return np.partition(scores, width - n, axis=1)[:, width - n]
    sets = width // depth
    maxima = scores[:, : sets * depth].reshape(len(scores), depth, sets).max(axis=1)
    return np.partition(maxima, sets - n, axis=1)[:, sets - n]


def top_columns(columns: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_scores` of a sparse row (``columns`` sorted): ties go to the lower column, as over the dense row."""
    positions, top = top_scores(scores, n)
    return columns[positions].astype(np.int64), top


def weighted_rows(matrix: sp.csr_matrix, picks: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each (rows, weights) of ``picks``: Σ weight × matrix[row] as (columns sorted, sums), non-zero sums
    only. One sparse product for all of them; each sum runs in the order the rows are given, as
    `matrix[rows].T @ weights` sums them, so the float32 results are the same."""
    lengths = [len(rows) for rows, _ in picks]
    left = sp.csr_matrix(
        (np.concatenate([np.zeros(0, np.float32)] + [weights for _, weights in picks]),
         np.concatenate([np.zeros(0, np.int64)] + [rows for rows, _ in picks]), np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])),
        shape=(len(picks), matrix.shape[0]))
    product = left @ matrix
    product.sort_indices()
    return [(product.indices[a:b], product.data[a:b]) for a, b in zip(product.indptr[:-1], product.indptr[1:])]


# --- lists with at most a share of limited articles --------------------------------------------------


def limited_cap(k: int, share: float) -> int:
    """How many limited articles a list of k may hold."""
    return int(round(k * share))


def select_from(rows: np.ndarray, scores: np.ndarray, k: int, limited: np.ndarray, cap: int) -> np.ndarray:
    """The k best-scoring of the articles ``rows`` (sorted) with a score above 0, of which at most ``cap``
    are ``limited`` (a mask over ``rows``; more only to fill k). Equal scores go to the lower article row,
    so a list never depends on how a selection algorithm orders ties."""
    best, _ = top_scores(scores, k)
    if limited[best].sum() > cap:
        available, fillers = np.flatnonzero(~limited), np.flatnonzero(limited)
        best = cap_limited(available[top_scores(scores[available], k)[0]],
                           fillers[top_scores(scores[fillers], k)[0]], scores, k, cap)
    return rows[best]


def select_rows(total: np.ndarray, k: int, limited: np.ndarray, cap: int) -> list[np.ndarray]:
    """`select_from` over the whole catalogue for each row of a [customers × articles] matrix (one
    partition for the whole block)."""
    tops = [rows for rows, _ in top_rows(total, k)]
    over = [i for i, rows in enumerate(tops) if limited[rows].sum() > cap]
    if over and not limited.all():  # (all limited: the k best are the k best limited ones)
        available, fillers = np.flatnonzero(~limited), np.flatnonzero(limited)
        best_available, best_limited = top_rows(total[over][:, available], k), top_rows(total[over][:, fillers], k)
        for i, (found, _), (filling, _) in zip(over, best_available, best_limited):
            tops[i] = cap_limited(available[found], fillers[filling], total[i], k, cap)
    return tops


def cap_limited(available: np.ndarray, fillers: np.ndarray, total: np.ndarray, k: int, cap: int) -> np.ndarray:
    """The best ``available`` articles with at most ``cap`` limited ones (``fillers``), more only to fill k
    (positions into ``total``; equal scores: the lower position first)."""
    chosen = np.concatenate([available, fillers[:cap]])
    chosen = chosen[np.lexsort((chosen, -total[chosen]))][:k]
    if len(chosen) < k:  # too few available articles: fill with the limited ones after all
        chosen = np.concatenate([chosen, fillers[cap : cap + k - len(chosen)]])
        chosen = chosen[np.lexsort((chosen, -total[chosen]))]
    return chosen
