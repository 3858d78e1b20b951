"""The app in a real browser: `streamlit run app.py` on a loopback port, driven by Debian's Chromium.

Screenshots go to tests/screenshots/ (git-ignored).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from app_server import CHROMIUM, REPO, AppDidNotStart, app_env, launch_chromium, running_app

SCREENSHOTS = REPO / "tests" / "screenshots"
ACTION_TIMEOUT_MS = 60_000


def require_chromium() -> None:
    if Path(CHROMIUM).is_file():
        return
    reason = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(demo_settings, tmp_path_factory):
    """The app served on 127.0.0.1 for the module's tests."""
    require_chromium()
    log = tmp_path_factory.mktemp("app") / "server.log"
    try:
        with running_app(os.environ | app_env(demo_settings), log) as url:
            yield url
    except AppDidNotStart as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def browser(server):
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, server):
    """Pages in fresh browser contexts (separate Streamlit sessions), camera allowed."""
    contexts = []

    def open_page(path: str = ""):
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, permissions=["camera"])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(ACTION_TIMEOUT_MS)
        page.goto(f"{server}/{path}")
        try:
            page.get_by_text("Dataset").first.wait_for()  # the sidebar: the engine is loaded
        except PlaywrightTimeout:
            pytest.fail(f"the app did not load; the page shows:\n{page.locator('body').inner_text()[:2000]}")
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name: str, height: int = 1800) -> None:
    """The page at 1440 x ``height`` (Streamlit scrolls inside its main block, so a full-page shot
    would stop at the viewport)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1440, "height": height})
    page.wait_for_timeout(500)  # images re-laid out at the new size
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def start_search(page, text: str) -> None:
    box = page.get_by_label("Describe what you are looking for")
    box.fill(text)
    box.press("Enter")


def shown_results(page, query_line: str, count: int = 12) -> list[tuple[str, str, str]]:
    """(name, type · colour, score) of each result tile, once the ``count`` results of the query whose
    description contains ``query_line`` are all on the page."""
    page.get_by_text(query_line).wait_for()
    tiles = page.locator('[class*="st-key-tile_results_"]')
    expect(tiles).to_have_count(count, timeout=ACTION_TIMEOUT_MS)
    tiles.nth(count - 1).get_by_role("button", name="Add to query").wait_for()  # the last tile is complete
    rows = []
    for i in range(count):
        text = tiles.nth(i).locator('[data-testid="stMarkdown"]')
        expect(text).to_have_text(re.compile(r"\S"), timeout=ACTION_TIMEOUT_MS)  # a tile's box comes before its text
        name, *lines = text.inner_text().strip().splitlines()
        rows.append((name.strip(), lines[0].strip(), lines[-1].strip()))
    return rows


def expected_results(engine, **query) -> list[tuple[str, str, str]]:
    frame = engine.search.search(k=12, **query)
    return [
        (r.prod_name, f"{r.product_type_name} · {r.colour_group_name}", f"score {r.score:.3f}")
        for r in frame.itertuples()
    ]


def test_text_search(new_page, demo_engine):
    page = new_page()
    start_search(page, "red jacket")
    assert shown_results(page, "“red jacket”") == expected_results(demo_engine, text="red jacket")
    page.get_by_text("12 results").wait_for()
    screenshot(page, "search_text")


def test_upload_a_photo(new_page, demo_engine, tmp_path):
    row = demo_engine.catalog.articles[demo_engine.catalog.articles["has_image"]].iloc[7]
    photo = tmp_path / "my-photo.jpg"
    shutil.copy(demo_engine.catalog.image_path(row.article_id), photo)
    page = new_page()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(photo)
    page.get_by_text("What Lookbook sees in your photos").wait_for()
    results = shown_results(page, "1 photo")
    assert results[0] == (row.prod_name, f"{row.product_type_name} · {row.colour_group_name}", "score 1.000")
    seen = page.locator('[data-testid="stExpander"]', has_text="What Lookbook sees").inner_text()
    assert "my-photo.jpg" in seen and "Type" in seen and "Colour" in seen and "%" in seen
    screenshot(page, "search_photo")


def test_camera_photo(new_page):
    page = new_page()
    page.get_by_text("Take a photo with the camera").click()
    take = page.get_by_role("button", name="Take Photo")
    take.wait_for()
    page.wait_for_function(  # the fake device's stream is playing
        "() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }"
    )
    take.click()
    page.get_by_text("camera photo").wait_for()
    assert len(shown_results(page, "1 photo")) == 12
    screenshot(page, "search_camera")


def test_more_like_this(new_page, demo_engine):
    page = new_page()
    start_search(page, "striped dress")
    first = shown_results(page, "“striped dress”")[0]
    page.locator(".st-key-tile_results_0").get_by_role("button", name="More like this").click()
    results = shown_results(page, "1 liked article")
    assert page.locator(".st-key-tile_like_0").inner_text().startswith(first[0])
    assert len(results) == 12 and results[0] != first


def test_customer_page(new_page, demo_engine):
    example = demo_engine.collab.example_customers(1)[0]
    history = demo_engine.collab.history(example)
    recs = demo_engine.collab.recommend(example, k=12)
    page = new_page("customers")
    box = page.get_by_label("Customer id")
    box.fill(example)
    box.press("Enter")
    page.locator(".st-key-tile_recs_11").wait_for()
    assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == f"{len(history):,}"
    # the tile's container can be in the page a moment before its text: wait for the text itself
    expect(page.locator(".st-key-tile_recs_0")).to_contain_text(recs["prod_name"].iloc[0])
    expect(page.locator(".st-key-tile_recs_0")).to_contain_text(recs["reason"].iloc[0])
    screenshot(page, "customer_recommended")
    page.get_by_role("tab", name="Purchase history").click()
    expect(page.locator(".st-key-tile_history_0")).to_contain_text(history["prod_name"].iloc[0])
    page.get_by_role("tab", name="What they buy").click()
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
    screenshot(page, "customer_taste")


def test_unknown_customer_is_a_message(new_page):
    page = new_page("customers")
    box = page.get_by_label("Customer id")
    box.fill("f" * 64)
    box.press("Enter")
    page.get_by_text("is not in this dataset").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_shared_address_reopens_the_view(new_page, demo_engine):
    """The address of a view, opened in another browser session, shows the same results; so does a
    customer's address with its tab."""
    page = new_page()
    start_search(page, "red jacket")
    shown_results(page, "“red jacket”")
    page.wait_for_function("() => location.search.includes('query_text=red')")
    shared = page.url + "&filter_colour_group_name=Red"
    other = new_page(shared.split("/", 3)[3])
    expected = expected_results(demo_engine, text="red jacket", filters={"colour_group_name": ["Red"]})
    assert shown_results(other, "“red jacket” · Colour: Red", len(expected)) == expected

    example = demo_engine.collab.example_customers(1)[0]
    history = demo_engine.collab.history(example)
    page = new_page(f"customers?customer_id={example}&tab=Purchase+history")
    expect(page.locator(".st-key-tile_history_0")).to_contain_text(history["prod_name"].iloc[0])


def test_concurrent_sessions_each_get_their_own_results(new_page, demo_engine):
    queries = ["red jacket", "white sneakers", "black trousers"]
    expected = [expected_results(demo_engine, text=query) for query in queries]
    assert len(set(map(tuple, expected))) == len(queries)  # a mix-up between sessions would show
    pages = [new_page() for _ in queries]
    for page, query in zip(pages, queries):  # all three reruns run in the server at once
        start_search(page, query)
    for page, query, results in zip(pages, queries, expected):
        assert shown_results(page, f"“{query}”") == results


def rerun_requests(page) -> list[str]:
    """The reruns this page's session asks the server for, as they are sent: the fragment's id, or
    "page" for a whole-page rerun (the page is reloaded so the listener sees its websocket)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    sent: list[str] = []

    def on_frame(payload) -> None:
        message = BackMsg()
        message.ParseFromString(payload if isinstance(payload, bytes) else payload.encode())
        if message.WhichOneof("type") == "rerun_script":
            sent.append(message.rerun_script.fragment_id or "page")

    page.on("websocket", lambda ws: ws.on("framesent", on_frame))
    page.reload()
    page.get_by_text("Dataset").first.wait_for()
    return sent


def test_a_query_reruns_only_the_results_and_the_sidebar_filter_stays(new_page, demo_engine):
    red = {"colour_group_name": ["Red"]}
    page = new_page("?filter_colour_group_name=Red")
    reruns = rerun_requests(page)
    start_search(page, "jacket")
    expected = expected_results(demo_engine, text="jacket", filters=red)
    assert shown_results(page, "“jacket” · Colour: Red", len(expected)) == expected
    assert reruns[-1] != "page"  # the search fragment only
    first = demo_engine.search.search(text="jacket", filters=red, k=12)["article_id"].iloc[0]
    page.locator(".st-key-tile_results_0").get_by_role("button", name="More like this").click()
    expected = expected_results(demo_engine, like=[first], filters=red)
    assert shown_results(page, "1 liked article · Colour: Red", len(expected)) == expected
    assert reruns[-1] != "page" and len(set(reruns[-2:])) == 1  # the same fragment again
    sidebar_filters = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').all_inner_texts()
    assert any("Red" in shown for shown in sidebar_filters)


def test_a_pinned_article_leads_and_an_excluded_one_is_gone(new_page, demo_engine, demo_settings):
    expected = demo_engine.search.search(text="dress", k=12)
    excluded = expected["article_id"].iat[0]
    pinned = demo_engine.catalog.articles.query("product_type_name == 'Trousers'").iloc[0]
    rules = demo_settings.data_dir / "rules.toml"
    rules.write_text(f'[[rule]]\nname = "trousers too"\naction = "pin"\nquery = "dress"\narticles = ["{pinned.article_id}"]\n\n'
                     f'[[rule]]\nname = "recalled"\naction = "exclude"\n[rule.when]\narticle_ids = ["{excluded}"]\n')
    try:
        page = new_page()
        start_search(page, "dress")
        page.get_by_text("“dress”").wait_for()
        first = page.locator(".st-key-tile_results_0")
        expect(first).to_contain_text("by rule: trousers too", timeout=ACTION_TIMEOUT_MS)
        assert first.inner_text().startswith(pinned.prod_name)
        names = [t.inner_text().splitlines()[0] for t in page.locator('[class*="st-key-tile_results_"]').all()]
        kept = demo_engine.catalog.articles.set_index("article_id")["prod_name"]
        assert names[1:] == list(kept[[a for a in expected["article_id"] if a != excluded][:11]])
        screenshot(page, "search_rules")
    finally:
        rules.unlink()


def test_details_show_colours_and_complete_the_look(new_page, demo_engine):
    expected = demo_engine.search.search(text="dress", k=12)
    position = next(i for i, others in enumerate(expected["other_colours"]) if others)
    row = expected.iloc[position]
    page = new_page()
    start_search(page, "dress")
    label = f"Details · +{len(row.other_colours)} colour{'s' if len(row.other_colours) > 1 else ''}"
    page.locator(f".st-key-tile_results_{position}").get_by_role("button", name=label).click()
    page.get_by_text("Complete the look").wait_for()
    expect(page.locator('[class*="st-key-tile_colours_"]')).to_have_count(len(row.other_colours))
    complete = demo_engine.collab.complete_the_look(row.article_id, k=6)
    tiles = page.locator('[class*="st-key-tile_complete_"]')
    expect(tiles).to_have_count(len(complete))
    assert tiles.nth(0).inner_text().startswith(complete["prod_name"].iat[0])
    screenshot(page, "article_details")


def test_filters_show_how_many_the_query_finds(new_page, demo_engine):
    """Each sidebar filter value carries the current query's count (under the other filters), and a
    value that would empty the page says 0."""
    black = {"colour_group_name": ["Black"]}
    counts = demo_engine.search.search(text="dress", filters=black, facets=True).attrs["facets"]["counts"]
    assert 0 in counts["product_type_name"].values()  # the check below can see a 0
    page = new_page("?filter_colour_group_name=Black")
    start_search(page, "dress")
    expected = expected_results(demo_engine, text="dress", filters=black)
    assert shown_results(page, "“dress” · Colour: Black", len(expected)) == expected
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("How many articles the current query finds").wait_for()
    for column, label in (("colour_group_name", "Colour"), ("product_type_name", "Type")):
        sidebar.locator('[data-testid="stMultiSelect"]').filter(has_text=label).locator("input").click()
        options = page.locator('[role="option"]')
        options.first.wait_for()
        shown = [text for text in options.all_inner_texts() if text != "Select all"]
        listed = [f"{value} ({n})" for value, n in counts[column].items()]
        assert shown and all(text in listed for text in shown), (shown, listed)
        if column == "product_type_name":  # a type the black dresses do not have would empty the page
            assert any(text.endswith("(0)") for text in shown)
        page.keyboard.press("Escape")
    screenshot(page, "search_facets")


def test_the_shopper_chip_personalises_and_clears(new_page, demo_engine):
    """The customer opened on the Customers page is shopping: the chip says so, results suit their
    taste and say why; clearing it gives everyone's results again."""
    customer = demo_engine.collab.example_customers(1)[0]
    personal = expected_results(demo_engine, text="dress", taste=demo_engine.collab.taste(customer))
    generic = expected_results(demo_engine, text="dress")
    assert personal != generic  # the check below can tell them apart
    why = demo_engine.search.search(text="dress", k=12, taste=demo_engine.collab.taste(customer))["for_you"].iat[0]
    page = new_page("customers")
    box = page.get_by_label("Customer id")
    box.fill(customer)
    box.press("Enter")
    page.locator(".st-key-tile_recs_0").wait_for()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Search").click()
    start_search(page, "dress")
    chip = page.get_by_role("button", name=re.compile(f"Shopping as {customer[:12]}"))
    chip.wait_for()
    assert shown_results(page, "“dress”") == personal
    expect(page.locator(".st-key-tile_results_0")).to_contain_text(why)
    screenshot(page, "search_shopping")
    chip.click()
    expect(chip).to_have_count(0)
    expect(page.locator(".st-key-tile_results_0")).not_to_contain_text(why)
    assert shown_results(page, "“dress”") == generic
