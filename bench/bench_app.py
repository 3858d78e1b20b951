"""Perceived speed of the app in a real browser: the previous app and this one, in the same run.

    python bench/bench_app.py [--rounds 2] [--sessions 5] [--seconds 30] [--old-ref REF]

Each app is served in turn by `streamlit run` on the configured dataset (LOOKBOOK_DATA, default the
embedded demo, built first when needed) and driven by Debian's Chromium through Playwright. Every figure
runs from the user's action to the last result tile's photo painted (its alt text and detail line are
the engine's answer for that action, and the image has loaded):

  search     a warm text search: Enter in the search box
  more       "More like this" on a result
  customer   a customer id typed on the customers page (Enter) → the last recommendation
  sessions   N browser sessions searching at once for S seconds: every search, and the errors

The previous app is REF's app.py / ui.py / pages/ / web/ (default: main, or the last commit before ui.py was
removed when main no longer has it), run from a temporary folder against this checkout's recommender/.
Prints p50 / p95 / max per app and the ratio new / previous. Other processes sharing the cores
distort the figures; the script prints the load average.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from app_server import CHROMIUM, CHROMIUM_ARGS, app_env, running_app  # noqa: E402
from recommender.config import Settings  # noqa: E402
from recommender.pipeline import ensure_engine  # noqa: E402

QUERIES = [
    "black trousers", "red dress", "striped t-shirt", "white sneakers", "denim jacket", "yellow skirt",
    "checked jumper", "leather bag", "grey hoodie", "blue shorts", "wool hat", "dotted dress",
]  # fmt: skip
K = 12
TIMEOUT_MS = 60_000
APP_LAYER = ["app.py", "ui.py", "pages", "web", ".streamlit"]  # the previous app: these files at REF

# The last tile shows the engine's answer (photo alt = name, or "name: no photo" on the placeholder; its
# detail line) and its picture has loaded.
PAINTED = """([key, name, detail]) => {
  const tile = document.querySelector(`.st-key-${key}`);
  const img = tile && tile.querySelector('img');
  return !!img && (img.alt === name || img.alt === `${name}: no photo`) && img.complete && img.naturalWidth > 0
    && tile.innerText.includes(detail);
}"""


def queries(count: int, salt: str = "") -> list[str]:
    """``count`` queries, each different from the one before, so every rerun searches anew."""
    return [f"{QUERIES[i % len(QUERIES)]}{salt}{' ' + str(i // len(QUERIES)) if i >= len(QUERIES) else ''}"
            for i in range(count)]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout


def previous_app(ref: str | None, folder: Path) -> str:
    """Write REF's app files into ``folder``; returns the ref used."""
    if ref is None:
        has_ui = subprocess.run(["git", "cat-file", "-e", "main:ui.py"], cwd=REPO, capture_output=True).returncode == 0
        ref = "main" if has_ui else git("rev-list", "-n", "1", "HEAD", "--", "ui.py").strip() + "^"
    for name in git("ls-tree", "-r", "--name-only", ref, "--", *APP_LAYER).split():
        shown = subprocess.run(["git", "show", f"{ref}:{name}"], cwd=REPO, capture_output=True)
        if shown.returncode == 0:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(shown.stdout)
    return ref


class Expected:
    """The engine's answers, computed before timing so the bench adds no load while it measures."""

    def __init__(self, engine):
        self.engine = engine

    def search(self, **query) -> tuple[str, str, str]:
        """(first article id, last name, last detail line)"""
        found = self.engine.search.search(k=K, **query)
        last = found.iloc[-1]
        return found["article_id"].iloc[0], last.prod_name, f"score {last.score:.3f}"

    def recommend(self, customer_id: str) -> tuple[str, str]:
        recs = self.engine.collab.recommend(customer_id, k=K)
        names = self.engine.catalog.articles["prod_name"].iloc[self.engine.catalog.article_rows(recs["article_id"])]
        return names.iloc[-1], recs["reason"].iloc[-1]


async def painted(page, key: str, name: str, detail: str) -> None:
    await page.wait_for_function(PAINTED, arg=[key, name, detail], timeout=TIMEOUT_MS)


async def timed_search(page, query: str, answer) -> float:
    box = page.get_by_label("Describe what you are looking for")
    await box.fill(query)
    start = time.perf_counter()
    await box.press("Enter")
    await painted(page, f"tile_results_{K - 1}", answer[1], answer[2])
    return time.perf_counter() - start


async def open_page(browser, url: str):
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url)
    await page.get_by_text("Dataset").first.wait_for()
    return page


async def scenario_search(browser, url, expected: dict, rounds: int) -> list[float]:
    page = await open_page(browser, url)
    await timed_search(page, "warm up", expected["warm up"])
    times = [await timed_search(page, q, expected[q]) for q in queries(rounds * len(QUERIES))]
    await page.context.close()
    return times


async def scenario_more(browser, url, expected: dict, likes: dict, rounds: int) -> list[float]:
    page = await open_page(browser, url)
    times = []
    for query in queries(rounds * len(QUERIES)):
        await timed_search(page, query, expected[query])
        name, detail = likes[query]
        start = time.perf_counter()
        await page.locator(".st-key-tile_results_0").get_by_role("button", name="More like this").click()
        await painted(page, f"tile_results_{K - 1}", name, detail)
        times.append(time.perf_counter() - start)
        await page.get_by_role("button", name="Clear query").click()  # the next search starts afresh
        await page.get_by_text("Describe an article, upload a photo").wait_for()
    await page.context.close()
    return times


async def scenario_customer(browser, url, customers: dict[str, tuple[str, str]]) -> list[float]:
    page = await open_page(browser, f"{url}/{customers['path']}")
    times = []
    for number, (customer_id, (name, reason)) in enumerate(customers["answers"].items()):
        box = page.get_by_label("Customer id")
        await box.fill(customer_id)
        start = time.perf_counter()
        await box.press("Enter")
        await painted(page, f"tile_recs_{K - 1}", name, reason)
        if number:  # the first opens the page's caches
            times.append(time.perf_counter() - start)
    await page.context.close()
    return times


async def scenario_sessions(browser, url, expected: dict, sessions: int, seconds: float):
    pages = [await open_page(browser, url) for _ in range(sessions)]
    times, errors = [], []

    async def shopper(number: int, page) -> None:
        deadline = time.perf_counter() + seconds
        for query in queries(10_000, f" s{number}"):
            if time.perf_counter() > deadline or query not in expected:
                return
            try:
                times.append(await timed_search(page, query, expected[query]))
            except Exception as exc:  # a timeout or a broken page counts as an error
                errors.append(f"session {number}: {type(exc).__name__}")
            if await page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count():
                errors.append(f"session {number}: an error on the page")

    await asyncio.gather(*(shopper(n, p) for n, p in enumerate(pages)))
    for page in pages:
        await page.context.close()
    return times, errors


def summary(seconds: list[float]) -> str:
    if not seconds:
        return "no samples"
    seconds = sorted(seconds)
    p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
    return (f"n={len(seconds):3d} p50 {statistics.median(seconds) * 1000:5.0f} ms  p95 {p95 * 1000:5.0f} ms  "
            f"max {seconds[-1] * 1000:5.0f} ms")


async def measure(url: str, args, answers: dict, customers_path: str) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        results = {"search": await scenario_search(browser, url, answers["search"], args.rounds)}
        results["more"] = await scenario_more(browser, url, answers["search"], answers["more"], args.rounds)
        results["customer"] = await scenario_customer(
            browser, url, {"path": customers_path, "answers": answers["customers"]})
        results["sessions"], results["errors"] = await scenario_sessions(
            browser, url, answers["search"], args.sessions, args.seconds)
        await browser.close()
    return results


def answers_for(engine, args) -> dict:
    expected = Expected(engine)
    texts = ["warm up", *queries(args.rounds * len(QUERIES))]
    texts += [q for n in range(args.sessions) for q in queries(int(args.seconds * 4), f" s{n}")]
    search = {q: expected.search(text=q) for q in texts}
    more = {}
    for query in queries(args.rounds * len(QUERIES)):
        more[query] = expected.search(like=[search[query][0]])[1:]
    customers = {}
    if engine.collab is not None:
        for customer_id in engine.collab.example_customers(args.customers):
            customers[customer_id] = expected.recommend(customer_id)
    return {"search": search, "more": more, "customers": customers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the 12 queries (search scenario)")
    parser.add_argument("--customers", type=int, default=13, help="customers opened (the first is not timed)")
    parser.add_argument("--sessions", type=int, default=5, help="browser sessions searching at once")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the sessions search")
    parser.add_argument("--old-ref", default=None, help="git ref of the previous app (default: see above)")
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        raise SystemExit("Debian's chromium is not installed (apt-get install chromium)")

    settings = Settings()
    engine = ensure_engine(settings, log=lambda message: None)  # built and current before timing anything
    answers = answers_for(engine, args)
    del engine
    env = os.environ | app_env(settings)
    print(f"dataset {settings.data_dir.name}: {len(answers['search'])} queries prepared; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        old_dir = Path(tmp) / "previous"
        old_dir.mkdir()
        ref = previous_app(args.old_ref, old_dir)
        apps = {
            f"previous ({ref})": (old_dir, env | {"PYTHONPATH": str(REPO)},
                                  "Customers" if (old_dir / "pages" / "1_Customers.py").is_file() else "customers"),
            "new": (REPO, env, "customers"),
        }
        for name, (folder, app_environment, customers_path) in apps.items():
            with running_app(app_environment, Path(tmp) / f"{name.split()[0]}.log", app_dir=folder) as url:
                results[name] = asyncio.run(measure(url, args, answers, customers_path))
            print(f"measured {name}; load average {os.getloadavg()[0]:.1f}", flush=True)

    (old_name, old), (new_name, new) = results.items()
    labels = {"search": "warm text search", "more": "more like this", "customer": "open a customer",
              "sessions": f"{args.sessions} sessions searching"}  # fmt: skip
    for key, label in labels.items():
        ratio = statistics.median(new[key]) / statistics.median(old[key]) if old[key] and new[key] else float("nan")
        print(f"\n{label}")
        print(f"  {old_name:24s} {summary(old[key])}")
        print(f"  {new_name:24s} {summary(new[key])}")
        print(f"  ratio new / previous p50: {ratio:.2f}")
    for name, result in results.items():
        print(f"{name}: {len(result['errors'])} errors in the concurrent sessions {sorted(set(result['errors']))[:3]}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
