"""Warm text-search rerun of the search page, measured two ways, on the configured dataset.

    python bench/bench_app.py [--rounds 5]

server   app.py in streamlit.testing.v1.AppTest: one rerun per new query (the script, the query
         encoding, the FAISS search, the product grid's elements).
browser  `streamlit run app.py` and Debian's Chromium: from pressing Enter in the search box to the
         last of the 12 result tiles on screen (websocket, rerun, rendering, image requests).

The dataset is LOOKBOOK_DATA (default the embedded demo, built first when needed); the engine is
loaded before timing. Prints p50 / p95 / max; the target is a warm rerun <= 1 s on 2 cores.
Other processes sharing the cores distort the figures; the script prints the load average.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from streamlit.testing.v1 import AppTest  # noqa: E402

from app_server import CHROMIUM, launch_chromium, running_app  # noqa: E402
from recommender.config import Settings  # noqa: E402
from recommender.pipeline import ensure_engine  # noqa: E402

QUERIES = [
    "black trousers", "red dress", "striped t-shirt", "white sneakers", "denim jacket", "yellow skirt",
    "checked jumper", "leather bag", "grey hoodie", "blue shorts", "wool hat", "dotted dress",
]  # fmt: skip
K = 12


def queries(rounds: int) -> list[str]:
    """Each query differs from the one before, so every rerun searches anew."""
    return [f"{query} {round_}" if round_ else query for round_ in range(rounds) for query in QUERIES]


def summary(name: str, seconds: list[float]) -> str:
    seconds = sorted(seconds)
    p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
    return (f"{name:8s} {len(seconds)} warm text searches: p50 {statistics.median(seconds) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {seconds[-1] * 1000:.0f} ms")


def server_side(rounds: int) -> list[float]:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600).run()
    at.text_input(key="query_text").input("warm up").run()
    times = []
    for query in queries(rounds):
        at.text_input(key="query_text").input(query)
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception or at.error or len(at.get_by_key(f"tile_results_{K - 1}").button) != 2:
            raise SystemExit(f"query {query!r} did not show {K} results: {at.exception or at.error}")
    return times


def in_browser(rounds: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, running_app(dict(os.environ), Path(tmp) / "server.log") as url:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url)
            box = page.get_by_label("Describe what you are looking for")
            times = []
            for query in ["warm up", *queries(rounds)]:
                box.fill(query)
                start = time.perf_counter()
                box.press("Enter")
                page.get_by_text(f"“{query}”").wait_for()
                last = page.locator(f".st-key-tile_results_{K - 1}")
                last.get_by_role("button", name="Add to query").wait_for()
                last.locator("img").evaluate("img => img.complete || new Promise(r => img.onload = r)")
                times.append(time.perf_counter() - start)
            browser.close()
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the query list")
    args = parser.parse_args()

    settings = Settings()
    ensure_engine(settings, log=lambda message: None)  # built and current before timing anything
    print(f"dataset {settings.data_dir}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(summary("server", server_side(args.rounds)))
    if Path(CHROMIUM).is_file():
        print(summary("browser", in_browser(args.rounds)))
    else:
        print("browser  skipped: Debian's chromium is not installed")


if __name__ == "__main__":
    main()
