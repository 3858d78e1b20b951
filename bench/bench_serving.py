"""A server left running while a build lands: /health during a cold start, and a rebuild under traffic.

    python bench/bench_serving.py [--data DIR --artifacts DIR] [--clients 8] [--pause 0]

Copies the built dataset (default: the demo of `make run`) and its artifacts to a temporary folder, starts
`python -m recommender serve` on it and prints:
- cold start: /health latency p50 / p99 / max while the engine loads in a worker thread, and the time
  until /ready is 200 (every part loaded and warm);
- rebuild under traffic: with --clients threads querying search and recommendations, one article renamed
  and purchases added, then `python -m recommender build`: requests served (latency p50 / p99), failed
  requests (must be 0), build time, time from the end of the build to the switch, and the server's peak
  RSS (VmHWM).
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ready(http: httpx.Client) -> dict | None:
    try:
        response = http.get("/ready")
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


def change_the_data(data: Path) -> str:
    """One article renamed and three purchases of it appended (as lines: the file may be gigabytes); returns
    the buyer, the customer of the file's last purchase."""
    articles = pd.read_csv(data / "articles.csv", dtype=str, keep_default_na=False)
    articles.loc[3, "prod_name"] = "Quokka Zebraprint Tee"
    articles.to_csv(data / "articles.csv", index=False)
    path = data / "transactions_train.csv"
    with open(path, "rb") as file:
        file.seek(max(0, path.stat().st_size - 4096))
        last = file.read().decode().rstrip("\n").splitlines()[-1].split(",")
    header = path.open().readline().strip().split(",")
    last[header.index("article_id")] = articles["article_id"].iat[3]
    with open(path, "a") as file:
        file.write((",".join(last) + "\n") * 3)
    return last[header.index("customer_id")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO / "data" / "demo"))
    parser.add_argument("--artifacts")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds each client waits between requests")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lookbook_bench_serving_"))
    data, artifacts = work / "shop", work / "artifacts"
    source_artifacts = Path(args.artifacts) if args.artifacts else None
    if source_artifacts is None:
        from recommender.config import default_artifacts_dir

        source_artifacts = default_artifacts_dir(Path(args.data))
    shutil.copytree(args.data, data, symlinks=True)
    shutil.copytree(source_artifacts, artifacts)
    env = {**os.environ, "LOOKBOOK_DATA": str(data), "LOOKBOOK_ARTIFACTS": str(artifacts)}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "recommender", "serve", "--port", str(port)], cwd=REPO, env=env,
                              stdout=open(work / "serve.log", "w"), stderr=subprocess.STDOUT)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        health, started = [], time.perf_counter()
        while True:
            try:
                begin = time.perf_counter()
                http.get("/health")
                health.append(time.perf_counter() - begin)
            except httpx.TransportError:
                time.sleep(0.02)
                continue
            if ready(http):
                break
            time.sleep(0.02)
        to_ready = time.perf_counter() - started
        ms = np.array(health) * 1000
        print(f"cold start: /ready after {to_ready:.1f} s; /health over {len(ms)} calls meanwhile: "
              f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms", flush=True)

        first = ready(http)
        buyer = change_the_data(data)
        served, failed, stop = [], [], threading.Event()

        def client(i: int) -> None:
            paths = ["/v1/search?q=dress&k=12", f"/v1/customers/{buyer}/recommendations?k=12",
                     "/v1/search?q=black+top&k=5&mode=lexical"]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as own:
                n = i
                while not stop.is_set():
                    begin = time.perf_counter()
                    response = own.get(paths[n % len(paths)])
                    n += 1
                    if response.status_code == 200:
                        served.append(time.perf_counter() - begin)
                    else:
                        failed.append(response.status_code)
                    time.sleep(args.pause)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-m", "recommender", "build"], cwd=REPO, env=env, check=True,
                       capture_output=True)
        built = time.perf_counter()
        while (ready(http) or first)["build_id"] == first["build_id"]:
            time.sleep(0.1)
        switched = time.perf_counter()
        time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join()
        ms = np.array(served) * 1000
        print(f"rebuild under {args.clients} clients: {len(served):,} requests served (p50 {np.percentile(ms, 50):.0f} ms, "
              f"p99 {np.percentile(ms, 99):.0f} ms), {len(failed)} failed {sorted(set(failed))}; "
              f"build {built - begin:.1f} s, switch {switched - built:.1f} s after it ended; "
              f"server peak RSS {peak_rss_mb(server.pid):.0f} MB", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
