"""Browsing a result list as a shop does: one result per product (`Products`) and counts per filter value
(`facet_counts`). Plain arrays over catalogue rows; `ContentSearch` decides what is ranked and matched."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd


class Products:
    """Catalogue rows grouped by product (colour variants share a product_code)."""

    def __init__(self, codes: np.ndarray):
        self.codes = np.asarray(codes, np.int64)
        self.order = np.argsort(self.codes, kind="stable")
        self.offsets = np.searchsorted(self.codes[self.order], np.arange(int(self.codes.max(initial=0)) + 2))

    def others(self, row: int, allowed: np.ndarray | None) -> np.ndarray:
        """The other rows of ``row``'s product that ``allowed`` lets through, in catalogue order."""
        product = self.codes[row]
        siblings = self.order[self.offsets[product] : self.offsets[product + 1]]
        keep = siblings != row
        if allowed is not None:
            keep &= allowed[siblings]
        return siblings[keep]

    def best_of_each(self, ranked: Callable, k: int, n_allowed: int):
        """``ranked(depth)``'s (rows, scores, visual ranks, terms, filled) cut to each product's best-ranked
        row, asking for deeper lists until k products are found or nothing more matches (a product has a
        handful of colours: a first list of 4·k rows holds k products as a rule)."""
        depth = min(4 * k, max(n_allowed, 1))
        while True:
            found, scores, visual_rank, terms, filled = ranked(depth)
            _, first = np.unique(self.codes[found], return_index=True)
            first = np.sort(first)
            if len(first) >= k or len(found) < depth or depth >= n_allowed:
                keep = first[:k]
                return found[keep], np.asarray(scores)[keep], visual_rank, terms, filled & set(found[keep].tolist())
            depth = min(4 * depth, n_allowed)


def facet_counts(codes: Mapping[str, pd.Categorical], columns: Sequence[str], matching: Callable,
                 masks: Mapping[str, np.ndarray], excluded: np.ndarray, basis: str) -> dict:
    """Per column and value, how many rows ``matching(others)`` finds among the rows the other columns'
    filters (``masks``) let through: a value's count is what choosing it would leave, 0 that it would empty
    the results (a column's own filter does not narrow its counts). ``excluded``: rows never counted."""
    size = len(next(iter(codes.values())))
    base = np.ones(size, dtype=bool)
    base[excluded] = False
    counts = {}
    for column in columns:
        others = base.copy()
        for other, mask in masks.items():
            if other != column:
                others &= mask
        values = codes[column]
        per_value = np.bincount(values.codes[matching(others)], minlength=len(values.categories))
        counts[column] = {str(value): int(n) for value, n in zip(values.categories, per_value)}
    return {"basis": basis, "counts": counts}
