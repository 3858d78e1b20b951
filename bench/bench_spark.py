"""ALS at H&M scale: Spark local[N] (recommender/spark/als.py) against implicit (the local build), side by side.

    python bench/bench_spark.py [--data /tmp/hm_scale] [--fraction 0.1 …] [--master local[2]] [--driver-memory 8g]

The data is the demo generator's H&M-size transactions (1,371,980 customers, 105,542 articles, 31.8M rows;
generated into --data when missing, ~1.5 min, 3 GB). `--fraction f` keeps the purchases of every customer
whose code ≡ 0 mod round(1/f), so a fraction is a smaller shop with the same per-customer behaviour. Each
engine runs in its own process; its peak memory is the summed RSS of that process and its children (the JVM
for Spark), sampled every 0.2 s. Both train the same weighted matrix: 64 factors, 15 iterations.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def tree_usage(pid: int) -> dict[int, tuple[int, float]]:
    """{pid: (RSS bytes, CPU seconds)} for ``pid`` and all its descendants, from /proc (no psutil needed)."""
    children: dict[int, list[int]] = {}
    usage: dict[int, tuple[int, float]] = {}
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            usage[int(entry.name)] = (int(fields[21]) * page, (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, ValueError, IndexError):
            continue
    tree, stack = {}, [pid]
    while stack:
        p = stack.pop()
        if p in usage:
            tree[p] = usage[p]
        stack.extend(children.get(p, []))
    return tree


def measured(command: list[str], env: dict) -> tuple[dict, float, float]:
    """Run a child that prints one JSON line; return it, the peak summed RSS (GB) of its process tree and
    the CPU seconds of that tree (each process's last sample: on a shared machine, CPU seconds / cores is
    the wall time it would take alone)."""
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    peak, cpu = [0], {}

    def sample() -> None:
        while child.poll() is None:
            tree = tree_usage(child.pid)
            peak[0] = max(peak[0], sum(rss for rss, _ in tree.values()))
            cpu.update({p: seconds for p, (_, seconds) in tree.items()})
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    sampler.join()
    if child.returncode:
        raise SystemExit(f"{command[-6:]} failed with status {child.returncode}")
    return json.loads(out.strip().splitlines()[-1]), peak[0] / 1e9, sum(cpu.values())


# --- the two engines (each in its own process) ---------------------------------------------------------


def run_implicit(parquet: Path, n_customers: int, n_articles: int) -> dict:
    import implicit.gpu
    import pandas as pd
    from implicit.als import AlternatingLeastSquares

    from recommender.collab import CollabParams, single_threaded_blas
    from recommender.interactions import Confidence, build_interactions

    params = CollabParams()
    start = time.perf_counter()
    tx = pd.read_parquet(parquet, columns=["t_dat", "customer", "article"])
    inter = build_interactions(tx, n_customers, n_articles, half_life_days=params.recency_half_life_days)
    _, user_items = Confidence.fit(inter.recency, params.weighting)
    weighted = time.perf_counter()
    with single_threaded_blas():
        als = AlternatingLeastSquares(factors=params.factors, regularization=params.regularization, alpha=params.alpha,
                                      iterations=params.iterations, random_state=params.random_state,
                                      use_gpu=implicit.gpu.HAS_CUDA)
        als.fit(user_items, show_progress=False)
    done = time.perf_counter()
    return {"rows": len(tx), "weighting_s": weighted - start, "als_s": done - weighted, "total_s": done - start}


def run_spark(parquet: Path, n_customers: int, n_articles: int, master: str, work: Path) -> dict:
    from recommender.collab import CollabParams
    from recommender.spark.als import fit_factors
    from recommender.spark.session import spark_session

    start = time.perf_counter()
    with spark_session(master, work) as spark:
        started = time.perf_counter()
        phases: dict[str, float] = {}
        last = [started]

        def progress(fraction: float, message: str) -> None:
            phases[message.split(":")[0]] = time.perf_counter() - last[0]
            last[0] = time.perf_counter()

        fit_factors(spark, parquet, n_customers, n_articles, work, CollabParams(), progress=progress)
        done = time.perf_counter()
    return {"jvm_start_s": started - start, "als_s": done - started, "total_s": time.perf_counter() - start,
            "cores": spark_cores(master)}


def spark_cores(master: str) -> str:
    return master[len("local[") : -1] if master.startswith("local[") else master


# --- driver ------------------------------------------------------------------------------------------


def prepare(data: Path, fraction: float) -> tuple[Path, int, int]:
    """The transactions parquet of ``fraction`` of the customers (the whole cache for 1.0)."""
    import pyarrow.parquet as pq

    from recommender.catalog import load_catalog
    from recommender.store import ArtifactStore

    cache = data.parent / f"{data.name}_artifacts"
    if not (data / "transactions_train.csv").is_file():
        print(f"generating H&M-size transactions into {data} …", flush=True)
        subprocess.run([sys.executable, "-m", "recommender", "demo", "--transactions-only", "--out", str(data)],
                       cwd=REPO, check=True)
    catalog = load_catalog(data, cache_dir=cache)
    n_customers, n_articles = len(catalog.customer_ids), len(catalog.articles)
    full = ArtifactStore(cache).load("catalog").path / "transactions.parquet"
    del catalog
    if fraction >= 1.0:
        return full, n_customers, n_articles
    step = round(1 / fraction)
    out = cache.parent / f"{data.name}_fraction_{step}" / "transactions.parquet"
    if not out.is_file():
        table = pq.read_table(full, columns=["t_dat", "customer", "article"])
        keep = table["customer"].to_numpy() % step == 0
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(keep), out)
    return out, n_customers, n_articles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/hm_scale")
    parser.add_argument("--fraction", type=float, nargs="+", default=[0.1])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="8g", help="Spark local mode: the one JVM's heap")
    parser.add_argument("--engines", default="implicit,spark")
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "PARQUET", "CUSTOMERS", "ARTICLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, parquet, customers, articles = args.child
        if engine == "implicit":
            result = run_implicit(Path(parquet), int(customers), int(articles))
        else:
            result = run_spark(Path(parquet), int(customers), int(articles), args.master, Path(parquet).parent / "spark-work")
        print(json.dumps(result), flush=True)
        return

    threads = spark_cores(args.master) if args.master.startswith("local[") and args.master != "local[*]" else str(os.cpu_count())
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "LOOKBOOK_SPARK_CONF": f"spark.driver.memory={args.driver_memory}"}
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; both engines on {threads} threads", flush=True)
    for fraction in args.fraction:
        parquet, customers, articles = prepare(Path(args.data), fraction)
        for engine in args.engines.split(","):
            command = [sys.executable, __file__, "--master", args.master, "--child", engine, str(parquet),
                       str(customers), str(articles)]
            result, peak, cpu = measured(command, env)
            figures = {k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}
            print(f"fraction {fraction:g} {engine:8s}: {json.dumps(figures)}, process tree: peak RSS {peak:.2f} GB, "
                  f"{cpu:.0f} CPU s; load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
