"""Article-level signals over a training window, and the window's robust end ("now")."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from .params import TREND_WINDOW_DAYS, CollabParams

STRAY_DAY_SHARE = 0.05  # a day with fewer sales than this share of the median day does not move "now"
STRAY_GAP_DAYS = 30  # sales after a gap this long ...
STRAY_TAIL_SHARE = 0.01  # ... holding less than this share of all rows are stray too


def robust_end(days: np.ndarray) -> np.datetime64:
    """The first day after the last day with a meaningful share of sales (``days`` sorted).

    One mistyped far-future row must not make every article look stale and every purchase old."""
    unique, counts = np.unique(days, return_counts=True)
    meaningful = counts >= STRAY_DAY_SHARE * np.median(counts)
    gaps = np.flatnonzero(np.diff(unique) > np.timedelta64(STRAY_GAP_DAYS, "D"))
    if len(gaps):
        tail = gaps[-1] + 1
        if counts[tail:].sum() < STRAY_TAIL_SHARE * counts.sum():
            meaningful[tail:] = False
    last = unique[np.flatnonzero(meaningful)[-1]] if meaningful.any() else unique[-1]
    return np.datetime64(last, "ns") + np.timedelta64(1, "D")


@dataclass
class ArticleStats:
    trend: np.ndarray  # float32, decayed recent sales scaled to max 1
    week_sales: np.ndarray  # int32, sales in the last TREND_WINDOW_DAYS
    sales: np.ndarray  # int32, all sales in the training window
    availability: np.ndarray  # float32 score multiplier: stale_factor for articles that no longer sell, else 1
    limited: np.ndarray  # bool: no image, or no longer sells

    @classmethod
    def compute(cls, transactions: pd.DataFrame, now: np.datetime64, has_image: np.ndarray, params: CollabParams):
        n = len(has_image)
        articles = transactions["article"].to_numpy()
        age_days = (now - transactions["t_dat"].to_numpy()) / np.timedelta64(1, "D")
        sales = np.bincount(articles, minlength=n).astype(np.int32)
        week_sales = np.bincount(articles[age_days <= TREND_WINDOW_DAYS], minlength=n).astype(np.int32)
        trend = np.bincount(articles, weights=np.exp2(-age_days / params.trend_half_life_days), minlength=n)
        trend = (trend / max(trend.max(), 1e-12)).astype(np.float32)
        last_sale_age = np.full(n, np.inf)
        np.minimum.at(last_sale_age, articles, age_days)
        stale = last_sale_age > params.stale_after_days
        availability = np.where(stale, params.stale_factor, 1.0).astype(np.float32)
        return cls(trend, week_sales, sales, availability, stale | ~has_image)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
