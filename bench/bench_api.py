"""HTTP API latency and throughput against a real uvicorn server (`python -m recommender serve`).

    python bench/bench_api.py demo  [--data DIR --artifacts DIR] [--seconds 10]
        A built dataset (default: the demo of `make run` / `python -m recommender build`), served by
        `python -m recommender serve` on a loopback port.
    python bench/bench_api.py scale [--customers 137198 --transactions 3178000] [--seconds 10]
        H&M-size catalogue: 105,542 articles (demo generator, transactions-only), ViT-B-16 with random
        weights in the query precision chosen at load, 105,542 x 512 clustered vectors in the size-chosen
        FAISS index (as bench_content.py), the BM25 index over the articles' texts (hybrid text search),
        ALS + HNSW fitted on the given customers / transactions; served by uvicorn in a child process.

Per call kind (text search, recommendations for a known customer, photo search): p50 / p95 over
sequential requests from 1 client, then throughput and p50 / p95 with 8 concurrent clients for
--seconds. Targets (issue 12), 2 cores: text p50 <= 40 ms, recommendations p50 <= 40 ms, photo p50 <= 200 ms.
The clients (Python threads) share the machine's cores with the server, so the 8-client figures are
a lower bound of what the server alone would sustain; the load average is printed.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

TEXTS = ["red dress", "black skinny jeans", "white cotton t-shirt", "striped sweater", "denim jacket",
         "floral summer dress", "blue swimsuit", "grey hoodie", "leather boots", "silk blouse"]  # fmt: skip
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], env: dict[str, str], url: str, timeout_s: float = 900) -> subprocess.Popen:
    log = open(Path(tempfile.gettempdir()) / f"bench_api_server_{os.getpid()}.log", "w")
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **THREAD_ENV, **env}, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    process.kill()
    sys.exit(f"server did not become ready; log: {log.name}")


def call_kinds(http_photos: list[bytes], customers: list[str]):
    return {
        "text search": lambda http, i: http.get("/v1/search", params={"q": TEXTS[i % len(TEXTS)], "k": 12}),
        "recommendations": lambda http, i: http.get(f"/v1/customers/{customers[i % len(customers)]}/recommendations"),
        "photo search": lambda http, i: http.post(
            "/v1/search", files=[("photos", ("q.jpg", http_photos[i % len(http_photos)], "image/jpeg"))]),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, server_pid: int, kinds: dict, repeats: dict[str, int], seconds: float) -> None:
    """Latency from 1 client (with the server's CPU time per call: what an idle core would take, a
    figure other jobs on the machine hardly change), then throughput and latency from 8 clients."""
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with httpx.Client(base_url=url, timeout=60) as http:
        for name, call in kinds.items():
            for i in range(3):  # warm-up
                call(http, i).raise_for_status()
            times, cpu = [], cpu_seconds(server_pid)
            for i in range(repeats[name]):
                start_t = time.perf_counter()
                call(http, i).raise_for_status()
                times.append(time.perf_counter() - start_t)
            cpu_ms = (cpu_seconds(server_pid) - cpu) / len(times) * 1000
            print(f"1 client  {name:16s} p50 {ms(times, 50):7.1f} ms  p95 {ms(times, 95):7.1f} ms  "
                  f"server CPU {cpu_ms:6.1f} ms/call  ({len(times)} calls)")
    for name, call in kinds.items():
        times, errors = [], []
        stop = time.monotonic() + seconds

        def client(number: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                i = number
                while time.monotonic() < stop:
                    start_t = time.perf_counter()
                    response = call(http, i)
                    (times if response.status_code == 200 else errors).append(time.perf_counter() - start_t)
                    i += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        begun = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - begun
        print(f"8 clients {name:16s} {len(times) / wall:6.1f} req/s  p50 {ms(times, 50):7.1f} ms  "
              f"p95 {ms(times, 95):7.1f} ms  errors {len(errors)}  (load average {os.getloadavg()[0]:.2f})")


def ms(times: list[float], q: int) -> float:
    return float(np.percentile(np.array(times) * 1000, q)) if times else float("nan")


def demo(args) -> None:
    from recommender.config import Settings
    from recommender.pipeline import open_engine

    settings = Settings().with_(data_dir=args.data, artifacts_dir=args.artifacts)
    engine = open_engine(settings)  # here only to pick inputs: customers with purchases, photos
    articles = engine.catalog.articles
    photos = [engine.catalog.image_path(a).read_bytes() for a in articles.loc[articles["has_image"], "article_id"][:20]]
    customers = engine.collab.example_customers(20)
    del engine
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"LOOKBOOK_DATA": str(settings.data_dir), "LOOKBOOK_ARTIFACTS": str(settings.artifacts_dir)}
    server = start([sys.executable, "-m", "recommender", "serve", "--port", str(port)], env, url)
    try:
        print(f"\n== demo: {len(articles):,} articles, python -m recommender serve ==")
        measure(url, server.pid, call_kinds(photos, customers), {"text search": 100, "recommendations": 100, "photo search": 50},
                args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)


def scale(args) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print(f"\n== scale: 105,542 articles, {args.customers:,} customers, {args.transactions:,} transactions ==")
    started = time.perf_counter()
    server = start([sys.executable, __file__, "scale-server", "--port", str(port), "--customers", str(args.customers),
                    "--transactions", str(args.transactions)], {}, url, timeout_s=3600)
    print(f"engine built and served in {time.perf_counter() - started:.0f} s")
    try:
        from bench_content import query_images

        with httpx.Client(base_url=url, timeout=60) as http:
            status = http.get("/v1/status").json()  # the server is the one just started
            assert status["articles"] == 105_542, status
        customers = (Path(tempfile.gettempdir()) / "lookbook_api_bench" / "customers.txt").read_text().split()
        measure(url, server.pid, call_kinds(query_images(20), customers),
                {"text search": 100, "recommendations": 100, "photo search": 40}, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)


def scale_server(args) -> None:
    """Child process: the H&M-size engine, served by uvicorn (the app of `serve`, over this engine)."""
    import uvicorn

    from bench_content import N_ARTICLES, mixture, random_vit
    from recommender.api import create_app
    from recommender.api.server import configure_threads
    from recommender.catalog import load_catalog
    from recommender.collab import CollabModel
    from recommender.config import Settings
    from recommender.content import ContentSearch
    from recommender.content_index import ContentIndex
    from recommender.demo import generate_transactions_only
    from recommender.lexical import LexicalIndex
    from recommender.pipeline import Engine
    from recommender.precision import choose_query_precision

    configure_threads()
    folder = Path(tempfile.gettempdir()) / "lookbook_api_bench"
    data = folder / f"data_{args.customers}_{args.transactions}"
    if not (data / "articles.csv").is_file():
        generate_transactions_only(data, n_articles=N_ARTICLES, n_customers=args.customers,
                                   n_transactions=args.transactions)
    catalog = load_catalog(data, cache_dir=folder / "cache")
    step = time.perf_counter()
    collab = CollabModel.fit(catalog)
    print(f"ALS + HNSW fitted in {time.perf_counter() - step:.0f} s", flush=True)
    (folder / "customers.txt").write_text("\n".join(collab.example_customers(200)))
    index = ContentIndex.build(mixture(N_ARTICLES, seed=1), catalog.articles["article_id"].to_numpy(), exact_threshold=0)
    print(f"content index: {index.params}", flush=True)
    embedder = random_vit()
    lexical = LexicalIndex.build(catalog.articles)
    precision = choose_query_precision(embedder, folder / "query_precision.cache")  # as ContentSearch.load
    print(f"query precision: text {precision['text']['choice']}, image {precision['image']['choice']} "
          f"(ms per query: text {precision['text']['timings_ms']}, image {precision['image']['timings_ms']})", flush=True)
    engine = Engine.from_parts(Settings(data_dir=data, artifacts_dir=folder / "artifacts"), catalog, embedder=embedder,
                               search=ContentSearch(catalog, embedder, index, lexical), collab=collab)
    uvicorn.run(create_app(engine=engine), host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("demo")
    p.add_argument("--data")
    p.add_argument("--artifacts")
    p.add_argument("--seconds", type=float, default=10)
    p.set_defaults(run=demo)
    for name, run in (("scale", scale), ("scale-server", scale_server)):
        p = verbs.add_parser(name)
        p.add_argument("--customers", type=int, default=137_198)
        p.add_argument("--transactions", type=int, default=3_178_000)
        p.add_argument("--seconds", type=float, default=10)
        p.add_argument("--port", type=int)
        p.set_defaults(run=run)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
