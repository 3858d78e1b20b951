"""A server left running while the data changes and a new build lands: every request is answered (from one
build or the other, never a mix), the server switches to the new build by itself, and a builder killed
half-way changes nothing for it. A real `python -m recommender serve` and real `build` processes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
CLIENTS = 8
NEW_NAME = "Quokka Zebraprint Tee"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def shop(demo_settings, tmp_path):
    """A copy of the built demo: a dataset folder and its artifacts that this test may change."""
    data, artifacts = tmp_path / "shop", tmp_path / "artifacts"
    shutil.copytree(demo_settings.data_dir, data)
    shutil.copytree(demo_settings.artifacts_dir, artifacts)
    env = {**os.environ, "LOOKBOOK_DATA": str(data), "LOOKBOOK_ARTIFACTS": str(artifacts),
           "LOOKBOOK_TRAIN_EPOCHS": str(demo_settings.train_epochs), "OMP_NUM_THREADS": "1"}
    env.pop("LOOKBOOK_API_KEY", None)
    return data, artifacts, env


def start_server(env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    """`python -m recommender serve` on a free loopback port (not waited for); the process and its URL."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "recommender", "serve", "--port", str(port)],
                                   cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
def server(shop, tmp_path):
    data, artifacts, env = shop
    log_path = tmp_path / "serve.log"
    process, url = start_server(env, log_path)
    try:
        wait_for(lambda: ready(url) is not None, 180, lambda: log_path.read_text()[-3000:])
        yield url, log_path
    finally:
        process.terminate()
        process.wait(timeout=30)


def ready(url: str) -> dict | None:
    try:
        response = httpx.get(f"{url}/ready", timeout=5)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


def wait_for(condition, seconds: float, why=lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s\n{why()}")
        time.sleep(0.3)


class Traffic:
    """CLIENTS threads querying search and recommendations until stopped; every status counted."""

    def __init__(self, url: str, customer: str):
        self.url, self.customer = url, customer
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]

    def client(self, i: int) -> None:
        paths = ["/v1/search?q=dress&k=12", f"/v1/customers/{self.customer}/recommendations?k=12",
                 "/v1/search?q=black+top&k=5&mode=lexical", f"/v1/customers/{self.customer}?limit=5"]
        with httpx.Client(base_url=self.url, timeout=60) as http:
            n = 0
            while not self.stop.is_set():
                path = paths[(i + n) % len(paths)]
                n += 1
                try:
                    response = http.get(path)
                    self.statuses.append(response.status_code)
                    if response.status_code != 200:
                        self.failures.append(f"{path}: {response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{path}: {type(exc).__name__} {exc}")

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


def change_the_data(data: Path) -> tuple[str, str]:
    """Rename one article and add purchases of it by one customer; returns (article id, customer id)."""
    articles = pd.read_csv(data / "articles.csv", dtype=str, keep_default_na=False)
    article_id = articles["article_id"].iat[3]
    articles.loc[3, "prod_name"] = NEW_NAME
    articles.to_csv(data / "articles.csv", index=False)
    transactions = pd.read_csv(data / "transactions_train.csv", dtype=str)
    customer = transactions["customer_id"].iat[-1]
    day = transactions["t_dat"].iat[-1]
    extra = pd.DataFrame({"t_dat": [day] * 3, "customer_id": [customer] * 3, "article_id": [article_id] * 3,
                          "price": ["0.0338983050847457"] * 3, "sales_channel_id": ["2"] * 3})
    pd.concat([transactions, extra]).to_csv(data / "transactions_train.csv", index=False)
    return article_id, customer


def test_a_new_build_lands_under_traffic_with_no_failed_request(server, shop, demo_engine):
    url, log_path = server
    data, artifacts, env = shop
    first = ready(url)
    customer = demo_engine.collab.example_customers(1)[0]
    assert NEW_NAME.split()[0].lower() not in httpx.get(f"{url}/v1/search?q=quokka&mode=lexical").text.lower()
    article_id, buyer = change_the_data(data)
    with Traffic(url, customer) as traffic:
        time.sleep(2)
        build = subprocess.run([sys.executable, "-m", "recommender", "build"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=900)
        assert build.returncode == 0, build.stderr[-3000:]
        wait_for(lambda: (ready(url) or first)["build_id"] != first["build_id"], 120, lambda: log_path.read_text()[-3000:])
        time.sleep(2)
    assert len(traffic.statuses) > 50 and not traffic.failures, traffic.failures[:5]
    found = httpx.get(f"{url}/v1/search", params={"q": "quokka", "mode": "lexical", "k": 3}).json()["results"]
    assert found and found[0]["article_id"] == article_id and found[0]["prod_name"] == NEW_NAME
    history = httpx.get(f"{url}/v1/customers/{buyer}", params={"limit": 3}).json()["history"]
    assert [row["article_id"] for row in history[:3]] == [article_id] * 3
    log = log_path.read_text()
    assert f"switched from build {{'build_id': '{first['build_id']}'" in log
    # The build did not remove the index version the old engine served: its lease (released a minute
    # after the switch) kept it on disk beside the new one.
    current = json.loads((artifacts / "content_index.json").read_text())["folder"]
    old = [p.name for p in artifacts.glob("content_index-*") if p.is_dir() and p.name != current]
    assert len(old) == 1 and list((artifacts / ".readers").glob(f"{old[0]}--*")), old


def test_a_builder_killed_half_way_changes_nothing_for_the_server(server, shop, demo_engine):
    url, log_path = server
    data, artifacts, env = shop
    first = ready(url)
    customer = demo_engine.collab.example_customers(1)[0]
    change_the_data(data)
    with Traffic(url, customer) as traffic:
        builder = subprocess.Popen([sys.executable, "-m", "recommender", "build"], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(6)  # reading the data, embedding the changed article, …
        os.kill(builder.pid, signal.SIGKILL)
        builder.wait()
        time.sleep(6)  # a few polls of the server
    assert len(traffic.statuses) > 20 and not traffic.failures, traffic.failures[:5]
    assert ready(url)["build_id"] == first["build_id"]
    assert "quokka" not in httpx.get(f"{url}/v1/search?q=quokka&mode=lexical").text.lower()


def test_health_answers_throughout_a_cold_start_and_ready_waits_for_warm_parts(shop, tmp_path):
    # Loading runs in a worker thread: /health answers at once all along; /ready and every /v1 call say
    # "loading" (503) until all parts are loaded and warm, and only then 200.
    data, artifacts, env = shop
    process, url = start_server(env, tmp_path / "serve.log")
    seen, health = [], []
    try:
        deadline = time.monotonic() + 180
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                try:
                    start = time.perf_counter()
                    assert http.get("/health").status_code == 200
                    health.append(time.perf_counter() - start)
                    search = http.get("/v1/search?q=dress&k=3")
                    ready_now = http.get("/ready")
                except httpx.TransportError:  # not listening yet
                    time.sleep(0.05)
                    continue
                seen.append((ready_now.status_code, search.status_code))
                if ready_now.status_code == 200:
                    break
                assert search.status_code == 503 and search.json()["error"]["code"] == "loading"
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert seen and seen[-1][0] == 200 and any(status == 503 for status, _ in seen), seen
    assert max(health) < 1.0, sorted(health)[-5:]  # the event loop never waited on loading


def test_a_slow_first_load_is_not_loaded_again_by_the_build_watcher(demo_settings):
    # The watcher polls for newer builds while the first load runs: it must not take the build being
    # loaded for a new one and open a second engine beside it (twice the memory and the cores).
    import asyncio

    from recommender.api.app import EngineHolder

    holder = EngineHolder(demo_settings, poll_s=0.05)
    opened = []
    real_open = holder.open_warm

    def slow_open():
        opened.append(time.monotonic())
        time.sleep(0.5)  # ten polls
        return real_open()

    holder.open_warm = slow_open

    async def serve_a_while():
        watcher = asyncio.create_task(holder.watch())
        await holder.load()
        await asyncio.sleep(0.5)
        watcher.cancel()

    asyncio.run(serve_a_while())
    assert holder.engine is not None and len(opened) == 1, opened
    holder.engine.close()


def test_a_build_half_way_is_not_opened_and_the_finished_one_is(shop, demo_settings):
    # While a build holds the lock, its artifacts change one by one: the watcher opens none of those
    # half-built versions (each would load the data, then be refused), and switches once the lock is free.
    import asyncio

    from recommender.api.app import EngineHolder
    from recommender.pipeline import store_for

    data, artifacts, _ = shop
    settings = demo_settings.with_(data_dir=data, artifacts_dir=artifacts)
    holder, store, opened = EngineHolder(settings, poll_s=0.05), store_for(settings), []
    real_open = holder.open_warm
    holder.open_warm = lambda: opened.append(store.build_id()) or real_open()

    async def a_build_lands():
        await holder.load()
        watcher = asyncio.create_task(holder.watch())
        with store.lock(wait=0):
            with store.write("note", {"step": 1}) as folder:
                (folder / "step.txt").write_text("1")
            await asyncio.sleep(0.6)  # twelve polls with a new build id, the build still running
            during = list(opened)
        await asyncio.sleep(1.0)
        watcher.cancel()
        return during

    during = asyncio.run(a_build_lands())
    assert len(during) == 1 and len(opened) == 2, opened
    assert holder.engine.build_id == store.build_id() != during[0]
    holder.engine.close()
