"""The learned ranker: LightGBM lambdarank (the LGBMRanker objective, through the native API) over each customer's candidates, trained on weekly windows.

For each of the weeks before the cut (`training_starts`: as many as the customer budget needs),
candidates and features are computed from the purchases before that week (ALS and HNSW from a model
fitted before the oldest of each `ranker_model_weeks` consecutive weeks) for the customers who bought in
it, and a candidate's label is whether the customer bought it that week. Customers without any bought
candidate teach a ranker nothing and are left out. Too few positives: no ranker, and the build says the
blend is used.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..runtime import forked_map
from ..store import ArtifactStore
from .candidates import BLOCK, SOURCES, Window, candidates_block
from .features import FEATURES, features_block
from .params import CollabParams, Progress, no_progress
from .state import CollabState

ARTIFACT = "ranker"
WEEK = np.timedelta64(7, "D")
SEED = 0
# The code version a stored ranker needs: its inputs are the sources' ranks and scores and the features, in
# this order. Another list (a source or feature added, renamed, moved) makes the stored ranker outdated.
SCHEMA = hashlib.sha256(json.dumps([SOURCES, FEATURES]).encode()).hexdigest()[:16]

FitState = Callable[[np.datetime64], CollabState]  # the state trained on the purchases before a cut


class Ranker:
    def __init__(self, booster, feature_names: list[str], meta: dict):
        self.booster = booster
        self.features = feature_names
        self.meta = meta

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X, num_threads=1)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature contributions (SHAP values) to each row's score: [rows × features] (the bias dropped)."""
        return self.booster.predict(X, num_threads=1, pred_contrib=True)[:, :-1]

    def save(self, store: ArtifactStore) -> None:
        with store.write(ARTIFACT, self.meta) as tmp:
            self.booster.save_model(str(tmp / "ranker.txt"))
            (tmp / "features.json").write_text(json.dumps(self.features))

    @staticmethod
    def is_current(store: ArtifactStore, catalog, params: CollabParams, factors: str | None = None) -> bool:
        """Whether the stored ranker (or the record that the data was too thin) fits this data, these
        parameters, this code's sources and features, and the ALS engine whose factors are served
        (``factors``; default: the stored collaborative model's)."""
        factors = factors or factor_engine(store)
        return store.is_current(ARTIFACT, {"data": catalog.fingerprint(), "params": asdict(params), "schema": SCHEMA,
                                           "factors": factors})

    @classmethod
    def load(cls, store: ArtifactStore, catalog) -> "Ranker | None":
        """The stored ranker for this catalogue, or None (never built, built from other data, or thin data)."""
        import lightgbm

        expect = {"data": catalog.fingerprint(), "trained": True, "schema": SCHEMA, "factors": factor_engine(store)}
        if not store.is_current(ARTIFACT, expect):
            return None
        art = store.load(ARTIFACT)
        return cls(lightgbm.Booster(model_file=str(art.path / "ranker.txt")), FEATURES, art.meta)


def factor_engine(store: ArtifactStore) -> str:
    """The ALS engine of the stored collaborative model: "spark" (MLlib) or "implicit"."""
    manifest = store.manifest("collab")
    return (manifest or {}).get("meta", {}).get("engine", "implicit")


def week_purchases(catalog, start: np.datetime64) -> pd.Series:
    """customer code → article rows bought in the week starting at ``start``."""
    tx = catalog.transactions
    days = tx["t_dat"].to_numpy()
    lo, hi = np.searchsorted(days, start, side="left"), np.searchsorted(days, start + WEEK, side="left")
    week = tx.iloc[lo:hi]
    return week.groupby("customer", sort=True)["article"].agg(lambda a: np.unique(a.to_numpy()))


def training_rows(window: Window, bought: pd.Series, per_source: int, limit: int):
    """(features, labels, group sizes) for customers who bought something among their candidates; blocks of
    customers in worker processes (`forked_map`), in order, so the rows do not depend on the worker count."""
    codes = bought.index.to_numpy()
    if len(codes) > limit:  # a seeded sample keeps H&M-scale training in memory
        codes = np.sort(np.random.default_rng(SEED).choice(codes, limit, replace=False))

    def block_rows(block_codes):
        block = window.block(block_codes)
        block_cands = candidates_block(window, block, per_source)
        labels = [np.isin(cands.articles, bought.at[code]) for code, cands in zip(block.codes, block_cands)]
        taught = [i for i, bought_some in enumerate(labels) if bought_some.any()]
        return (features_block(window, block.codes[taught], [block_cands[i] for i in taught]),
                [labels[i].astype(np.int8) for i in taught])

    X, y = [], []
    window.prepare()
    for block_X, block_y in forked_map(block_rows, (codes[start : start + BLOCK] for start in range(0, len(codes), BLOCK))):
        X += block_X
        y += block_y
    return X, y, [len(labels) for labels in y]


@dataclass
class TrainingData:
    """Candidates and labels of the weekly training windows, newest window first."""

    X: list[np.ndarray] = field(default_factory=list)  # per customer: features [candidates × FEATURES]
    y: list[np.ndarray] = field(default_factory=list)  # per customer: 1 where bought that week
    week_of: list[int] = field(default_factory=list)  # per customer: its window (0 = the newest)
    weeks: int = 0  # windows with at least one customer

    @property
    def positives(self) -> int:
        return int(sum(int(labels.sum()) for labels in self.y))

    def select(self, keep) -> "TrainingData":
        chosen = [i for i, w in enumerate(self.week_of) if keep(w)]
        return TrainingData([self.X[i] for i in chosen], [self.y[i] for i in chosen],
                            [self.week_of[i] for i in chosen], len({self.week_of[i] for i in chosen}))


def training_starts(catalog, params: CollabParams, now: np.datetime64) -> list[np.datetime64]:
    """Start days of the training weeks before ``now``, newest first, each with history before it: up to
    `ranker_weeks` of them, and no more than it takes their buyers to reach `ranker_customers` (in whole
    groups of `ranker_model_weeks`, which share one ALS fit). Thin data takes every week it may; at H&M's
    size a week holds more buyers than the budget, so one group of weeks and one ALS fit do."""
    first_day = catalog.transactions["t_dat"].iat[0]
    starts = [np.datetime64(now, "ns") - w * WEEK for w in range(1, params.ranker_weeks + 1)]
    starts = [start for start in starts if start > first_day]
    days, customers = catalog.transactions["t_dat"].to_numpy(), catalog.transactions["customer"].to_numpy()
    buyers = 0
    for i, start in enumerate(starts):
        lo, hi = np.searchsorted(days, [start, start + WEEK])
        buyers += len(np.unique(customers[lo:hi]))
        if buyers >= params.ranker_customers:
            return starts[: -(-(i + 1) // params.ranker_model_weeks) * params.ranker_model_weeks]
    return starts


def training_data(
    catalog, params: CollabParams, now: np.datetime64, fit_state: FitState, report: Progress = no_progress,
) -> TrainingData:
    """Candidates, features and labels of each training week. Consecutive weeks share one state (ALS + HNSW)
    fitted before the oldest of them (`ranker_model_weeks` a state: one ALS fit serves several windows)."""
    data = TrainingData()
    starts = training_starts(catalog, params, now)
    state = {}  # the current group's state only: one fit a group, and one state in memory at a time
    for i, start in enumerate(starts):
        group = starts[min((i // params.ranker_model_weeks + 1) * params.ranker_model_weeks, len(starts)) - 1]
        report(i / max(len(starts), 1), f"ranker: candidates for the week from {str(start)[:10]}")
        bought = week_purchases(catalog, start)
        if bought.empty:
            continue
        if group not in state:
            state = {group: fit_state(group)}
        window = Window(state[group], until=start)
        week_X, week_y, _ = training_rows(window, bought, params.candidates_per_source,
                                          params.ranker_customers // len(starts))
        data.X += week_X
        data.y += week_y
        data.week_of += [i] * len(week_y)
        data.weeks += bool(week_y)
    return data


def fit_booster(data: TrainingData, params: CollabParams):
    import lightgbm

    settings = {
        "objective": "lambdarank",
        "num_leaves": params.ranker_leaves,
        "learning_rate": params.ranker_learning_rate,
        "min_data_in_leaf": params.ranker_min_data_in_leaf,
        "feature_fraction": params.ranker_feature_fraction,
        "seed": SEED,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,  # fixed: LightGBM's results depend on the thread count
        "verbose": -1,
    }
    dataset = lightgbm.Dataset(np.vstack(data.X), np.concatenate(data.y), group=[len(y) for y in data.y],
                               feature_name=FEATURES, params={"verbose": -1})
    return lightgbm.train(settings, dataset, num_boost_round=params.ranker_rounds)


def train_ranker(
    catalog,
    params: CollabParams,
    now: np.datetime64,
    fit_state: FitState,
    *,
    progress: Progress | None = None,
    data: TrainingData | None = None,
) -> tuple[Ranker | None, str]:
    """A ranker trained on the weeks before ``now`` (``fit_state(cut)``: the state trained before ``cut``),
    or None and the reason the data is too thin (``data``: training windows computed before)."""
    report = progress or no_progress
    if data is None:
        data = training_data(catalog, params, now, fit_state, lambda f, m: report(0.9 * f, m))
    positives, weeks = data.positives, data.weeks
    if weeks < 2 or positives < params.ranker_min_positives:
        return None, (
            f"too little data to train the ranker ({positives} bought candidates in {weeks} weekly windows; "
            f"needs {params.ranker_min_positives} in 2): recommendations use the hand-weighted blend"
        )
    customers, rows = len(data.y), int(sum(len(y) for y in data.y))
    report(0.9, f"ranker: LightGBM on {rows:,} candidates of {customers:,} customers")
    booster = fit_booster(data, params)
    meta = {
        "trained": True,
        "schema": SCHEMA,
        "data": catalog.fingerprint(),
        "params": asdict(params),
        "now": str(now)[:10],
        "weeks": weeks,
        "customers": customers,
        "candidates": rows,
        "positives": positives,
    }
    report(1.0, "ranker ready")
    message = f"ranker trained on {weeks} weeks: {customers:,} customers, {rows:,} candidates, {positives:,} bought"
    return Ranker(booster, FEATURES, meta), message


def build_ranker(store: ArtifactStore, state: CollabState, fit_state: FitState, *,
                 progress: Progress | None = None, factors: str = "implicit") -> str | None:
    """Train and store the ranker for the stored collaborative ``state`` unless it is current; returns a
    notice when the data is too thin (then a marker artifact records it, so the next build does not retry).
    ``factors``: the ALS engine of ``fit_state``, recorded (it must be the one that made ``state``)."""
    catalog, params = state.catalog, state.params
    if Ranker.is_current(store, catalog, params, factors):
        meta = store.load(ARTIFACT).meta
        return None if meta.get("trained") else meta.get("message")
    ranker, message = train_ranker(catalog, params, state.interactions.now, fit_state, progress=progress)
    if ranker is not None:
        ranker.meta["factors"] = factors
        ranker.save(store)
        return None
    with store.write(ARTIFACT, {"trained": False, "schema": SCHEMA, "factors": factors, "data": catalog.fingerprint(),
                                "params": asdict(params), "message": message}):
        pass
    return message
