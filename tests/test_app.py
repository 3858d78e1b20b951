"""The pages through streamlit.testing.v1.AppTest, against a small demo built with a tiny model."""
from __future__ import annotations

import html
import io
import re
import shutil
from dataclasses import dataclass

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from app_server import app_env
from conftest import DEMO_BACKTEST_WEEKS

from recommender.collab.methods import METHODS

TIMEOUT = 120  # the first run in the process loads the model


@pytest.fixture
def app(demo_settings, monkeypatch):
    """A fresh AppTest of the search page; the engine itself is cached once per process."""
    for name, value in app_env(demo_settings).items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    return at.run()


@pytest.fixture
def customers(app):
    return app.switch_page("pages/customers.py").run()


@dataclass
class Tile:
    name: str
    captions: list[str]
    buttons: list


def plain(markdown: str) -> str:
    """Markdown as it renders: the page escapes every punctuation character of catalogue text."""
    return re.sub(r"\\(.)", r"\1", markdown)


SMALL_PRINT = re.compile(r":small\[:gray\[(.*)\]\]")


def tile_text(tile) -> tuple[str, list[str]]:
    """A tile's name and its small print (type · colour, why it was found, its detail), a line each."""
    name, *lines = tile.markdown[0].value.split("\n\n", 1)[1].split("  \n")
    return plain(name.strip("*")), [plain(SMALL_PRINT.fullmatch(line).group(1)) for line in lines]


def tile_alt(tile) -> str:
    """The alt text of a tile's picture (its photo, or the placeholder's "name: no photo")."""
    return html.unescape(re.match(r'<img class="tile-photo" src="data:image/[a-z]+;base64,[A-Za-z0-9+/=]+" alt="([^"]*)">',
                                  tile.markdown[0].value).group(1))


def tiles(at: AppTest, grid: str) -> list[Tile]:
    """The product tiles of one grid, in order."""
    found = []
    while True:
        try:
            tile = at.get_by_key(f"tile_{grid}_{len(found)}")
        except KeyError:
            return found
        found.append(Tile(*tile_text(tile), list(tile.button)))


def button(tile: Tile, label: str):
    return next(b for b in tile.buttons if b.label == label)


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def search(at: AppTest, text: str) -> AppTest:
    at.text_input(key="query_text").input(text)
    return at.run()


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG")
    return out.getvalue()


# --- search page ---------------------------------------------------------------------------------


def test_sidebar_says_what_is_loaded(app, demo_engine):
    no_errors(app)
    sidebar = " ".join(plain(m.value) for m in app.sidebar.markdown)
    status = demo_engine.status()
    assert status["dataset"] in sidebar
    assert status["model"] in sidebar
    assert f"{status['articles']:,} articles indexed" in sidebar
    assert f"{status['customers']:,} customers" in sidebar
    # Nothing asked yet: a hint, no results.
    assert "Describe an article" in app.info[0].value
    assert tiles(app, "results") == []


def test_text_search_shows_the_engines_results(app, demo_engine):
    search(app, "black trousers")
    no_errors(app)
    shown = tiles(app, "results")
    expected = demo_engine.search.search(text="black trousers", k=12)
    assert [t.name for t in shown] == list(expected["prod_name"])
    first = expected.iloc[0]
    assert shown[0].captions[0] == f"{first.product_type_name} · {first.colour_group_name}"
    assert shown[0].captions[-1] == f"score {first.score:.3f}"
    details = lambda n: f"Details · +{n} colour{'s' if n > 1 else ''}" if n else "Details"
    for tile, others in zip(shown, expected["other_colours"]):
        assert [b.label for b in tile.buttons] == [details(len(others)), "More like this", "Add to query"]
    assert app.subheader[0].value == "12 results"


def test_the_shopper_opened_on_the_customers_page_personalises_search(app, demo_engine):
    customer = demo_engine.collab.example_customers(1)[0]
    app.switch_page("pages/customers.py").run()
    app.text_input(key="customer_id").input(customer).run()
    app.switch_page("app.py").run()
    search(app, "dress")
    no_errors(app)
    expected = demo_engine.search.search(text="dress", k=12, taste=demo_engine.collab.taste(customer))
    shown = tiles(app, "results")
    assert [t.name for t in shown] == list(expected["prod_name"])
    assert shown[0].captions[-2] == expected["for_you"].iat[0]  # why it suits them, above the score
    chip = app.button(key="shopping_clear")
    assert chip.label.startswith(f"Shopping as {customer[:12]}")
    chip.click().run()
    assert [t.name for t in tiles(app, "results")] == list(demo_engine.search.search(text="dress", k=12)["prod_name"])
    assert not [b for b in app.button if b.key == "shopping_clear"]


def test_a_pinned_article_leads_and_an_excluded_one_is_gone(app, demo_engine, demo_settings):
    expected = demo_engine.search.search(text="dress", k=12)
    excluded = expected["article_id"].iat[0]
    pinned = demo_engine.catalog.articles.query("product_type_name == 'Trousers'")
    rules = demo_settings.data_dir / "rules.toml"
    rules.write_text(f"""[[rule]]\nname = "trousers too"\naction = "pin"\nquery = "dress"\narticles = ["{pinned['article_id'].iat[0]}"]\n
[[rule]]\nname = "recalled"\naction = "exclude"\n[rule.when]\narticle_ids = ["{excluded}"]\n""")
    try:
        search(app, "dress")
        no_errors(app)
        shown = tiles(app, "results")
        assert shown[0].name == pinned["prod_name"].iat[0] and "by rule: trousers too" in shown[0].captions
        names = demo_engine.catalog.articles.set_index("article_id")["prod_name"]
        assert len(shown) == 12 and [t.name for t in shown[1:]] == list(names[[a for a in expected["article_id"] if a != excluded][:11]])
    finally:
        rules.unlink()


def test_details_show_colours_lookalikes_and_complete_the_look(app, demo_engine):
    search(app, "dress")
    expected = demo_engine.search.search(text="dress", k=12)
    position = next(i for i, others in enumerate(expected["other_colours"]) if others)
    row = expected.iloc[position]
    app.get_by_key(f"tile_results_{position}").button[0].click().run()
    no_errors(app)
    assert app.subheader[0].value == row.prod_name  # the detail view, above the results
    catalog = demo_engine.catalog
    names = catalog.articles.set_index("article_id")["prod_name"]
    colours = tiles(app, "colours")
    product = catalog.articles["product_code"].iat[catalog.article_row(row.article_id)]
    assert len(colours) == (catalog.articles["product_code"] == product).sum() - 1
    assert [t.name for t in tiles(app, "alike")] == names[demo_engine.search.search(like=[row.article_id], k=6)["article_id"]].tolist()
    complete = demo_engine.collab.complete_the_look(row.article_id, k=6)
    shown = tiles(app, "complete")
    assert [t.name for t in shown] == names[complete["article_id"]].tolist()
    assert [t.captions[-1] for t in shown] == complete["reason"].tolist()
    # A look-alike's details replace these; Close hides the view.
    tiles(app, "alike")[0].buttons[0].click().run()
    assert app.subheader[0].value == names[demo_engine.search.search(like=[row.article_id], k=6)["article_id"].iat[0]]
    app.button(key="detail_close").click().run()
    assert tiles(app, "complete") == [] and app.subheader[0].value == "12 results"


def test_the_filters_count_what_the_query_finds(app, demo_engine):
    search(app, "dress")
    no_errors(app)
    counts = demo_engine.search.search(text="dress", facets=True).attrs["facets"]["counts"]["colour_group_name"]
    options = app.multiselect(key="filter_colour_group_name").options
    assert options == [f"{value} ({counts[value]})" for value in sorted(counts)]
    # A chosen colour narrows the other filters' counts: a type no dress of that colour has says (0).
    colour = max(counts, key=lambda value: (counts[value], value))
    app.multiselect(key="filter_colour_group_name").select(colour).run()
    types = demo_engine.search.search(text="dress", filters={"colour_group_name": [colour]},
                                      facets=True).attrs["facets"]["counts"]["product_type_name"]
    type_options = app.multiselect(key="filter_product_type_name").options
    assert type_options == [f"{value} ({types[value]})" for value in sorted(types)]
    assert any(option.endswith("(0)") for option in type_options)
    app.multiselect(key="filter_colour_group_name").unselect(colour).run()
    search(app, "trousers")  # another query: other counts
    trousers = demo_engine.search.search(text="trousers", facets=True).attrs["facets"]["counts"]["colour_group_name"]
    assert app.multiselect(key="filter_colour_group_name").options == [f"{v} ({trousers[v]})" for v in sorted(trousers)]


def test_filters_and_k_restrict_the_results(app, demo_engine):
    app.multiselect(key="filter_colour_group_name").select("Red")
    app.slider(key="k").set_value(8)
    search(app, "jacket")
    no_errors(app)
    shown = tiles(app, "results")
    expected = demo_engine.search.search(text="jacket", filters={"colour_group_name": ["Red"]}, k=8)
    assert [t.name for t in shown] == list(expected["prod_name"]) and 0 < len(shown) <= 8
    assert all(t.captions[0].endswith("· Red") for t in shown)
    assert any(c.value.endswith("· Colour: Red") for c in app.caption)  # the query line says so


def test_uploaded_catalogue_photo_finds_its_article(app, demo_engine, demo_settings):
    row = demo_engine.catalog.articles[demo_engine.catalog.articles["has_image"]].iloc[5]
    photo = demo_engine.catalog.image_path(row.article_id).read_bytes()
    app.file_uploader[0].upload(f"{row.article_id}.jpg", photo, "image/jpeg")
    app.run()
    no_errors(app)
    # The photo's predicted attributes are shown next to it.
    seen = app.expander[0]
    assert seen.label == "What Lookbook sees in your photos"
    assert "**Type** " in seen.markdown[0].value and "**Colour** " in seen.markdown[0].value
    # Its own stored vector is the nearest.
    top = tiles(app, "results")[0]
    assert top.name == row.prod_name
    assert top.captions[0] == f"{row.product_type_name} · {row.colour_group_name}"
    assert top.captions[-1] == "score 1.000"


def test_text_and_photo_together_show_the_weight_slider(app, demo_engine):
    row = demo_engine.catalog.articles[demo_engine.catalog.articles["has_image"]].iloc[0]
    photo = demo_engine.catalog.image_path(row.article_id).read_bytes()
    app.file_uploader[0].upload("look.jpg", photo, "image/jpeg")
    search(app, "red")
    no_errors(app)
    weight = app.slider(key="image_weight")
    weight.set_value(1.0).run()
    assert tiles(app, "results")[0].name == row.prod_name  # pictures only: the photo's article first


def test_camera_photo_is_searched(app, demo_engine):
    app.toggle(key="camera_on").set_value(True).run()
    row = demo_engine.catalog.articles[demo_engine.catalog.articles["has_image"]].iloc[3]
    shot = jpeg(Image.open(demo_engine.catalog.image_path(row.article_id)))
    app.camera_input[0].upload("shot.jpg", shot)
    app.run()
    no_errors(app)
    assert "camera photo" in app.expander[0].markdown[0].value
    assert tiles(app, "results")[0].captions[0] == f"{row.product_type_name} · {row.colour_group_name}"


def test_bad_files_get_a_message_and_good_ones_still_count(app, demo_engine):
    row = demo_engine.catalog.articles[demo_engine.catalog.articles["has_image"]].iloc[0]
    uploader = app.file_uploader[0]
    uploader.upload("notes.jpg", b"not a photo", "image/jpeg")  # allowed by name, judged by content
    uploader.upload("broken.jpg", b"\xff\xd8\xff\xe0 truncated", "image/jpeg")
    uploader.upload("good.jpg", demo_engine.catalog.image_path(row.article_id).read_bytes(), "image/jpeg")
    app.run()
    assert not app.exception
    messages = [e.value for e in app.error]
    assert len(messages) == 2
    assert messages[0].startswith("notes.jpg is not an image in an accepted format (JPEG, PNG, WEBP, GIF, BMP, TIFF, HEIC, AVIF)")
    assert messages[1].startswith("broken.jpg is a corrupt or truncated image")
    assert tiles(app, "results")[0].name == row.prod_name  # good.jpg was searched


def test_clear_query_empties_the_photos_too(app, demo_engine):
    row = demo_engine.catalog.articles[demo_engine.catalog.articles["has_image"]].iloc[2]
    app.file_uploader[0].upload("look.jpg", demo_engine.catalog.image_path(row.article_id).read_bytes(), "image/jpeg")
    app.run()
    assert len(tiles(app, "results")) == 12
    next(b for b in app.button if b.label == "Clear query").click().run()
    no_errors(app)
    assert tiles(app, "results") == [] and "Describe an article" in app.info[0].value


def test_huge_image_is_refused_in_the_page(app):
    huge = io.BytesIO()
    Image.new("L", (9_000, 5_000), "white").save(huge, format="PNG")
    app.file_uploader[0].upload("huge.png", huge.getvalue(), "image/png")
    app.run()
    assert not app.exception
    assert app.error[0].value.startswith("huge.png is 9000x5000 pixels; the limit is 40 megapixels")
    assert tiles(app, "results") == []


def test_empty_query_says_so(app):
    search(app, "   ")
    assert not app.exception
    assert app.error and "empty" in app.error[0].value.lower()
    app.text_input(key="query_text").input("")
    app.text_input(key="negative_text").input("denim")
    app.run()
    assert "nothing to search for" in app.error[0].value


def test_more_like_this_and_add_to_query(app, demo_engine):
    search(app, "striped dress")
    first = tiles(app, "results")[0]
    button(first, "More like this").click()
    app.run()
    no_errors(app)
    assert app.text_input(key="query_text").value == ""
    liked = tiles(app, "like")
    assert [t.name for t in liked] == [first.name]
    article = app.session_state["like"][0]
    expected = demo_engine.search.search(like=[article], k=12)
    assert [t.name for t in tiles(app, "results")] == list(expected["prod_name"])

    button(tiles(app, "results")[2], "Add to query").click()
    app.run()
    assert len(app.session_state["like"]) == 2
    assert len(tiles(app, "like")) == 2
    tiles(app, "like")[0].buttons[0].click()  # remove
    app.run()
    assert app.session_state["like"] == [expected.iloc[2].article_id]


def test_article_without_photo_gets_a_placeholder_tile(app, demo_engine):
    no_photo = demo_engine.catalog.articles[~demo_engine.catalog.articles["has_image"]].iloc[0]
    # Its type and colour as filters, and the largest k: every such article is a result.
    app.multiselect(key="filter_product_type_name").select(no_photo.product_type_name)
    app.multiselect(key="filter_colour_group_name").select(no_photo.colour_group_name)
    app.slider(key="k").set_value(48)
    search(app, no_photo.prod_name)
    no_errors(app)
    position = next(i for i, t in enumerate(tiles(app, "results")) if "no photo" in " ".join(t.captions))
    tile = app.get_by_key(f"tile_results_{position}")
    name, captions = tile_text(tile)
    assert name == no_photo.prod_name
    assert "no photo · found by its description" in captions
    assert any(c.startswith("matched name: ") for c in captions)  # found by its own words
    assert tile_alt(tile) == f"{no_photo.prod_name}: no photo"

    next(b for b in tile.button if b.label == "More like this").click().run()  # from its text-placed vector
    no_errors(app)
    assert tile_alt(app.get_by_key("tile_like_0")) == f"{no_photo.prod_name}: no photo"
    filters = {column: [no_photo[column]] for column in ("product_type_name", "colour_group_name")}
    expected = demo_engine.search.search(like=[no_photo.article_id], filters=filters, k=48)
    assert [t.name for t in tiles(app, "results")] == list(expected["prod_name"])


# --- customers page ------------------------------------------------------------------------------


def open_tab(at: AppTest, key: str, name: str) -> AppTest:
    """Tabs compute only when open; AppTest opens one through its state, as a click does."""
    at.session_state[key] = name
    return at.run()


def test_customer_page_shows_history_similar_customers_and_recommendations(customers, demo_engine):
    example = demo_engine.collab.example_customers(1)[0]
    customers.selectbox(key="customer_example").select(example).run()
    no_errors(customers)
    assert customers.text_input(key="customer_id").value == example

    history = demo_engine.collab.history(example)
    assert customers.metric[0].value == f"{len(history):,}"
    recs = demo_engine.collab.recommend(example, k=12)
    rec_tiles = tiles(customers, "recs")
    assert [t.name for t in rec_tiles] == list(recs["prod_name"])
    assert rec_tiles[0].captions[-1] == recs["reason"].iloc[0]
    method = demo_engine.collab.method
    assert f"Made by the {method}: the method the build's backtest chose (see Insights)." in [c.value for c in customers.caption]
    assert tiles(customers, "history") == [] and not customers.dataframe  # closed tabs cost nothing

    open_tab(customers, "tab", "Purchase history")
    shown = tiles(customers, "history")
    assert [t.name for t in shown] == list(history["prod_name"][: len(shown)])
    assert shown[0].captions[-1] == f"bought {history['t_dat'].iloc[0]:%d %b %Y}"  # newest first
    assert tiles(customers, "recs") == []

    open_tab(customers, "tab", "Similar customers")
    table = customers.dataframe[0].value
    similar = demo_engine.collab.similar_customers(example, k=10)
    assert list(table["customer_id"]) == list(similar["customer_id"])
    assert example not in set(table["customer_id"])


def test_history_paging_starts_over_for_a_typed_customer(customers, demo_engine):
    first, second = demo_engine.collab.example_customers(2)
    customers.selectbox(key="customer_example").select(first).run()
    open_tab(customers, "tab", "Purchase history")
    page = len(tiles(customers, "history"))
    customers.button[[b.label for b in customers.button].index("Show more")].click().run()
    assert len(tiles(customers, "history")) > page
    customers.text_input(key="customer_id").input(second).run()
    no_errors(customers)
    assert len(tiles(customers, "history")) == min(page, len(demo_engine.collab.history(second)))


def test_customer_ids_are_validated(customers):
    customers.text_input(key="customer_id").input("not-an-id").run()
    assert not customers.exception
    assert "is not a customer id (64 hexadecimal characters)" in customers.error[0].value
    customers.text_input(key="customer_id").input("0" * 64).run()
    assert "is not in this dataset" in customers.error[0].value
    assert tiles(customers, "recs") == []


def test_random_customer_opens_someone_with_purchases(customers):
    next(b for b in customers.button if b.label == "Random").click().run()
    no_errors(customers)
    assert len(customers.text_input(key="customer_id").value) == 64
    assert len(tiles(customers, "recs")) == 12


def test_new_shopper_gets_recommendations_from_picked_items(customers, demo_engine):
    customers.radio(key="shopper_mode").set_value("A new shopper").run()
    customers.text_input(key="shopper_query").input("boots").run()
    no_errors(customers)
    candidates = tiles(customers, "candidates")
    assert candidates
    candidates[0].buttons[0].click().run()
    tiles(customers, "candidates")[1].buttons[0].click().run()
    no_errors(customers)
    picks = customers.session_state["shopper_picks"]
    assert len(picks) == 2
    expected = demo_engine.collab.recommend_for_items(picks, k=12)
    assert [t.name for t in tiles(customers, "shopper_recs")] == list(expected["prod_name"])
    assert not set(picks) & set(expected["article_id"])


# --- first run and stale artifacts ---------------------------------------------------------------


def test_unbuilt_data_shows_the_command_not_a_button(demo_settings, monkeypatch):
    """Artifacts of another model, on an operator's dataset: what to run, no build for visitors, no paths."""
    env = app_env(demo_settings) | {"LOOKBOOK_PRETRAINED": "some/other-weights.pt"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LOOKBOOK_ALLOW_BUILD", raising=False)
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "other-weights.pt" in at.error[0].value
    assert not at.button
    assert at.code[0].value == (
        'python -m recommender build --data "$LOOKBOOK_DATA" --artifacts "$LOOKBOOK_ARTIFACTS" '
        '--model "$LOOKBOOK_MODEL" --pretrained "$LOOKBOOK_PRETRAINED"'
    )
    shown = " ".join(e.value for e in [*at.error, *at.markdown, *at.code])
    assert str(demo_settings.data_dir) not in shown and str(demo_settings.artifacts_dir) not in shown


def test_missing_collaborative_artifacts_are_built_from_the_page(demo_settings, tmp_path, monkeypatch):
    """Where the operator allows it, the build runs inside the page with a progress bar, then the page works."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(demo_settings.artifacts_dir, artifacts)
    (artifacts / "collab.json").unlink()  # its manifest is what makes an artifact exist
    settings = demo_settings.with_(artifacts_dir=artifacts)
    for name, value in app_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOOKBOOK_ALLOW_BUILD", "1")
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "python -m recommender build" in at.error[0].value
    assert [b.label for b in at.button] == ["Build it now"]
    at.button[0].click().run()
    no_errors(at)
    assert not at.status  # the build's progress is gone once it is done
    assert (artifacts / "collab.json").is_file()
    search(at, "white sneakers")
    assert len(tiles(at, "results")) == 12


# --- hardening -----------------------------------------------------------------------------------


def grid_of_every_article(data_dir: str) -> None:
    """An AppTest script: the product grid over a catalogue folder's articles."""
    from recommender.catalog import load_catalog
    from web.grid import articles, product_grid

    catalog = load_catalog(data_dir)
    product_grid(articles(catalog.articles["article_id"], catalog), catalog, "all")


def test_photo_that_cannot_be_shown_gets_the_placeholder_tile(demo_dir, tmp_path):
    """A corrupt file and a 16-bit PNG among the catalogue's photos: the grid still shows every tile."""
    lines = (demo_dir / "articles.csv").read_text().splitlines(keepends=True)
    (tmp_path / "articles.csv").write_text("".join(lines[:4]))
    ids = [line.split(",")[0] for line in lines[1:4]]
    for article_id in ids:
        (tmp_path / "images" / article_id[:3]).mkdir(parents=True, exist_ok=True)
    good, corrupt, sixteen_bit = (tmp_path / "images" / a[:3] / f"{a}.jpg" for a in ids)
    shutil.copy(demo_dir / "images" / ids[0][:3] / f"{ids[0]}.jpg", good)
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("I;16", (40, 60), 30_000).save(sixteen_bit, format="PNG")  # a .jpg that holds a 16-bit PNG
    at = AppTest.from_function(grid_of_every_article, args=(str(tmp_path),), default_timeout=TIMEOUT).run()
    no_errors(at)
    names = [tile_text(at.get_by_key(f"tile_all_{i}"))[0] for i in range(3)]
    alts = [tile_alt(at.get_by_key(f"tile_all_{i}")) for i in range(3)]
    assert alts == [names[0], f"{names[1]}: no photo", names[2]]  # the 16-bit photo is shown, as RGB


def test_markup_in_a_catalogue_name_is_text_in_its_tile(demo_dir, tmp_path):
    """A tile's element allows our own <img>; a name's HTML and markdown stay text (alt HTML-escaped)."""
    import pandas as pd

    articles = pd.read_csv(demo_dir / "articles.csv", dtype=str).head(2)
    hostile = '"><img src=x onerror=alert(1)><script>alert(1)</script> **bold** :red[x]'
    articles.loc[0, "prod_name"] = hostile
    articles.to_csv(tmp_path / "articles.csv", index=False)
    at = AppTest.from_function(grid_of_every_article, args=(str(tmp_path),), default_timeout=TIMEOUT).run()
    no_errors(at)
    tile = at.get_by_key("tile_all_0")
    assert tile_alt(tile) == f"{hostile}: no photo" and tile_text(tile)[0] == hostile
    picture, text = tile.markdown[0].value.split("\n\n", 1)
    name = text.split("  \n")[0].removeprefix("**").removesuffix("**")
    assert picture.count("<") == 1 and re.search(r"(?<!\\)[<>*\[]", name) is None  # each one escaped


def test_an_engine_bug_shows_an_id_and_no_traceback_or_path(app, monkeypatch, caplog):
    from recommender.content import ContentSearch

    def broken(self, **query):
        raise RuntimeError("index at /srv/lookbook/secret/index.faiss fell over")

    monkeypatch.setattr(ContentSearch, "search", broken)
    search(app, "red jacket")
    assert not app.exception
    message = app.error[0].value
    error_id = re.search(r"error id ([0-9a-f]{8})", message).group(1)
    shown = " ".join(e.value for e in [*app.error, *app.markdown, *app.caption, *app.code])
    assert "Traceback" not in shown and "/srv/lookbook" not in shown and "RuntimeError" not in shown
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info and "/srv/lookbook/secret" in logged[0].getMessage()


def test_markup_in_typed_text_is_shown_literally(app):
    typed = ":red[big] :material/home: **bold** <b>x</b> $x$"
    search(app, typed)
    query_line = next(c.value for c in app.caption if "big" in c.value)
    assert plain(query_line) == f"“{typed}”"
    # Every markdown and directive character is escaped, so Streamlit renders none of them.
    assert ":red[" not in query_line and ":material/" not in query_line and "**" not in query_line


def test_photos_beyond_the_cap_are_left_out_with_a_message(app, demo_engine):
    from recommender.images import MAX_PHOTOS_PER_QUERY as MAX_PHOTOS

    rows = demo_engine.catalog.articles[demo_engine.catalog.articles["has_image"]].iloc[: MAX_PHOTOS + 1]
    for row in rows.itertuples():
        photo = demo_engine.catalog.image_path(row.article_id).read_bytes()
        app.file_uploader[0].upload(f"{row.article_id}.jpg", photo, "image/jpeg")
    app.run()
    assert not app.exception and not app.error
    assert app.warning[0].value.startswith(f"{MAX_PHOTOS + 1} photos: a query uses up to {MAX_PHOTOS}")
    assert f"{MAX_PHOTOS} photos" in " ".join(c.value for c in app.caption)
    assert len(app.session_state["_decoded_photos"]) == MAX_PHOTOS + 1  # decoded once, small copies only
    assert all(max(p.image.size) <= 512 for p in app.session_state["_decoded_photos"].values())


# --- shareable views -----------------------------------------------------------------------------


def test_a_shared_address_reopens_the_same_results(demo_settings, demo_engine, monkeypatch):
    for name, value in app_env(demo_settings).items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    liked = demo_engine.catalog.articles["article_id"].iloc[3]
    at.query_params.update({"query_text": "jacket", "filter_colour_group_name": "Red", "k": "8", "like": liked})
    at.run()
    no_errors(at)
    expected = demo_engine.search.search(text="jacket", like=[liked], filters={"colour_group_name": ["Red"]}, k=8)
    assert [t.name for t in tiles(at, "results")] == list(expected["prod_name"])
    assert [t.name for t in tiles(at, "like")] == [demo_engine.catalog.articles["prod_name"].iloc[3]]


def test_a_bad_address_gets_a_message(demo_settings, monkeypatch):
    for name, value in app_env(demo_settings).items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    at.query_params.update({"query_text": "jacket", "filter_colour_group_name": "Ultraviolet", "like": "12x",
                            "k": "abc"})
    at.run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert warnings[0] == "This link's k='abc' is not a value this page can show, so the default is used."
    assert "'Ultraviolet', which this catalogue does not have" in warnings[1]
    assert "'12x' is not an article id" in at.error[0].value
    assert len(tiles(at, "results")) == 12  # the rest of the address still works


def test_a_shared_customer_address_opens_that_customer(demo_settings, demo_engine, monkeypatch):
    for name, value in app_env(demo_settings).items():
        monkeypatch.setenv(name, value)
    example = demo_engine.collab.example_customers(1)[0]
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    at.query_params.update({"customer_id": example, "tab": "Purchase history"})
    at.switch_page("pages/customers.py").run()
    no_errors(at)
    history = demo_engine.collab.history(example)
    assert tiles(at, "history")[0].name == history["prod_name"].iloc[0]


# --- insights page -------------------------------------------------------------------------------


def test_insights_page_shows_the_builds_backtest_and_its_choice(app, demo_engine, monkeypatch):
    at = app.switch_page("pages/insights.py").run()
    no_errors(at)
    coverage = {m.label: m.value for m in at.metric}
    assert coverage["Different articles recommended"] != "0"
    chosen = demo_engine.collab.method
    assert demo_engine.collab.method_chosen  # the shared demo build backtests
    assert any(plain(m.value).startswith(f"Recommendations use the **{chosen}**, chosen by the build's backtest "
                                         f"over {DEMO_BACKTEST_WEEKS} weeks") for m in at.markdown)
    summary, blocks = at.dataframe[0].value, at.dataframe[1].value
    assert set(summary["method"]) == set(METHODS) and summary.loc[summary["shipped"], "method"].tolist() == [chosen]
    assert {"95% low", "95% high", "shipped − row, 95% low"} <= set(summary.columns)
    assert "leader" in blocks.columns and set(blocks["leader"]) <= set(METHODS)
    # Starting a backtest from the page needs the operator's permission, then holds the build lock.
    assert not [b for b in at.button if b.label == "Run the backtest now"]
    assert any("LOOKBOOK_ALLOW_BUILD=1" in c.value for c in at.caption)
    monkeypatch.setenv("LOOKBOOK_ALLOW_BUILD", "1")
    at.run()
    next(b for b in at.button if b.label == "Run the backtest now").click().run()
    no_errors(at)
    assert at.status[0].label == f"backtest: current ({chosen} chosen)"  # nothing changed since the build

    open_tab(at, "insights_tab", "Search index and model")
    facts = {m.label: m.value for m in at.metric}
    assert facts["Kind"] == "exact" and facts["Articles"] == f"{len(demo_engine.catalog.articles):,}"
    assert "**lookbook-tiny** from model.pt" in [plain(m.value) for m in at.markdown]
    pairs = int(demo_engine.catalog.articles["has_image"].sum())
    assert any(c.value.startswith(f"Trained here on {pairs:,} image–caption pairs") for c in at.caption)

    open_tab(at, "insights_tab", "Dataset")
    facts = {m.label: m.value for m in at.metric}
    articles = demo_engine.catalog.articles
    assert facts["Articles"] == f"{len(articles):,}"
    assert facts["With a photo"] == f"{int(articles['has_image'].sum()):,}"
    assert facts["Purchases"] == f"{len(demo_engine.catalog.transactions):,}"


def test_the_app_switches_to_a_newer_build_and_sessions_keep_working(demo_settings, tmp_path, monkeypatch):
    # A dataset changed and rebuilt beside the running app: the next page run serves the new build (its
    # id in the sidebar, the new article findable) in the same session; the old engine's versions stay
    # on disk for it until released.
    import shutil

    import pandas as pd

    from recommender.config import Settings
    from recommender.pipeline import build

    data, artifacts = tmp_path / "shop", tmp_path / "artifacts"
    shutil.copytree(demo_settings.data_dir, data)
    shutil.copytree(demo_settings.artifacts_dir, artifacts)
    settings = Settings(data_dir=data, artifacts_dir=artifacts, train_epochs=demo_settings.train_epochs)
    for name, value in app_env(settings).items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT).run()
    no_errors(at)
    before = " ".join(c.value for c in at.sidebar.caption)
    assert "Build " in before
    articles = pd.read_csv(data / "articles.csv", dtype=str, keep_default_na=False)
    articles.loc[5, "prod_name"] = "Quokka Zebraprint Tee"
    articles.to_csv(data / "articles.csv", index=False)
    build(settings, log=lambda m: None)
    search(at, "quokka")
    no_errors(at)
    after = " ".join(c.value for c in at.sidebar.caption)
    assert "Build " in after and after != before
    assert tiles(at, "results")[0].name == "Quokka Zebraprint Tee"
