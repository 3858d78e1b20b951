"""Parameters of the collaborative engine (ALS, HNSW, the hand-weighted blend, candidates and the ranker)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Mapping

SIGNALS = ("neighbours", "als", "trend", "repurchase", "type")
TREND_WINDOW_DAYS = 7  # "trending this week"; also the window of the last-week popularity baseline

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    pass


@dataclass(frozen=True)
class CollabParams:
    # ALS (implicit). Defaults measured on ../shared/hm_sample with `evaluate` (see README).
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15
    weighting: str = "tfidf"  # bm25 | tfidf | none, on the item × user matrix as implicit's examples do
    recency_half_life_days: float | None = 365.0  # a purchase counts half after this many days; None: no decay
    random_state: int = 0
    # HNSW over customer factors (hnswlib); recall@10 vs exact search measured in bench/bench_collab.py.
    hnsw_M: int = 16
    hnsw_ef_construction: int = 100
    hnsw_ef: int = 128
    # Blending.
    neighbours: int = 20  # nearest customers whose purchases vote
    trend_half_life_days: float = 7.0
    stale_after_days: int = 60  # no sale for this long: the article no longer sells
    stale_factor: float = 0.1  # score multiplier for articles that no longer sell
    max_limited_share: float = 0.25  # at most this share of a list has no image or no longer sells
    weight_neighbours: float = 0.25
    weight_als: float = 0.25
    weight_trend: float = 0.1
    weight_repurchase: float = 1.0
    weight_type: float = 0.25
    variant_factor: float = 0.25  # another colour of a product the customer bought, relative to the article itself
    # Candidates and the learned ranker (recommender.collab.candidates / ranker).
    candidates_per_source: int = 48  # each of 11 sources proposes this many: ~200 distinct per customer
    # Chosen on hm_sample's 8 weeks before the 4 weeks `evaluate` reports (see README).
    # Thin data (~75 buyers a week in the sample): many weeks for positives, few and well-filled leaves.
    ranker_weeks: int = 40  # rolling weekly training windows before the cut
    ranker_model_weeks: int = 8  # consecutive windows sharing one ALS + HNSW, fitted before the oldest of them
    ranker_customers: int = 40_000  # at most this many buyers over all weeks, a seeded sample of each (H&M scale)
    ranker_min_positives: int = 20  # fewer bought candidates than this in all windows: too thin, use the blend
    ranker_rounds: int = 60
    ranker_leaves: int = 4
    ranker_learning_rate: float = 0.05
    ranker_min_data_in_leaf: int = 100
    ranker_feature_fraction: float = 0.5

    def weights(self) -> dict[str, float]:
        return {name: getattr(self, f"weight_{name}") for name in SIGNALS}

    @classmethod
    def from_dict(cls, values: Mapping) -> "CollabParams":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
