"""Offline evaluation as in the H&M competition: a rolling weekly backtest, 12 predictions per customer, MAP@12.

For each of the last ``weeks`` weeks, every model is trained strictly before the week (the ranker on the
weeks before that) and predicts 12 articles for every customer who bought in it. Rows (`METHODS`): the
learned ranker, the ensemble hedge, the hand-weighted blend, its ALS and customers-like-you signals alone,
the public "last purchases, then last week's best sellers" heuristic, and last week's best sellers. Bought
items are not excluded: the competition counts repurchases as hits.

Nested protocol: a method is chosen (`CHOICE_RULE`) on the older weeks only; the newest ``report_weeks`` are
reported and never used to choose. Intervals are 95% bootstrap intervals that resample whole weeks and the
customers within them, so a week's luck counts as well as a customer's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .catalog import Catalog, read_transactions
from .collab import CollabModel, CollabParams, CollabState, Progress
from .collab.blend import Profile, blend, profile, signals
from .collab.candidates import last_purchases
from .collab.methods import BLEND_WEIGHTS, METHODS
from .collab.model import CHOICE_ARTIFACT
from .collab.params import no_progress
from .collab.ranker import SCHEMA, train_ranker
from .collab.stats import robust_end
from .errors import DataError
from .lookalikes import Looks
from .store import ArtifactStore

BOOTSTRAP_SAMPLES = 2000
BLOCK_WEEKS = 4  # the weeks of one block in the "which row leads" table
# The build's backtest: every week costs a state and a ranker trained on all purchases before it, so the
# weeks shrink with the data: at most BUILD_PURCHASES purchases trained on in all (hm_sample: every week
# asked for; H&M size, 31.8M purchases: 2 weeks), and at most BUILD_CUSTOMERS buyers a week (a seeded
# sample; an H&M week holds ~70,000, whose intervals are narrow anyway).
BUILD_PURCHASES = 64_000_000
BUILD_CUSTOMERS = 2_000
TABLES = ("weekly", "summary", "blocks")  # the `evaluation` artifact's files: <name>.parquet
CHOICE_RULE = ("the highest lower bound of the 95% interval of the mean MAP@12 over the choosing weeks "
               "(weeks and customers resampled): a method good only in some weeks loses to a steadier one")

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
    """Interval of mean-over-weeks(mean(a) - mean(b)), a[w][i] and b[w][i] being one customer's scores in
    week w: `week_bootstrap` of the per-customer differences (both rows keep the same customers)."""
    return week_bootstrap([np.asarray(x, np.float64) - np.asarray(y, np.float64) for x, y in zip(a, b)],
                          samples, seed, level)


def week_bootstrap(per_week: list[np.ndarray], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float]:
    """Interval of the mean over weeks of the weekly mean: each bootstrap sample draws as many weeks as there
    are, with replacement, and each drawn week its customers, with replacement (a week drawn twice gets two
    independent draws). One week: customers are resampled only."""
    per_week = [np.asarray(w, np.float64) for w in per_week if len(w)]
    if not per_week:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    n = len(per_week)
    picks = rng.integers(0, n, size=(samples, n)) if n > 1 else np.zeros((samples, 1), np.int64)
    totals = np.zeros(samples)
    for w, values in enumerate(per_week):
        draws = (picks == w).sum(axis=1)  # times week w is drawn in each sample
        means = values[rng.integers(0, len(values), size=(int(draws.sum()), len(values)))].mean(axis=1)
        totals += np.bincount(np.repeat(np.arange(samples), draws), weights=means, minlength=samples)
    totals /= n
    tail = (1.0 - level) / 2
    return float(np.quantile(totals, tail)), float(np.quantile(totals, 1.0 - tail))


@dataclass
class Evaluation:
    weekly: pd.DataFrame  # method, week, MAP@k, recall@k, MAP@k of truths sold before / new, customers
    summary: pd.DataFrame  # on the reported weeks: method, means, its interval, the shipped method − row
    blocks: pd.DataFrame  # per block of BLOCK_WEEKS weeks: each method's mean MAP@k and the leading row
    choice: dict  # method, rule, choosing weeks, each method's lower bound there (empty: nothing chosen)
    notes: list[str] = field(default_factory=list)

    @property
    def shipped(self) -> str:
        """The summary's reference row: the chosen method, else the ranker."""
        return self.choice.get("method", "ranker")


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
    codes = catalog.customer_codes(test_ids)
    unknown = codes < 0
    codes[unknown] = -1 - np.arange(int(unknown.sum()))
    return test.assign(customer=codes[test["customer"].to_numpy()])


def evaluate(
    catalog: Catalog,
    params: CollabParams = CollabParams(),
    *,
    weeks: int = 20,
    report_weeks: int = 4,
    skip_weeks: int = 0,
    test_transactions: str | Path | None = None,
    k: int = 12,
    customers: int | None = None,
    shipped: str | None = None,
    looks: Looks | None = None,
    fit_state: Callable[[np.datetime64], CollabState] | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Every row of METHODS on each test week (or on ``test_transactions``, training on all purchases before
    its first day). The newest ``report_weeks`` are reported; the method is chosen on the weeks before them
    (all weeks when ``report_weeks`` is 0). ``customers``: at most this many buyers a week (a seeded sample);
    ``shipped``: the reference row of a test file's summary (default: the ranker); ``looks``: the articles'
    content vectors and look-alikes (`load_looks`); ``fit_state(cut)``: the state before a cut (default: implicit's ALS on this catalogue)."""
    report = progress or no_progress
    if report_weeks < 0:
        raise DataError(f"--report-weeks must be at least 0, not {report_weeks}")
    fit = fit_state or (lambda cut: CollabState.fit(catalog, params, until=cut, looks=looks))
    states: dict = {}

    def state_at(cut) -> CollabState:
        key = None if cut is None else str(cut)[:10]
        if key not in states:  # kept: a week's state is a later week's ranker's (cuts 8 weeks apart coincide)
            states[key] = fit(cut)
        return states[key]

    notes = []
    periods = _periods(catalog, weeks, skip_weeks, test_transactions, notes)
    rows, scores = [], {m: [] for m in METHODS}
    sampler = np.random.default_rng(0)
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
        if customers is not None and len(truth) > customers:
            truth = truth.iloc[np.sort(sampler.choice(len(truth), customers, replace=False))]
        predicted = predict(model, truth.index.to_numpy(), k)
        sold_before = model.window.article_age  # NaN: never sold before the week
        for method in METHODS:
            ap = np.array([average_precision_at_k(a, p, k) for a, p in zip(truth, predicted[method])])
            scores[method].append(ap)
            split = _split_by_sold(truth.tolist(), predicted[method], np.isfinite(sold_before), k)
            rows.append({"method": method, "week": label, f"MAP@{k}": float(ap.mean()) if len(ap) else 0.0,
                         f"recall@{k}": recall_at_k(truth.tolist(), predicted[method], k), **split,
                         "customers": len(ap)})
    weekly = pd.DataFrame(rows)
    report(1.0, f"evaluated {len(periods)} week(s)")
    if test_transactions is not None:
        return Evaluation(weekly, _summary(weekly, scores, shipped or "ranker", k), _blocks(weekly, k), {}, notes)
    n_report = min(report_weeks, len(periods))
    choosing = len(periods) - n_report if n_report else len(periods)
    choice = choose({m: s[:choosing] for m, s in scores.items()}) if choosing else {}
    if choice:
        choice["weeks"] = [str(start)[:10] for start, _ in periods[:choosing]]
    else:
        notes.append(f"no week before the {n_report} reported ones to choose on: nothing chosen (the ranker "
                     "is the reference row)")
    reported = {m: s[-n_report:] if n_report else s for m, s in scores.items()}
    weeks_shown = weekly["week"].isin(sorted(weekly["week"].unique())[-n_report:] if n_report else weekly["week"])
    summary = _summary(weekly[weeks_shown], reported, choice.get("method", "ranker"), k)
    return Evaluation(weekly, summary, _blocks(weekly, k), choice, notes)


def choose(scores: dict[str, list[np.ndarray]]) -> dict:
    """The method `CHOICE_RULE` picks from each method's per-week per-customer AP (ties: the earlier row)."""
    bounds = {m: week_bootstrap(s)[0] for m, s in scores.items()}
    best = max(METHODS, key=lambda m: (bounds[m], -METHODS.index(m)))
    return {"method": best, "rule": CHOICE_RULE, "lower_bounds": {m: round(b, 5) for m, b in bounds.items()}}


def _split_by_sold(truth: list[set], predicted: list[list[int]], sold: np.ndarray, k: int) -> dict[str, float]:
    """MAP@k against the truths that had sold before the week, and against those that had not (each over the
    customers with such truths; NaN when none)."""
    out = {}
    for name, keep in ((f"MAP@{k} sold before", True), (f"MAP@{k} new", False)):
        aps = [average_precision_at_k({a for a in t if sold[a] == keep}, p, k)
               for t, p in zip(truth, predicted) if any(sold[a] == keep for a in t)]
        out[name] = float(np.mean(aps)) if aps else np.nan
    return out


def _summary(weekly: pd.DataFrame, scores: dict[str, list[np.ndarray]], shipped: str, k: int) -> pd.DataFrame:
    """Per method over these weeks: means, its own interval, and the shipped row's ratio and paired interval."""
    measures = [f"MAP@{k}", f"recall@{k}", f"MAP@{k} sold before", f"MAP@{k} new"]
    summary = weekly.groupby("method", sort=False)[measures].mean().reset_index()
    own = [week_bootstrap(scores[m]) for m in summary["method"]]
    summary["95% low"], summary["95% high"] = [lo for lo, _ in own], [hi for _, hi in own]
    reference = summary.set_index("method").at[shipped, f"MAP@{k}"]
    summary["shipped ÷ row"] = reference / summary[f"MAP@{k}"].replace(0.0, np.nan)
    paired = [paired_bootstrap(scores[shipped], scores[m]) for m in summary["method"]]
    summary["shipped − row, 95% low"] = [lo for lo, _ in paired]
    summary["shipped − row, 95% high"] = [hi for _, hi in paired]
    summary.insert(1, "shipped", summary["method"] == shipped)
    return summary


def _blocks(weekly: pd.DataFrame, k: int) -> pd.DataFrame:
    """Consecutive blocks of BLOCK_WEEKS weeks, the newest block complete: each method's mean and the leader."""
    weeks = sorted(weekly["week"].unique())
    rows = []
    for end in range(len(weeks), 0, -BLOCK_WEEKS):
        chosen = weeks[max(0, end - BLOCK_WEEKS) : end]
        means = weekly[weekly["week"].isin(chosen)].groupby("method", sort=False)[f"MAP@{k}"].mean()
        rows.append({"weeks": f"{chosen[0]} – {chosen[-1]}" if len(chosen) > 1 else chosen[0],
                     **means.to_dict(), "leader": means.idxmax()})
    return pd.DataFrame(rows[::-1])


def _periods(catalog: Catalog, weeks: int, skip_weeks: int, test_transactions, notes: list[str]) -> list:
    """(first day, purchases) of each test period: the file's, or each of the last ``weeks`` weeks."""
    if test_transactions is not None:
        test = _test_file(catalog, test_transactions)
        first = test["t_dat"].iat[0]
        overlap = int((catalog.transactions["t_dat"] >= first).sum()) if catalog.transactions is not None else 0
        notes.append(f"trained on the purchases before {str(first)[:10]}, the file's first day"
                     + (f" ({overlap:,} purchases of the data on or after it are left out)" if overlap else ""))
        return [(first, test)]  # trained strictly before the file's first day: its purchases never leak in
    tx = catalog.transactions
    days = tx["t_dat"].to_numpy()
    periods = []
    for start in test_weeks(catalog, weeks, skip_weeks):
        lo, hi = np.searchsorted(days, start), np.searchsorted(days, start + np.timedelta64(7, "D"))
        periods.append((start, tx.iloc[lo:hi]))
    return periods


def predict(model: CollabModel, codes: np.ndarray, k: int) -> dict[str, list[list[int]]]:
    """Each method's k article rows for each customer code (below 0: a customer the data lacks)."""
    out = {m: [] for m in METHODS}
    state = model.state
    popular = np.argsort(-state.stats.week_sales, kind="stable")[:k].tolist()
    weights = {name: state.params.weights() if w is None else w for name, w in BLEND_WEIGHTS.items()}
    needed = sorted({s for w in weights.values() for s in w if w[s]})
    known = [int(c) for c in codes if c >= 0]
    ranked = model.ranked_block(known, k, False, ("ranker", "ensemble")) if model.ranker is not None and known else {}
    at = {code: i for i, code in enumerate(known)}
    for code in codes:
        code = int(code)
        shopper = profile(state, code) if code >= 0 else Profile.empty()
        scored = signals(state, shopper, needed)  # once per customer, however many blends are scored
        for name, w in weights.items():
            out[name].append(blend(state, shopper, scored, k, exclude_bought=False, weights=w)[0].tolist())
        for name in ("ranker", "ensemble"):  # no ranker (thin data) or a customer the data lacks: the blend
            out[name].append(ranked[name][at[code]].tolist() if ranked and code >= 0 else out["blend"][-1])
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


def build_weeks(catalog: Catalog, wanted: int) -> int:
    """How many weeks the build's backtest evaluates (see BUILD_PURCHASES)."""
    return max(1, min(wanted, BUILD_PURCHASES // max(len(catalog.transactions), 1)))


def backtest_expect(catalog: Catalog, params: CollabParams, weeks: int, factors: str) -> dict:
    """What a stored backtest must have been made with to be current."""
    return {"data": catalog.fingerprint(), "params": asdict(params), "schema": SCHEMA, "factors": factors,
            "weeks": build_weeks(catalog, weeks), "customers": BUILD_CUSTOMERS, "rule": CHOICE_RULE}


def build_backtest(store: ArtifactStore, catalog: Catalog, params: CollabParams, fit_state, *, weeks: int,
                   factors: str, looks: Looks | None = None, progress: Progress | None = None) -> str:
    """For `build`: the backtest over the weeks before the build's cut, the method chosen on all of them,
    stored as the `evaluation` artifact (which `CollabModel.load` reads). Returns a line for the log."""
    expect = backtest_expect(catalog, params, weeks, factors)
    weeks = expect["weeks"]
    if store.is_current(CHOICE_ARTIFACT, expect):
        return f"backtest: current ({store.manifest(CHOICE_ARTIFACT)['meta'].get('chosen')} chosen)"
    try:
        result = evaluate(catalog, params, weeks=weeks, report_weeks=0, customers=BUILD_CUSTOMERS, looks=looks,
                          fit_state=fit_state, progress=progress)
    except DataError as exc:  # too little history for even one week: nothing chosen, the ranker ships
        with store.write(CHOICE_ARTIFACT, {**expect, "chosen": None, "notes": [str(exc)]}):
            pass
        return f"backtest: {exc}; the ranker ships"
    with store.write(CHOICE_ARTIFACT, {**expect, "chosen": result.choice["method"], "choice": result.choice,
                                       "notes": result.notes}) as folder:
        for name in TABLES:
            getattr(result, name).to_parquet(folder / f"{name}.parquet")
    return f"backtest over {weeks} weeks chose {result.choice['method']}"


def stored_backtest(store: ArtifactStore) -> Evaluation | None:
    """The build's backtest (tables, choice, notes), or None when there is none or it is unreadable."""
    try:
        art = store.load(CHOICE_ARTIFACT)
        tables = {name: pd.read_parquet(art.path / f"{name}.parquet") for name in TABLES}
    except Exception:  # absent, from an older build, or too little history to backtest
        return None
    return Evaluation(**tables, choice=art.meta.get("choice", {}), notes=list(art.meta.get("notes", [])))
