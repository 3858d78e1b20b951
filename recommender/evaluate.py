"""Offline evaluation as in the H&M competition: weekly time splits, 12 predictions per customer, MAP@12.

For each of the last ``weeks`` weeks, every model is trained strictly before the week (the ranker on the
weeks before that) and predicts 12 articles for every customer who bought in it. Rows: the learned ranker,
the hand-weighted blend, its ALS and customers-like-you signals alone, the public "last purchases, then
last week's best sellers" heuristic, and last week's best sellers. Each row gets MAP@12 and recall@12 per
week and their mean over weeks, and a 95% paired bootstrap interval of the ranker's mean MAP@12 minus
the row's (customers resampled within each week). Bought items are not excluded: the competition counts
repurchases as hits.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .catalog import Catalog, read_transactions
from .collab import CollabModel, CollabParams, CollabState, Progress
from .collab.blend import Profile, blend, profile, signals
from .collab.candidates import last_purchases
from .collab.params import no_progress
from .collab.ranker import train_ranker
from .collab.stats import robust_end
from .errors import DataError

METHODS = ["ranker", "blend", "als", "customers-like-you", "last purchases + popular", "popular last week"]
SIGNAL_ROWS = {"blend": None, "als": {"als": 1.0}, "customers-like-you": {"neighbours": 1.0}}
BOOTSTRAP_SAMPLES = 2000


def average_precision_at_k(actual, predicted, k: int = 12) -> float:
    """The competition's AP@k: mean of precision@i over the ranks i of hits, divided by min(|actual|, k)."""
    actual = set(actual)
    if not actual:
        return 0.0
    hits, score, seen = 0, 0.0, set()
    for rank, item in enumerate(list(predicted)[:k], start=1):
        if item in actual and item not in seen:
            hits += 1
            score += hits / rank
        seen.add(item)
    return score / min(len(actual), k)


def map_at_k(actual: Sequence, predicted: Sequence[Sequence], k: int = 12) -> float:
    """Mean AP@k over customers (the H&M competition metric)."""
    if len(actual) != len(predicted):
        raise ValueError(f"{len(actual)} actual lists but {len(predicted)} predicted lists")
    if not len(actual):
        return 0.0
    return float(np.mean([average_precision_at_k(a, p, k) for a, p in zip(actual, predicted)]))


def recall_at_k(actual: Sequence, predicted: Sequence[Sequence], k: int = 12) -> float:
    """Mean over customers of the share of their (distinct) test articles found in the top k."""
    scores = [len(set(a) & set(list(p)[:k])) / len(set(a)) for a, p in zip(actual, predicted) if len(set(a))]
    return float(np.mean(scores)) if scores else 0.0


def coverage(predicted: Sequence[Sequence], n_items: int, k: int = 12) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    distinct = set()
    for p in predicted:
        distinct.update(list(p)[:k])
    return len(distinct) / n_items if n_items else 0.0


def paired_bootstrap(
    a: list[np.ndarray], b: list[np.ndarray], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Interval of mean-over-weeks(mean(a) - mean(b)): per week, customers are resampled with replacement and
    both rows keep the same customers (a[w][i] and b[w][i] are one customer's scores)."""
    rng = np.random.default_rng(seed)
    totals = np.zeros(samples)
    for week_a, week_b in zip(a, b):
        diff = np.asarray(week_a, np.float64) - np.asarray(week_b, np.float64)
        picks = rng.integers(0, len(diff), size=(samples, len(diff)))
        totals += diff[picks].mean(axis=1)
    totals /= len(a)
    tail = (1.0 - level) / 2
    return float(np.quantile(totals, tail)), float(np.quantile(totals, 1.0 - tail))


@dataclass
class Evaluation:
    weekly: pd.DataFrame  # method, week, MAP@k, recall@k, customers
    summary: pd.DataFrame  # method, MAP@k, recall@k (means over weeks), ranker ÷ row, interval of ranker − row
    notes: list[str]


def test_weeks(catalog: Catalog, weeks: int, skip_weeks: int = 0) -> list[np.datetime64]:
    """Start days of the last ``weeks`` weeks (oldest first), ending ``skip_weeks`` weeks before the data's
    robust end (settings are chosen on earlier weeks than those reported)."""
    tx = catalog.transactions
    if tx is None or tx.empty:
        raise DataError(f"{catalog.root} has no transactions to evaluate on")
    if weeks < 1:
        raise DataError(f"--weeks must be at least 1, not {weeks}")
    if skip_weeks < 0:
        raise DataError(f"--skip-weeks must be at least 0, not {skip_weeks}")
    end = robust_end(tx["t_dat"].to_numpy()) - np.timedelta64(7 * skip_weeks, "D")
    starts = [end - np.timedelta64(7 * w, "D") for w in range(weeks, 0, -1)]
    if starts[0] <= tx["t_dat"].iat[0]:
        raise DataError(f"{catalog.root} spans fewer than {weeks + skip_weeks} weeks plus some history: "
                        "nothing to train on")
    return starts


def _test_file(catalog: Catalog, path: str | Path) -> pd.DataFrame:
    """The file's purchases with catalogue customer codes; a customer the catalogue lacks gets a code of
    their own below 0 (each is a cold-start customer, never merged with the others)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"test transactions file {path} does not exist")
    test, test_ids = read_transactions(path, catalog.articles)
    if test.empty:
        raise DataError(f"{path} holds no transactions: nothing to evaluate")
    codes = pd.Index(catalog.customer_ids).get_indexer(test_ids)
    unknown = codes < 0
    codes[unknown] = -1 - np.arange(int(unknown.sum()))
    return test.assign(customer=codes[test["customer"].to_numpy()])


def evaluate(
    catalog: Catalog,
    params: CollabParams = CollabParams(),
    *,
    weeks: int = 4,
    skip_weeks: int = 0,
    test_transactions: str | Path | None = None,
    k: int = 12,
    progress: Progress | None = None,
) -> Evaluation:
    """Every row of METHODS on each test week (or on ``test_transactions``, training on all purchases)."""
    report = progress or no_progress
    states: dict = {}

    def state_at(cut) -> CollabState:
        key = None if cut is None else str(cut)[:10]
        if key not in states:
            states[key] = CollabState.fit(catalog, params, until=cut)
        return states[key]

    notes = []
    if test_transactions is not None:
        test = _test_file(catalog, test_transactions)
        first = test["t_dat"].iat[0]
        periods = [(first, test)]  # trained strictly before the file's first day: its purchases never leak in
        overlap = int((catalog.transactions["t_dat"] >= first).sum()) if catalog.transactions is not None else 0
        notes.append(f"trained on the purchases before {str(first)[:10]}, the file's first day"
                     + (f" ({overlap:,} purchases of the data on or after it are left out)" if overlap else ""))
    else:
        tx = catalog.transactions
        days = tx["t_dat"].to_numpy()
        periods = []
        for start in test_weeks(catalog, weeks, skip_weeks):
            lo, hi = np.searchsorted(days, start), np.searchsorted(days, start + np.timedelta64(7, "D"))
            periods.append((start, tx.iloc[lo:hi]))
    rows, scores = [], {m: [] for m in METHODS}
    for i, (start, test) in enumerate(periods):
        label = "file" if test_transactions is not None else str(start)[:10]
        report(i / len(periods), f"week from {label}: training")
        state = state_at(start)
        ranker, message = train_ranker(catalog, params, state.interactions.now, state_at)
        model = CollabModel(state, ranker)
        if ranker is None:
            notes.append(f"week from {label}: {message}")
        report((i + 0.5) / len(periods), f"week from {label}: predicting")
        truth = test.groupby("customer", sort=True)["article"].agg(lambda a: set(a.tolist()))
        predicted = predict(model, truth.index.to_numpy(), k)
        for method in METHODS:
            ap = np.array([average_precision_at_k(a, p, k) for a, p in zip(truth, predicted[method])])
            scores[method].append(ap)
            rows.append({"method": method, "week": label, f"MAP@{k}": float(ap.mean()) if len(ap) else 0.0,
                         f"recall@{k}": recall_at_k(truth.tolist(), predicted[method], k), "customers": len(ap)})
    weekly = pd.DataFrame(rows)
    summary = weekly.groupby("method", sort=False)[[f"MAP@{k}", f"recall@{k}"]].mean().reset_index()
    ranker_map = summary.set_index("method").at["ranker", f"MAP@{k}"]
    summary["ranker ÷ row"] = ranker_map / summary[f"MAP@{k}"].replace(0.0, np.nan)
    intervals = [paired_bootstrap(scores["ranker"], scores[m]) for m in summary["method"]]
    summary["ranker − row, 95% low"] = [low for low, _ in intervals]
    summary["ranker − row, 95% high"] = [high for _, high in intervals]
    report(1.0, f"evaluated {len(periods)} week(s)")
    return Evaluation(weekly, summary, notes)


def predict(model: CollabModel, codes: np.ndarray, k: int) -> dict[str, list[list[int]]]:
    """Each method's k article rows for each customer code (below 0: a customer the data lacks)."""
    out = {m: [] for m in METHODS}
    state = model.state
    popular = np.argsort(-state.stats.week_sales, kind="stable")[:k].tolist()
    weights = {name: state.params.weights() if w is None else w for name, w in SIGNAL_ROWS.items()}
    needed = sorted({s for w in weights.values() for s in w if w[s]})
    for code in codes:
        code = int(code)
        shopper = profile(state, code) if code >= 0 else Profile.empty()
        scored = signals(state, shopper, needed)  # once per customer, however many blends are scored
        for name, w in weights.items():
            out[name].append(blend(state, shopper, scored, k, exclude_bought=False, weights=w)[0].tolist())
        if model.ranker is not None and code >= 0:
            out["ranker"].append(model.ranked(code, k, exclude_bought=False)[0].tolist())
        else:  # no ranker (thin data) or a customer the catalogue lacks: the blend stands in
            out["ranker"].append(out["blend"][-1])
        out["last purchases + popular"].append(last_purchases_then_popular(model, code, popular, k))
        out["popular last week"].append(popular)
    return out


def last_purchases_then_popular(model: CollabModel, code: int, popular: list[int], k: int) -> list[int]:
    """The public "time is our best friend" heuristic (the ranker's `last_purchases` candidate source);
    a customer the data lacks gets last week's best sellers."""
    if code < 0:
        return popular
    window = model.window
    return last_purchases(window, code, window.purchases(code), k)[0].tolist()
