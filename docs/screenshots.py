"""The README's screenshots, taken in Chromium from the app served on a built dataset.

    python docs/screenshots.py --data ../shared/hm_sample --artifacts A [--query "black dress"]

Search page: the query, grouped by product (the default), personalised for the example customer who buys
the most of the query's first result's product type ("Shopping as …"), with the sidebar's facet counts.
Customers page: that customer's recommendations. Written to docs/screenshot.png and
docs/screenshot_customers.png.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from app_server import app_env, launch_chromium, running_app  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from recommender.config import Settings  # noqa: E402
from recommender.pipeline import open_engine  # noqa: E402

WIDTH, HEIGHT = 1440, 1500


def shopper_for(engine, query: str) -> str:
    """Of the example customers, the one with the largest share of purchases of the query's product type."""
    first = engine.search.search(text=query, k=1)["product_type_name"].iat[0]

    def share(customer: str) -> float:
        bought = engine.collab.history(customer)
        return float((bought["product_type_name"] == first).mean()) if len(bought) else 0.0

    return max(engine.collab.example_customers(200), key=share)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--query", default="black dress")
    args = parser.parse_args()
    settings = Settings(data_dir=Path(args.data), artifacts_dir=Path(args.artifacts))
    customer = shopper_for(open_engine(settings), args.query)
    print(f"shopping as {customer}")
    with running_app(os.environ | app_env(settings), Path("/tmp/lookbook_screenshots.log")) as url, \
            sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
        page.set_default_timeout(120_000)
        page.goto(url)  # the app's navigation first: an address of another page opened cold shows the bare pages
        page.get_by_text("Dataset").first.wait_for()
        page.goto(f"{url}/customers?customer_id={customer}")
        page.locator(".st-key-tile_recs_11").wait_for()
        page.wait_for_timeout(2000)  # photos
        page.screenshot(path=str(REPO / "docs" / "screenshot_customers.png"))
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Search").click()
        box = page.get_by_label("Describe what you are looking for")
        box.fill(args.query)
        box.press("Enter")
        page.get_by_text("How many articles the current query finds").wait_for()
        page.locator(".st-key-tile_results_11").wait_for()
        page.wait_for_timeout(3000)  # photos
        page.screenshot(path=str(REPO / "docs" / "screenshot.png"))
        browser.close()
    print("written: docs/screenshot.png, docs/screenshot_customers.png")


if __name__ == "__main__":
    main()
