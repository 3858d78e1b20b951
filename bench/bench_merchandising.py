"""What merchandising costs a query: hybrid search and recommend p50, without and with 100 rules and an
availability file listing every article, side by side in one run.

    python bench/bench_merchandising.py --data ../shared/hm_sample --artifacts A [--queries 300]

The rules: 40 boosts and 40 buries by index group / type / colour, 10 exclusions by price or ids and 10
pins for other queries, in force today. The availability file marks one article in 20 out of stock.
Target (issue 25): each p50 within +2 ms of without.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recommender.availability import Availability  # noqa: E402
from recommender.config import Settings  # noqa: E402
from recommender.pipeline import open_engine  # noqa: E402
from recommender.rules import Rules  # noqa: E402

QUERIES = ["black dress", "wide leg trousers", "striped top", "denim jacket", "red skirt", "white sneakers",
           "knitted sweater", "summer dress", "hoodie", "swimsuit"]  # fmt: skip


def rules_text(articles) -> str:
    rng = np.random.default_rng(0)
    pick = lambda column: str(rng.choice(articles[column].unique()))
    out = []
    for i in range(100):
        if i < 40:
            out.append(f'[[rule]]\nname = "boost {i}"\naction = "boost"\nfactor = 1.5\n[rule.when]\n'
                       f'product_type_name = "{pick("product_type_name")}"\n')
        elif i < 80:
            out.append(f'[[rule]]\nname = "bury {i}"\naction = "bury"\nfactor = 0.5\n[rule.when]\n'
                       f'colour_group_name = "{pick("colour_group_name")}"\n')
        elif i < 90:
            ids = ", ".join(f'"{a}"' for a in rng.choice(articles["article_id"], 5, replace=False))
            out.append(f'[[rule]]\nname = "exclude {i}"\naction = "exclude"\n[rule.when]\narticle_ids = [{ids}]\n')
        else:
            out.append(f'[[rule]]\nname = "pin {i}"\naction = "pin"\nquery = "campaign {i}"\n'
                       f'articles = ["{rng.choice(articles["article_id"])}"]\n')
    return "\n".join(out)


def p50_ms(call, n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "hm_sample"))
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    engine = open_engine(Settings(data_dir=args.data, artifacts_dir=args.artifacts)).warm()
    search, collab, catalog = engine.search, engine.collab, engine.catalog
    customers = collab.example_customers(50)
    search_call = lambda i: search.search(text=QUERIES[i % len(QUERIES)], k=12)
    recommend_call = lambda i: collab.recommend(customers[i % len(customers)], k=12)
    for call in (search_call, recommend_call):  # warm caches
        p50_ms(call, 20)
    plain = (p50_ms(search_call, args.queries), p50_ms(recommend_call, args.queries))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "rules.toml").write_text(rules_text(catalog.articles))
        ids = catalog.articles["article_id"].to_numpy()
        (folder / "availability.csv").write_text(
            "article_id,in_stock\n" + "".join(f"{a},{0 if i % 20 == 0 else 1}\n" for i, a in enumerate(ids)))
        availability, rules = Availability(folder, catalog), Rules(folder / "rules.toml", catalog)
        started = time.perf_counter()
        availability.unavailable(), rules.current()
        loaded = time.perf_counter() - started
        search.availability = collab.availability = availability
        search.rules = collab.rules = rules
        assert len(rules.current()) == 100 and availability.unavailable().sum() == (len(ids) + 19) // 20
        for call in (search_call, recommend_call):
            p50_ms(call, 20)
        ruled = (p50_ms(search_call, args.queries), p50_ms(recommend_call, args.queries))
    print(f"{len(catalog.articles):,} articles; 100 rules and availability for every article read in {loaded:.2f} s")
    print("| measure | without | with 100 rules + availability | difference |")
    print("|---|---|---|---|")
    for name, a, b in (("hybrid search p50", plain[0], ruled[0]), ("recommend p50", plain[1], ruled[1])):
        print(f"| {name} | {a:.2f} ms | {b:.2f} ms | {b - a:+.2f} ms |")


if __name__ == "__main__":
    main()
