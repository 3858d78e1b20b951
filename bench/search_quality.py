"""Relevance of text search on real products: hybrid vs visual vs lexical, per query category.

The queries (bench/search_queries.json) are written the way shoppers type; each carries an explicit
rule over the article metadata that says which articles are relevant (see the file's "about"). For
every mode the top 10 of each query are judged by its rule:
  P@10    = relevant hits / min(10, number of relevant articles)
  nDCG@10 = binary gains, ideal = min(10, relevant) hits first.
Also reported: the share of the top 10 taken by articles without a photo, against their share of the
catalogue (they must not crowd out the rest).

Needs a built engine on the data (its visual leg is the model the build trained or loaded):

    python -m recommender build --data ../shared/hm_sample --artifacts /tmp/hm_artifacts
    python bench/search_quality.py --data ../shared/hm_sample --artifacts /tmp/hm_artifacts
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recommender.config import Settings  # noqa: E402
from recommender.pipeline import open_engine  # noqa: E402

K = 10
MODES = ("hybrid", "visual", "lexical")
QUERIES = Path(__file__).with_name("search_queries.json")


def relevant_mask(articles: pd.DataFrame, rule: dict, lowered: dict | None = None) -> np.ndarray:
    """Articles for which every condition of the rule holds (see search_queries.json "about")."""
    lowered = {} if lowered is None else lowered  # column -> lower-case texts, made once
    mask = np.ones(len(articles), dtype=bool)
    for key, values in rule.items():
        if key.endswith("~"):
            column = key[:-1]
            if column not in lowered:
                columns = ["prod_name", "detail_desc"] if column == "text" else [column]
                lowered[column] = [" ".join(map(str, parts)).lower().replace("-", " ")
                                   for parts in zip(*(articles[c].fillna("").tolist() for c in columns))]
            texts, wanted = lowered[column], [v.lower().replace("-", " ") for v in values]  # "high-waisted" has "high waist"
            mask &= np.array([any(v in text for v in wanted) for text in texts])
        else:
            mask &= articles[key].astype(str).isin(values).to_numpy()
    return mask


def judge(found_rows: np.ndarray, relevant: np.ndarray) -> tuple[float, float]:
    hits = relevant[found_rows[:K]].astype(float)
    ideal = min(K, int(relevant.sum()))
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    precision = hits.sum() / ideal
    ndcg = float((hits * discounts[: len(hits)]).sum() / discounts[:ideal].sum())
    return float(precision), ndcg


def share_interval(table: pd.DataFrame, mode: str, resamples: int = 2000) -> str:
    """95% bootstrap interval of a mode's mean no-photo share, resampling queries (seeded)."""
    shares = table.loc[table["mode"] == mode, "no_photo_share"].to_numpy()
    picks = np.random.default_rng(0).integers(0, len(shares), (resamples, len(shares)))
    low, high = np.percentile(shares[picks].mean(axis=1), [2.5, 97.5])
    return f"[{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "hm_sample"))
    parser.add_argument("--artifacts", default="/tmp/hm_artifacts")
    parser.add_argument("--queries", default=str(QUERIES))
    parser.add_argument("--model", help="as given to build (default: the build's default)")
    parser.add_argument("--pretrained", help="as given to build")
    parser.add_argument("--show", type=int, default=0, help="print the top N of each query (hybrid)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    settings = Settings().with_(data_dir=args.data, artifacts_dir=args.artifacts, model=args.model, pretrained=args.pretrained)
    engine = open_engine(settings)
    catalog, search = engine.catalog, engine.search
    articles = catalog.articles
    row_of = pd.Series(np.arange(len(articles)), index=articles["article_id"].to_numpy())
    no_photo = ~articles["has_image"].to_numpy()
    queries = json.loads(Path(args.queries).read_text())["queries"]

    records, lowered = [], {}
    started = time.perf_counter()
    for query in queries:
        relevant = relevant_mask(articles, query["rule"], lowered)
        if not relevant.any():
            print(f"warning: no article is relevant to {query['query']!r}; left out", file=sys.stderr)
            continue
        for mode in MODES:
            results = search.search(text=query["query"], k=K, mode=mode, group="article")  # rules judge articles
            rows = row_of[results["article_id"]].to_numpy()
            precision, ndcg = judge(rows, relevant)
            records.append({"category": query["category"], "query": query["query"], "mode": mode,
                            "p@10": precision, "ndcg@10": ndcg, "relevant": int(relevant.sum()),
                            "no_photo_share": float(no_photo[rows].mean())})  # fmt: skip
            if args.show and mode == "hybrid":
                print(f"\n{query['query']!r} (relevant {int(relevant.sum())}):")
                print(results.head(args.show)[["prod_name", "product_type_name", "colour_group_name", "has_image", "matched"]].to_string(index=False))
    elapsed = time.perf_counter() - started
    table = pd.DataFrame(records)

    pd.set_option("display.width", 160)
    print(f"\n{table['query'].nunique()} queries, {len(MODES)} modes, k={K} on {catalog.root.name} "
          f"({len(articles):,} articles, model {engine.embedder.model_name}); {elapsed:.0f} s")
    for metric in ("p@10", "ndcg@10"):
        by_category = table.pivot_table(index="category", columns="mode", values=metric, aggfunc="mean")[list(MODES)]
        by_category.loc["OVERALL (mean over queries)"] = table.groupby("mode")[metric].mean()[list(MODES)]
        by_category["hybrid - visual"] = by_category["hybrid"] - by_category["visual"]
        by_category["hybrid - best leg"] = by_category["hybrid"] - by_category[["visual", "lexical"]].max(axis=1)
        print(f"\n{metric}\n{by_category.round(3).to_string()}")
    shares = table.groupby("mode")["no_photo_share"].mean()[list(MODES)]
    print(f"\narticles without a photo: {no_photo.mean():.3f} of the catalogue; share of the top {K} "
          f"[95% bootstrap interval over queries]: "
          + ", ".join(f"{mode} {share:.3f} {share_interval(table, mode)}" for mode, share in shares.items()))
    print("\ncommand: python " + " ".join(shlex.quote(a) for a in sys.argv))


if __name__ == "__main__":
    main()
