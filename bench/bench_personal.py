"""Personalised search, measured on purchases: does a shopper's search rank what they went on to buy higher?

    python bench/bench_personal.py --data ../shared/hm_sample --artifacts A [--weeks 4] [--customers 50]

The newest `weeks` are held out: tastes come from a model trained before them (ALS, the ranker, purchases;
the content vectors and the search index are the build's). For each (customer, article) bought in those weeks by a
customer with earlier purchases, two queries: the article's product type name, and colour + type. The
article's rank in the 48 results (one per article), generic and personalised: MRR (1/rank, 0 beyond 48),
hit@12 and hit@48, with 95% intervals resampling customers. Relevance: bench/search_queries.json's P@10,
generic and personalised for `customers` random customers with purchases. Targets (issue 24): MRR ≥ 1.5×
generic; P@10 within 0.02 of generic; personalised p50 ≤ 25 ms.

    python bench/bench_personal.py --data D --artifacts A --speed-only [--customers 50]
        only the time of generic and personalised text search on any build (e.g. H&M size).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from search_quality import QUERIES, judge, relevant_mask  # noqa: E402

from recommender import content  # noqa: E402
from recommender.collab import CollabModel, CollabParams, CollabState  # noqa: E402
from recommender.collab import taste as taste_module  # noqa: E402
from recommender.collab.ranker import train_ranker  # noqa: E402
from recommender.collab.stats import robust_end  # noqa: E402
from recommender.config import Settings  # noqa: E402
from recommender.lookalikes import load_looks  # noqa: E402
from recommender.pipeline import open_engine  # noqa: E402

K = 48


def interval(values: np.ndarray, groups: np.ndarray, resamples: int = 2000) -> tuple[float, float]:
    """95% interval of the mean, resampling whole customers (seeded)."""
    ids, inverse = np.unique(groups, return_inverse=True)
    sums, counts = np.bincount(inverse, weights=values), np.bincount(inverse)
    picks = np.random.default_rng(0).integers(0, len(ids), (resamples, len(ids)))
    means = sums[picks].sum(1) / counts[picks].sum(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def speed(engine, customers: int) -> None:
    """p50 of text search, generic and personalised, for the build's example customers (any data size)."""
    queries = [query["query"] for query in json.loads(QUERIES.read_text())["queries"]][:20]
    times = {"generic": [], "personalised": []}
    for customer in engine.collab.example_customers(customers):
        taste = engine.collab.taste(customer)
        for query in queries:
            for name, shopper in (("generic", None), ("personalised", taste)):
                started = time.perf_counter()
                engine.search.search(text=query, k=12, facets=True, taste=shopper)
                times[name].append(time.perf_counter() - started)
    print(f"{engine.catalog.name}: {len(engine.catalog.articles):,} articles, {len(engine.catalog.customer_ids):,} customers; "
          + ", ".join(f"{name} p50 {1000 * np.median(t):.1f} ms" for name, t in times.items())
          + f" over {len(times['generic'])} queries each (one per product, facets on)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "hm_sample"))
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--skip-weeks", type=int, default=0,
                        help="hold out the weeks before the newest N instead (to choose settings on)")
    parser.add_argument("--depth", type=int, help="try another PERSONAL_DEPTH (choosing settings)")
    parser.add_argument("--weight", type=float, help="try another PERSONAL_WEIGHT (choosing settings)")
    parser.add_argument("--ranker-share", type=float, help="try another taste.RANKER_SHARE (choosing settings)")
    parser.add_argument("--speed-only", action="store_true",
                        help="only time generic and personalised search (one per product, facets on) on the build's model")
    args = parser.parse_args()
    if args.speed_only:
        return speed(open_engine(Settings(data_dir=args.data, artifacts_dir=args.artifacts)), args.customers)
    content.PERSONAL_DEPTH = args.depth or content.PERSONAL_DEPTH
    content.PERSONAL_WEIGHT = args.weight if args.weight is not None else content.PERSONAL_WEIGHT
    taste_module.RANKER_SHARE = args.ranker_share if args.ranker_share is not None else taste_module.RANKER_SHARE
    print(f"re-ranking the first {content.PERSONAL_DEPTH} results, affinity weight {content.PERSONAL_WEIGHT}, "
          f"ranker share {taste_module.RANKER_SHARE:.2f}")
    engine = open_engine(Settings(data_dir=args.data, artifacts_dir=args.artifacts))
    catalog, search = engine.catalog, engine.search
    tx, articles = catalog.transactions, catalog.articles
    end = robust_end(tx["t_dat"].to_numpy()) - np.timedelta64(7 * args.skip_weeks, "D")
    cut = end - np.timedelta64(7 * args.weeks, "D")
    state = CollabState.fit(catalog, CollabParams(), until=cut, looks=load_looks(engine.store, catalog))
    ranker, message = train_ranker(catalog, state.params, state.interactions.now,
                                   lambda before: CollabState.fit(catalog, state.params, until=before, looks=state.looks))
    print(message)
    model = CollabModel(state, ranker)
    held = tx[(tx["t_dat"] >= cut) & (tx["t_dat"] < end)].drop_duplicates(["customer", "article"])
    held = held[model.state.has_history[held["customer"].to_numpy()]]
    ids = catalog.customer_ids
    rows, times = [], []
    for customer, article in zip(held["customer"].to_numpy(), held["article"].to_numpy()):
        taste = model.taste(str(ids[customer]))
        item = articles.iloc[article]
        for kind, text in (("type", item["product_type_name"]), ("colour + type", f"{item['colour_group_name']} {item['product_type_name']}")):
            found = {}
            for name, shopper in (("generic", None), ("personalised", taste)):
                started = time.perf_counter()
                ranked = search.search(text=text, k=K, group="article", taste=shopper)["article_id"].tolist()
                if shopper is not None:
                    times.append(time.perf_counter() - started)
                aid = item["article_id"]
                found[name] = ranked.index(aid) + 1 if aid in ranked else 0
            rows.append({"customer": customer, "query": kind, **{f"rank {n}": r for n, r in found.items()}})
    frame = pd.DataFrame(rows)
    print(f"held out {args.weeks} weeks from {str(cut)[:10]}: {len(held)} (customer, article) pairs of "
          f"{held['customer'].nunique()} customers with earlier purchases")
    print("| query | measure | generic | personalised | ratio |")
    print("|---|---|---|---|---|")
    for kind, part in frame.groupby("query", sort=False):
        groups = part["customer"].to_numpy()
        for measure, of in (("MRR", lambda r: np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0)),
                            ("hit@12", lambda r: ((r > 0) & (r <= 12)).astype(float)),
                            ("hit@48", lambda r: (r > 0).astype(float))):
            g, p = of(part["rank generic"].to_numpy()), of(part["rank personalised"].to_numpy())
            (gl, gh), (pl, ph) = interval(g, groups), interval(p, groups)
            print(f"| {kind} | {measure} | {g.mean():.4f} [{gl:.4f}, {gh:.4f}] | {p.mean():.4f} [{pl:.4f}, {ph:.4f}] | "
                  f"{p.mean() / max(g.mean(), 1e-12):.2f} |")
    print(f"personalised search p50 {1000 * np.median(times):.1f} ms over {len(times)} queries")

    # Relevance must hold: the rule-judged P@10 of the shopper-style queries, for random shoppers.
    queries = json.loads(QUERIES.read_text())["queries"]
    row_of = pd.Series(np.arange(len(articles)), index=articles["article_id"].to_numpy())
    shoppers = np.random.default_rng(0).choice(np.flatnonzero(model.state.has_history), args.customers, replace=False)
    generic, personal = [], []
    for query in queries:
        relevant = relevant_mask(articles, query["rule"])
        if not relevant.any():
            continue
        generic.append(judge(row_of[search.search(text=query["query"], k=10, group="article")["article_id"]].to_numpy(), relevant)[0])
        personal.append(np.mean([judge(row_of[search.search(text=query["query"], k=10, group="article",
                                                              taste=model.taste(str(ids[c])))["article_id"]].to_numpy(), relevant)[0]
                                 for c in shoppers]))
    print(f"P@10 over {len(generic)} queries: generic {np.mean(generic):.3f}, personalised for {args.customers} random "
          f"customers {np.mean(personal):.3f} (difference {np.mean(personal) - np.mean(generic):+.3f})")


if __name__ == "__main__":
    main()
