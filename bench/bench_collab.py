"""Collaborative engine benchmarks.

    python bench/bench_collab.py scale [--data /tmp/lookbook_hm_scale] [--queries 1000]
        Full H&M size (1,371,980 customers, 105,542 articles, 31.8M transactions from the demo
        generator's transactions-only mode, reused if present): seconds and peak RSS per phase
        (matrix, ALS 64 factors × 15 iterations, HNSW), HNSW recall@10 vs exact search, query p50s.
        Targets (issue 4), 2 cores / 24 GiB: build ≤ 12 min, peak RSS ≤ 8 GB, similar-customer query
        p50 ≤ 1 ms, recommend p50 ≤ 20 ms.

    python bench/bench_collab.py ranker [--data /tmp/lookbook_hm_scale] [--customers N --transactions N]
        The learned ranker at scale: serving model fit, ranker training (time, peak RSS), recommend p50,
        and `recommend --submission` on a sample of customers (worker processes, one a core, as the CLI
        runs it; and one process on a part of them), extrapolated to all. Targets (issue 10),
        2 cores: ranker training ≤ 15 min and ≤ 10 GB, submission for every customer ≤ 30 min, p50 ≤ 30 ms.

    python bench/bench_collab.py tune [--data ../shared/hm_sample] [--folds 4]
        One parameter at a time around the defaults: each row's MAP@12 averaged over the last `folds`
        weeks (one week alone is ~70 customers in the sample, too few to choose parameters on). Run it
        on a catalogue without its last 4 weeks to keep the weeks `evaluate` reports out of the choice.

    python bench/bench_collab.py reach [--data ../shared/hm_sample] [--weeks 12]
        What any recommender could reach in each of the last weeks: of the (customer, article) pairs
        bought that week, the share the customer had bought before, the share of a product (any colour)
        the customer had bought before, and the share of articles anyone in the data bought in the 30
        days before, or ever before. Articles nobody bought before are out of reach of every
        purchase-based source: they bound what a ranker can gain over the heuristics.

    python bench/bench_collab.py sources [--data ../shared/hm_sample] [--artifacts A] [--weeks 8] [--skip-weeks 4]
        Recall of each candidate source at its `candidates_per_source` proposals on the tuning weeks (those
        before the newest `skip-weeks`, which `evaluate` reports): of the (customer, article) pairs bought
        that week, the share the source proposed, over all pairs, the pairs of articles sold before the
        week, and the pairs of articles nobody had bought before (new to the data). The content source
        reads the build's vectors in A (without: it proposes nothing). Target (issue 23): the content
        source's recall of never-bought truths ≥ 0.05.

    python bench/bench_collab.py complete [--data ../shared/hm_sample] [--artifacts A] [--weeks 4]
        Complete the look on held-out baskets: the newest `weeks` weeks are held out (co-purchases and
        look-alikes from before them); for each item of a customer's week that holds articles of another
        product group, are any of those others in its 12 complements (hit@12), and what share (recall@12),
        against the 12 best sellers of the other groups (last 30 days, one per product type). 95%
        intervals resample baskets. Target (issue 25): hit@12 ≥ 2× the baseline.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recommender.catalog import load_catalog  # noqa: E402
from recommender.collab import CollabModel, CollabParams, CollabState, single_threaded_blas  # noqa: E402
from recommender.collab.ranker import train_ranker  # noqa: E402
from recommender.collab.submission import prediction_rows, write_submission  # noqa: E402
from recommender.evaluate import evaluate  # noqa: E402
from recommender.runtime import available_cores  # noqa: E402
from recommender.store import ArtifactStore  # noqa: E402


def peak_rss_gb(children: bool = False) -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_seconds() -> float:
    """CPU time of this process and of its finished worker processes."""
    mine, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + workers.ru_utime + workers.ru_stime


# --- tune ------------------------------------------------------------------------------------------


def tune(args) -> None:
    """One parameter at a time around the defaults: each row's mean MAP@12 over the weekly folds."""
    catalog = load_catalog(args.data)
    base = CollabParams()
    print(f"baseline {base}\n")
    sweeps = {
        "factors": [32, 64, 128],
        "regularization": [0.01, 0.05, 0.2, 1.0],
        "weighting": ["bm25", "tfidf", "none"],
        "neighbours": [10, 20, 50],
        "ranker_weeks": [8, 26, 52],
        "ranker_rounds": [30, 60, 200],
        "ranker_leaves": [7, 15],
    }
    for name, values in sweeps.items():
        for value in values:
            summary = evaluate(catalog, replace(base, **{name: value}), weeks=args.folds).summary
            maps = summary.set_index("method")["MAP@12"].round(5).to_dict()
            print(json.dumps({"param": name, "value": value, **maps}), flush=True)


# --- reach -----------------------------------------------------------------------------------------


def reach(args) -> None:
    """Per week, the shares of bought (customer, article) pairs that history could have pointed to."""
    catalog = load_catalog(args.data)
    tx, products = catalog.transactions, catalog.articles["product_code"].to_numpy()
    days = tx["t_dat"].to_numpy()
    end = days[-1] + np.timedelta64(1, "D")
    rows = []
    for w in range(1, args.weeks + 1):
        start = end - w * np.timedelta64(7, "D")
        lo, hi = np.searchsorted(days, [start, start + np.timedelta64(7, "D")])
        before, week = tx.iloc[:lo], tx.iloc[lo:hi].drop_duplicates(["customer", "article"])
        if week.empty or before.empty:
            continue
        recent = before[before["t_dat"].to_numpy() >= start - np.timedelta64(30, "D")]
        pairs = lambda frame, key: set(zip(frame["customer"].tolist(), key(frame).tolist()))
        own = pairs(before, lambda f: f["article"])
        own_products = pairs(before, lambda f: products[f["article"].to_numpy()])
        rows.append({
            "week": str(start)[:10], "customers": week["customer"].nunique(), "pairs": len(week),
            "bought before": np.mean([p in own for p in zip(week["customer"], week["article"])]),
            "product before": np.mean([p in own_products for p in zip(week["customer"], products[week["article"].to_numpy()])]),
            "sold in 30 days": week["article"].isin(recent["article"]).mean(),
            "sold ever": week["article"].isin(before["article"]).mean(),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))
    print("mean  " + "  ".join(f"{c} {table[c].mean():.3f}" for c in table.columns[3:]))


def sources(args) -> None:
    """Per source: recall of the week's bought pairs, split by whether the article had sold before."""
    from recommender.collab.candidates import BLOCK, SOURCES, Window, candidates_block
    from recommender.collab.ranker import week_purchases
    from recommender.lookalikes import load_looks
    from recommender.collab.stats import robust_end

    catalog = load_catalog(args.data)
    looks = load_looks(ArtifactStore(args.artifacts), catalog) if args.artifacts else None
    print(f"content vectors and look-alikes: {'the build in ' + args.artifacts if looks is not None else 'none'}")
    params = CollabParams()
    end = robust_end(catalog.transactions["t_dat"].to_numpy()) - np.timedelta64(7 * args.skip_weeks, "D")
    found = {s: {"all": 0, "sold": 0, "new": 0} for s in SOURCES + ("any",)}
    totals, proposals = {"all": 0, "sold": 0, "new": 0}, {s: 0 for s in SOURCES}
    customers = 0
    for w in range(args.weeks, 0, -1):
        start = end - np.timedelta64(7 * w, "D")
        window = Window(CollabState.fit(catalog, params, until=start, looks=looks))
        bought = week_purchases(catalog, start)
        codes = bought.index.to_numpy()
        customers += len(codes)
        for at in range(0, len(codes), BLOCK):
            block = window.block(codes[at : at + BLOCK])
            for code, cands in zip(block.codes, candidates_block(window, block, params.candidates_per_source)):
                truth = bought.at[code]
                new = np.isnan(window.article_age[truth])
                totals["all"] += len(truth)
                totals["new"] += int(new.sum())
                totals["sold"] += int((~new).sum())
                for i, source in enumerate(SOURCES + ("any",)):
                    mine = cands.articles if source == "any" else cands.articles[np.isfinite(cands.ranks[:, i])]
                    if source != "any":
                        proposals[source] += len(mine)
                    hit = np.isin(truth, mine)
                    found[source]["all"] += int(hit.sum())
                    found[source]["new"] += int((hit & new).sum())
                    found[source]["sold"] += int((hit & ~new).sum())
        print(f"week from {str(start)[:10]}: {len(codes)} buyers", flush=True)
    rows = [{"source": s, "proposals a customer": proposals[s] / customers if s in proposals else np.nan,
             **{f"recall ({k})": found[s][k] / max(totals[k], 1) for k in ("all", "sold", "new")}}
            for s in SOURCES + ("any",)]
    print(f"{args.weeks} weeks, {customers} buyers, {totals['all']} bought pairs "
          f"({totals['new'] / max(totals['all'], 1):.1%} of articles nobody had bought before)")
    print(pd.DataFrame(rows).round(4).to_string(index=False))


def complete(args) -> None:
    """Held-out baskets: complete the look against the other groups' best sellers."""
    from recommender.collab.stats import robust_end
    from recommender.lookalikes import load_looks

    catalog = load_catalog(args.data)
    looks = load_looks(ArtifactStore(args.artifacts), catalog) if args.artifacts else None
    tx = catalog.transactions
    end = robust_end(tx["t_dat"].to_numpy())
    cut = end - np.timedelta64(7 * args.weeks, "D")
    outfits = CollabModel(CollabState.fit(catalog, CollabParams(), until=cut, looks=looks)).outfits
    groups, types = outfits.groups, outfits.types
    before = tx[(tx["t_dat"] < cut) & (tx["t_dat"] >= cut - np.timedelta64(30, "D"))]
    sales = np.bincount(before["article"].to_numpy(), minlength=len(groups))
    by_sales = np.argsort(-sales, kind="stable")[: 2000]
    test = tx[(tx["t_dat"] >= cut) & (tx["t_dat"] < end)]
    week = ((test["t_dat"] - cut) / np.timedelta64(7, "D")).astype(int)
    rows = []
    for basket_id, (_, items) in enumerate(test.groupby([test["customer"], week])["article"]):
        items = np.unique(items.to_numpy())
        for item in items:
            others = items[groups[items] != groups[item]]
            if not len(others):
                continue
            found = outfits.complete(int(item), 12)
            base = by_sales[groups[by_sales] != groups[item]]
            _, first = np.unique(types[base], return_index=True)
            base = base[np.sort(first)][:12]
            rows.append({"basket": basket_id, "had co-purchases": bool(len(outfits.strength(int(item))[0])),
                         "proposed": len(found.rows),
                         "hit": bool(np.isin(others, found.rows).any()), "base hit": bool(np.isin(others, base).any()),
                         "recall": np.isin(others, found.rows).mean(), "base recall": np.isin(others, base).mean()})
    frame = pd.DataFrame(rows)
    print(f"held out {args.weeks} weeks from {str(cut)[:10]}: {frame['basket'].nunique()} baskets across product "
          f"groups, {len(frame)} queries ({frame['had co-purchases'].mean():.0%} of items with co-purchases "
          f"before; the rest borrow their look-alikes'){'' if looks is not None else ' — no look-alikes: build A first'}")
    rng = np.random.default_rng(0)
    baskets = frame.groupby("basket")[["hit", "base hit", "recall", "base recall"]].agg(["sum", "count"])
    ids = np.arange(len(baskets))
    for measure, base in (("hit", "base hit"), ("recall", "base recall")):
        ours, theirs = baskets[(measure, "sum")].to_numpy(), baskets[(base, "sum")].to_numpy()
        count = baskets[(measure, "count")].to_numpy()
        picks = rng.integers(0, len(ids), size=(2000, len(ids)))
        a, b = ours[picks].sum(1) / count[picks].sum(1), theirs[picks].sum(1) / count[picks].sum(1)
        print(f"{measure}@12: complete the look {ours.sum() / count.sum():.4f} "
              f"[{np.quantile(a, 0.025):.4f}, {np.quantile(a, 0.975):.4f}], best sellers of the other groups "
              f"{theirs.sum() / count.sum():.4f} [{np.quantile(b, 0.025):.4f}, {np.quantile(b, 0.975):.4f}], "
              f"ratio {ours.sum() / max(theirs.sum(), 1e-12):.2f}, difference "
              f"[{np.quantile(a - b, 0.025):+.4f}, {np.quantile(a - b, 0.975):+.4f}]")
    for had, part in frame.groupby("had co-purchases"):
        print(f"  items {'with' if had else 'without'} co-purchases before: {len(part)} queries, hit@12 "
              f"{part['hit'].mean():.4f} vs {part['base hit'].mean():.4f}, {part['proposed'].mean():.1f} proposed")


# --- ranker at scale -------------------------------------------------------------------------------


def ranker_scale(args) -> None:
    """Ranker training time and peak memory, one-customer latency, and the submission file's rate."""
    data = Path(args.data)
    if not (data / "transactions_train.csv").is_file():
        from recommender.demo import generate_transactions_only

        sizes = {"n_customers": args.customers, "n_transactions": args.transactions}
        print(f"generating transactions into {data}: {sizes} …", flush=True)
        generate_transactions_only(data, **{k: v for k, v in sizes.items() if v})
    cache = Path(args.cache or data.parent / f"{data.name}_artifacts")
    warm_cache = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from recommender.catalog import load_catalog; "
                  f"load_catalog({str(data)!r}, cache_dir={str(cache)!r})")
    subprocess.run([sys.executable, "-c", warm_cache], check=True)
    catalog = load_catalog(data, cache_dir=cache)
    n_customers = len(catalog.customer_ids)
    print(f"{len(catalog.transactions):,} transactions, {n_customers:,} customers, {len(catalog.articles):,} articles",
          flush=True)
    params = replace(CollabParams(), **({"ranker_weeks": args.ranker_weeks} if args.ranker_weeks else {}))
    clock = time.perf_counter(), time.process_time()
    model = CollabModel.fit(catalog, params)
    print(f"serving model (ALS + HNSW): {time.perf_counter() - clock[0]:.0f} s wall, "
          f"{time.process_time() - clock[1]:.0f} s CPU; peak RSS {peak_rss_gb():.2f} GB", flush=True)

    clock = time.perf_counter(), cpu_seconds()
    ranker, message = train_ranker(catalog, params, model.state.interactions.now,
                                   lambda cut: CollabState.fit(catalog, params, until=cut))
    print(f"ranker training (at most {params.ranker_weeks} weeks of candidates, one ALS + HNSW per "
          f"{params.ranker_model_weeks} weeks, at most {params.ranker_customers:,} customers in all, LightGBM): "
          f"{time.perf_counter() - clock[0]:.0f} s wall, {cpu_seconds() - clock[1]:.0f} s CPU with the worker "
          f"processes; peak RSS {peak_rss_gb():.2f} GB (a worker's at most {peak_rss_gb(children=True):.2f} GB); "
          f"{message}", flush=True)
    model.ranker = ranker

    rng = np.random.default_rng(0)
    with_history = np.flatnonzero(np.diff(model.state.interactions.counts.indptr) > 0)
    ids = catalog.customer_ids[rng.choice(with_history, size=args.queries, replace=False)]
    model.recommend(ids[0])  # first call builds the window (history index, co-purchases): timed below
    times = []
    for cid in ids:
        start = time.perf_counter()
        model.recommend(cid, k=12)
        times.append(time.perf_counter() - start)
    times = np.array(times) * 1000
    print(f"recommend (ranker, with reasons): p50 {np.percentile(times, 50):.1f} ms, "
          f"p95 {np.percentile(times, 95):.1f} ms over {len(ids)} customers", flush=True)

    # The file in worker processes, one a core (the CLI's default), then one process on a part of the same ids.
    sample = catalog.customer_ids[rng.choice(n_customers, size=min(args.submission_sample, n_customers), replace=False)]
    sink = io.StringIO()
    clock = time.perf_counter(), cpu_seconds()
    written = write_submission(model, sample, sink)
    wall, cpu = time.perf_counter() - clock[0], cpu_seconds() - clock[1]
    print(f"submission, {available_cores()} worker processes: {written:,} customers in {wall:.0f} s wall, {cpu:.0f} s CPU "
          f"({1000 * wall / written:.2f} ms wall a customer); all {n_customers:,} customers extrapolated: "
          f"{wall / written * n_customers / 60:.0f} min wall (load average {os.getloadavg()[0]:.1f})", flush=True)
    part = sample[: args.single_sample]
    one = io.StringIO()
    clock = time.perf_counter(), time.process_time()
    write_submission(model, part, one, workers=1)
    wall_one, cpu_one = time.perf_counter() - clock[0], time.process_time() - clock[1]
    print(f"submission, one process: {1000 * wall_one / len(part):.2f} ms wall, {1000 * cpu_one / len(part):.2f} ms CPU "
          f"a customer over {len(part):,} of them", flush=True)
    # The same customers one at a time (a block of one): a block's ALS product may round the last bit
    # differently, so lists may differ where that decides a tie; count them.
    lines = one.getvalue().splitlines()[1:]
    article_ids = catalog.articles["article_id"].to_numpy()
    single = [" ".join(article_ids[prediction_rows(model, catalog.customer_code(c), 12)]) for c in part]
    same = sum(line.split(",")[1] == expected for line, expected in zip(lines, single))
    print(f"block lists equal to one customer at a time: {same:,} of {len(part):,}; the workers' file equals "
          f"one process's: {sink.getvalue().splitlines()[: len(part) + 1] == one.getvalue().splitlines()}", flush=True)
    print(f"peak RSS {peak_rss_gb():.2f} GB")


# --- scale -----------------------------------------------------------------------------------------


def scale(args) -> None:
    data = Path(args.data)
    if not (data / "transactions_train.csv").is_file():
        from recommender.demo import generate_transactions_only

        print(f"generating the full-size transactions into {data} …", flush=True)
        start = time.perf_counter()
        generate_transactions_only(data)
        print(f"  generated in {time.perf_counter() - start:.0f} s", flush=True)
    cache = Path(args.cache or data.parent / f"{data.name}_artifacts")
    # Parse the CSV into the parquet cache in another process, so this one's peak RSS is the model's.
    warm_cache = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from recommender.catalog import load_catalog; "
                  f"load_catalog({str(data)!r}, cache_dir={str(cache)!r})")
    subprocess.run([sys.executable, "-c", warm_cache], check=True)
    start = time.perf_counter()
    catalog = load_catalog(data, cache_dir=cache)
    print(f"catalogue loaded in {time.perf_counter() - start:.0f} s: {len(catalog.transactions):,} transactions, "
          f"{len(catalog.customer_ids):,} customers, {len(catalog.articles):,} articles; "
          f"peak RSS {peak_rss_gb():.2f} GB", flush=True)
    rss_after_load = peak_rss_gb()

    # Wall and CPU seconds per phase: on a shared machine CPU seconds / 2 cores is the uncontended wall time.
    phases: dict[str, tuple[float, float]] = {}
    last = [time.perf_counter(), time.process_time(), "matrix"]

    def progress(fraction: float, message: str) -> None:
        phase = "matrix" if fraction < 0.1 else "als" if fraction < 0.8 else "hnsw" if fraction < 1 else "done"
        if phase != last[2]:
            wall, cpu = time.perf_counter(), time.process_time()
            phases[last[2]] = (wall - last[0], cpu - last[1])
            print(f"  {last[2]}: {wall - last[0]:.0f} s wall, {cpu - last[1]:.0f} s CPU; "
                  f"peak RSS {peak_rss_gb():.2f} GB", flush=True)
            last[:] = [wall, cpu, phase]

    params = replace(CollabParams(), hnsw_M=args.hnsw_M, hnsw_ef_construction=args.hnsw_ef_construction)
    start, start_cpu = time.perf_counter(), time.process_time()
    model = CollabModel.fit(catalog, params, progress=progress)
    build, build_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    print(f"build {build:.0f} s wall, {build_cpu:.0f} s CPU (64 factors, 15 iterations; "
          f"{', '.join(f'{k} {w:.0f}/{c:.0f} s' for k, (w, c) in phases.items())}); "
          f"peak RSS {peak_rss_gb():.2f} GB (after catalogue load {rss_after_load:.2f} GB); "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    rng = np.random.default_rng(0)
    indexed = np.flatnonzero(np.diff(model.state.interactions.counts.indptr) > 0)
    queries = rng.choice(indexed, size=args.queries, replace=False)
    ids = catalog.customer_ids[queries]

    # Recall@10 of HNSW against exact cosine search over the same customers (implicit's similar_users),
    # and the raw query latency, for a few query-time ef values on the built index.
    with single_threaded_blas():
        exact, _ = model.state.als.similar_users(queries, N=11, users=indexed)
    exact = [set(truth[truth != code][:10].tolist()) for code, truth in zip(queries, exact)]
    vectors = model.state.als.user_factors[queries]
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    print(f"HNSW M={params.hnsw_M}, ef_construction={params.hnsw_ef_construction}:", flush=True)
    for ef in (16, 32, 64, 128):
        model.state.index.set_ef(ef)
        hits, times = 0, []
        for code, vector, truth in zip(queries, vectors, exact):
            start = time.perf_counter()
            labels, _ = model.state.index.knn_query(vector, k=11)
            times.append(time.perf_counter() - start)
            hits += len(set(labels[0][labels[0] != code][:10].tolist()) & truth)
        print(f"  ef={ef:>3}: recall@10 vs exact {hits / (10 * len(queries)):.4f}, "
              f"knn query p50 {np.percentile(times, 50) * 1000:.3f} ms", flush=True)
    model.state.index.set_ef(params.hnsw_ef)

    for name, call in (
        ("similar_customers", lambda cid: model.similar_customers(cid, k=10)),
        ("recommend", lambda cid: model.recommend(cid, k=12)),
    ):
        times = []
        for cid in ids:
            start = time.perf_counter()
            call(cid)
            times.append(time.perf_counter() - start)
        times = np.array(times) * 1000
        print(f"{name}: p50 {np.percentile(times, 50):.2f} ms, p95 {np.percentile(times, 95):.2f} ms", flush=True)

    store = ArtifactStore(Path(tempfile.mkdtemp(prefix="lookbook_bench_collab_")))
    try:
        start = time.perf_counter()
        model.state.save(store)
        saved = time.perf_counter() - start
        size = sum(f.stat().st_size for f in store.root.rglob("*") if f.is_file()) / 2**30
        start = time.perf_counter()
        CollabModel.load(store, catalog)
        print(f"artifact {size:.2f} GB: save {saved:.0f} s, load {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        shutil.rmtree(store.root, ignore_errors=True)
    print(f"peak RSS {peak_rss_gb():.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("scale")
    p.add_argument("--data", default="/tmp/lookbook_hm_scale")
    p.add_argument("--cache", default=None, help="parquet cache folder (default: next to --data)")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--hnsw-M", dest="hnsw_M", type=int, default=CollabParams.hnsw_M)
    p.add_argument("--hnsw-ef-construction", type=int, default=CollabParams.hnsw_ef_construction)
    p.set_defaults(run=scale)
    p = verbs.add_parser("ranker")
    p.add_argument("--data", default="/tmp/lookbook_hm_scale")
    p.add_argument("--cache", default=None, help="parquet cache folder (default: next to --data)")
    p.add_argument("--customers", type=int, help="when generating: customers (default: H&M's 1,371,980)")
    p.add_argument("--transactions", type=int, help="when generating: rows (default: H&M's 31.8M)")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--submission-sample", type=int, default=30_000, help="customers in the timed file (workers)")
    p.add_argument("--single-sample", type=int, default=2000, help="of those, customers timed in one process")
    p.add_argument("--ranker-weeks", type=int, help="training weeks (default: CollabParams'); fewer to save time")
    p.set_defaults(run=ranker_scale)
    p = verbs.add_parser("tune")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "hm_sample"))
    p.add_argument("--folds", type=int, default=4)
    p.set_defaults(run=tune)
    p = verbs.add_parser("reach")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "hm_sample"))
    p.add_argument("--weeks", type=int, default=12)
    p.set_defaults(run=reach)
    p = verbs.add_parser("sources")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "hm_sample"))
    p.add_argument("--artifacts", help="a build of the data: its content vectors feed the looks-like source")
    p.add_argument("--weeks", type=int, default=8)
    p.add_argument("--skip-weeks", type=int, default=4, help="the newest weeks, left to evaluate's report")
    p.set_defaults(run=sources)
    p = verbs.add_parser("complete")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "hm_sample"))
    p.add_argument("--artifacts", help="a build of the data: its look-alikes let new articles borrow co-purchases")
    p.add_argument("--weeks", type=int, default=4)
    p.set_defaults(run=complete)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
