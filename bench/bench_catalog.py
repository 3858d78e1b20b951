"""Catalogue loading at H&M scale: CSV → compact columnar copy, then reload of the parquet cache.

    python bench/bench_catalog.py [--data /tmp/lookbook_hm_scale] [--transactions 31788324]

Generates the transactions-only dataset with the demo generator if the folder is missing (reused by
bench/bench_collab.py), then times each phase in a fresh subprocess so its peak RSS is its own.
Targets (issue 2): CSV → compact ≤ 2 min and ≤ 6 GB; reload ≤ 15 s.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASE = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from recommender.catalog import load_catalog
start = time.perf_counter()
cat = load_catalog({data!r}, cache_dir={cache!r})
print(json.dumps({{"seconds": time.perf_counter() - start, "rows": len(cat.transactions),
                  "customers": len(cat.customer_ids), "articles": len(cat.articles),
                  "frame_mb": cat.transactions.memory_usage(deep=True).sum() / 2**20,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def run_phase(data: Path, cache: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PHASE.format(repo=str(REPO), data=str(data), cache=str(cache))],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/tmp/lookbook_hm_scale")
    parser.add_argument("--transactions", type=int, default=31_788_324)
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "transactions_train.csv").is_file():
        sys.path.insert(0, str(REPO))
        from recommender.demo import generate_transactions_only

        print(f"generating {args.transactions:,} transactions into {data} …", flush=True)
        start = time.perf_counter()
        generate_transactions_only(data, n_transactions=args.transactions)
        print(f"  generated in {time.perf_counter() - start:.0f} s")
    size_gb = (data / "transactions_train.csv").stat().st_size / 2**30
    cache = Path(tempfile.mkdtemp(prefix="lookbook_bench_cache_"))
    try:
        first = run_phase(data, cache)
        second = run_phase(data, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"transactions_train.csv: {size_gb:.2f} GB, {first['rows']:,} rows, "
          f"{first['customers']:,} customers, {first['articles']:,} articles")
    print(f"{'phase':<28}{'seconds':>10}{'peak RSS GB':>14}")
    print(f"{'CSV -> compact + parquet':<28}{first['seconds']:>10.1f}{first['peak_rss_gb']:>14.2f}")
    print(f"{'reload parquet cache':<28}{second['seconds']:>10.1f}{second['peak_rss_gb']:>14.2f}")
    print(f"compact transactions frame in memory: {first['frame_mb']:.0f} MB")


if __name__ == "__main__":
    main()
