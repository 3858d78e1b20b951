"""The embedded demo dataset: exact H&M format, pictures that match the metadata, planted purchase signal."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recommender import demo
from recommender.errors import DataError, InputError
from tests.conftest import DEMO_TEST_SIZE

KAGGLE_HEADERS = {
    "articles.csv": "article_id,product_code,prod_name,product_type_no,product_type_name,product_group_name,"
    "graphical_appearance_no,graphical_appearance_name,colour_group_code,colour_group_name,"
    "perceived_colour_value_id,perceived_colour_value_name,perceived_colour_master_id,"
    "perceived_colour_master_name,department_no,department_name,index_code,index_name,index_group_no,"
    "index_group_name,section_no,section_name,garment_group_no,garment_group_name,detail_desc",
    "customers.csv": "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code",
    "transactions_train.csv": "t_dat,customer_id,article_id,price,sales_channel_id",
}
SMALL = {"n_articles": 60, "n_customers": 30}


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False)


def image_file(folder: Path, article_id: str) -> Path:
    return folder / "images" / article_id[:3] / f"{article_id}.jpg"


def all_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def articles(demo_dir) -> pd.DataFrame:
    return read(demo_dir, "articles.csv")


@pytest.fixture(scope="module")
def sales(demo_dir, articles) -> pd.DataFrame:
    """transactions_train.csv joined with the articles' metadata."""
    tx = read(demo_dir, "transactions_train.csv")
    return tx.merge(articles, on="article_id", how="left", validate="many_to_one")


# --- determinism and publishing -----------------------------------------------------------------------


def test_same_options_and_seed_give_byte_identical_files(demo_dir, tmp_path):
    again = demo.generate_demo(tmp_path / "again", **DEMO_TEST_SIZE)
    first, second = all_files(demo_dir), all_files(again)
    assert sorted(first) == sorted(second)
    assert sum(name.endswith(".jpg") for name in first) > 0.9 * DEMO_TEST_SIZE["n_articles"]
    assert [name for name in first if first[name] != second[name]] == []


def test_another_seed_gives_another_dataset(tmp_path):
    one = demo.generate_demo(tmp_path / "one", **SMALL, seed=1)
    two = demo.generate_demo(tmp_path / "two", **SMALL, seed=2)
    for name in KAGGLE_HEADERS:
        assert (one / name).read_bytes() != (two / name).read_bytes(), name
    assert not set(read(one, "customers.csv").customer_id) & set(read(two, "customers.csv").customer_id)


def test_regenerating_is_a_no_op_and_other_options_replace_the_dataset(tmp_path):
    out = tmp_path / "demo"
    demo.generate_demo(out, **SMALL)
    stamp = (out / "articles.csv").stat().st_mtime_ns
    demo.generate_demo(out, **SMALL)
    assert (out / "articles.csv").stat().st_mtime_ns == stamp

    demo.generate_demo(out, n_articles=60, n_customers=40)
    assert len(read(out, "customers.csv")) == 40
    assert json.loads((out / "demo.json").read_text())["n_customers"] == 40
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temporary or old folders left behind


def test_refuses_to_overwrite_a_folder_that_is_not_a_demo(tmp_path):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "articles.csv").write_text("article_id\n0108775015\n")
    with pytest.raises(DataError, match=r"mine already exists and is not a generated demo dataset"):
        demo.generate_demo(precious, **SMALL)
    assert (precious / "articles.csv").read_text() == "article_id\n0108775015\n"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_articles": 5}, r"n_articles must be between 20 and 1,000,000"),
        ({"n_customers": 0}, r"n_customers must be a positive whole number, got 0"),
        ({"seed": -1}, r"seed must be a whole number >= 0, got -1"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(tmp_path, options, message):
    with pytest.raises(InputError, match=message):
        demo.generate_demo(tmp_path / "demo", **{**SMALL, **options})
    assert not (tmp_path / "demo").exists()


# --- format -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KAGGLE_HEADERS))
def test_files_have_the_kaggle_header(demo_dir, name):
    with open(demo_dir / name) as f:
        assert f.readline().rstrip("\n") == KAGGLE_HEADERS[name]


def test_articles_follow_the_kaggle_conventions(articles):
    assert len(articles) == DEMO_TEST_SIZE["n_articles"]
    assert articles.article_id.str.fullmatch(r"\d{10}").all()
    assert articles.article_id.is_unique and articles.article_id.is_monotonic_increasing
    assert (articles.article_id.str[:7] == articles.product_code).all()
    assert articles.colour_group_code.str.fullmatch(r"\d{2}").all()
    assert articles.product_type_name.nunique() >= 10
    assert articles.colour_group_name.nunique() >= 12
    assert {"Solid", "Stripe", "Dot", "Check"} <= set(articles.graphical_appearance_name)
    assert articles.index_group_name.nunique() == 5
    # Colour variants of one product: same name, type and description, distinct colours.
    products = articles.groupby("product_code")
    assert (products[["prod_name", "product_type_name", "detail_desc"]].nunique() == 1).all().all()
    assert (products.colour_group_name.nunique() == products.size()).all()
    assert (products.size() > 1).mean() > 0.4
    assert 1 <= (articles.detail_desc == "").sum() < 0.05 * len(articles)


def test_names_and_descriptions_agree_with_the_pattern(articles):
    adjectives = {"Solid": None, "Stripe": "striped", "Dot": "dotted", "Check": "checked"}
    for pattern, adjective in adjectives.items():
        rows = articles[articles.graphical_appearance_name == pattern]
        words = rows.prod_name.str.lower() + " " + rows.detail_desc.str.lower()
        for other in {a for a in adjectives.values() if a and a != adjective}:
            assert not words.str.contains(other).any(), (pattern, other)
        if adjective:
            assert rows.prod_name.str.lower().str.contains(adjective).all(), pattern


def test_vocabulary_and_codes_are_real_hm_values(articles, hm_sample_dir):
    real = read(hm_sample_dir, "articles.csv")
    groups_of_columns = [
        ["product_type_no", "product_type_name", "product_group_name"],
        ["graphical_appearance_no", "graphical_appearance_name"],
        ["colour_group_code", "colour_group_name", "perceived_colour_value_id", "perceived_colour_value_name",
         "perceived_colour_master_id", "perceived_colour_master_name"],
        ["index_code", "index_name", "index_group_no", "index_group_name"],
        ["department_no", "department_name", "section_no", "section_name", "garment_group_no",
         "garment_group_name"],
        ["product_type_name", "index_code"],
    ]  # fmt: skip
    for columns in groups_of_columns:
        used = set(articles[columns].itertuples(index=False, name=None))
        known = set(real[columns].itertuples(index=False, name=None))
        assert used <= known, (columns, sorted(used - known))


def test_customers_follow_the_kaggle_conventions(demo_dir):
    customers = read(demo_dir, "customers.csv")
    assert len(customers) == DEMO_TEST_SIZE["n_customers"]
    assert customers.customer_id.str.fullmatch(r"[0-9a-f]{64}").all()
    assert customers.customer_id.is_unique and customers.customer_id.is_monotonic_increasing
    assert customers.postal_code.str.fullmatch(r"[0-9a-f]{64}").all()
    assert customers.postal_code.nunique() < len(customers)  # neighbours share a postal code
    assert set(customers.FN) <= {"", "1.0"} and set(customers.Active) <= {"", "1.0"}
    assert set(customers.club_member_status) <= {"ACTIVE", "PRE-CREATE", "LEFT CLUB", ""}
    assert set(customers.fashion_news_frequency) <= {"NONE", "Regularly", "Monthly", ""}
    ages = pd.to_numeric(customers.age[customers.age != ""])
    assert ages.between(16, 90).all() and customers.age[customers.age != ""].str.fullmatch(r"\d+").all()


def test_transactions_follow_the_kaggle_conventions(demo_dir, articles):
    tx = read(demo_dir, "transactions_train.csv")
    assert len(tx) == demo.TRANSACTIONS_PER_CUSTOMER * DEMO_TEST_SIZE["n_customers"]
    assert tx.t_dat.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all() and tx.t_dat.is_monotonic_increasing
    assert tx.t_dat.min() >= "2018-09-20" and tx.t_dat.max() <= "2020-09-22"
    assert tx.t_dat.str[:7].nunique() == 25  # every month of the two years
    assert set(tx.customer_id) <= set(read(demo_dir, "customers.csv").customer_id)
    assert set(tx.article_id) <= set(articles.article_id)
    assert tx.price.str.fullmatch(r"0\.\d{1,16}").all()
    assert tx.price.astype(float).between(0.003, 0.2).all()
    assert set(tx.sales_channel_id) == {"1", "2"}


def test_prices_are_spelled_like_kaggle():
    assert demo.price_text(2499) == "0.0423559322033898"  # 24.99 / 590, truncated as in the Kaggle file
    assert demo.price_text(1999) == "0.0338813559322033"
    assert demo.price_text(2950) == "0.05"


# --- pictures ---------------------------------------------------------------------------------------


def test_images_exist_except_for_a_few_whole_products(demo_dir, articles):
    has_image = articles.article_id.map(lambda a: image_file(demo_dir, a).is_file())
    assert 0.01 <= 1 - has_image.mean() <= 0.06
    assert (has_image.groupby(articles.product_code).nunique() == 1).all()  # all variants or none
    images = sorted((demo_dir / "images").rglob("*"))
    assert {p.stem for p in images if p.is_file()} == set(articles.article_id[has_image])
    with Image.open(image_file(demo_dir, articles.article_id[has_image].iloc[0])) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", demo.IMAGE_SIZE)


def _foreground(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mask of garment pixels, the image) — garment = far from the background seen in the corners."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    background = np.median(np.concatenate([pixels[:4, :4].reshape(-1, 3), pixels[-4:, -4:].reshape(-1, 3)]), 0)
    return np.abs(pixels - background).max(axis=2) > 40, pixels


@pytest.fixture(scope="module")
def pictures(demo_dir, articles) -> pd.DataFrame:
    """Per article with an image (white ones are too close to the background to segment): shape and colour."""
    rows = articles[articles.article_id.map(lambda a: image_file(demo_dir, a).is_file())]
    rows = rows[rows.colour_group_name != "White"].copy()
    masks, colours = [], []
    for article_id in rows.article_id:
        mask, pixels = _foreground(image_file(demo_dir, article_id))
        masks.append(np.asarray(Image.fromarray(mask).resize((24, 36), Image.BILINEAR), dtype=float))
        colours.append(np.median(pixels[mask], axis=0))
    rows["mask"], rows["colour"] = masks, colours
    return rows


def _nearest_centroid_accuracy(pictures: pd.DataFrame, feature: str, label: str) -> float:
    """Centroids from every other product of each label, predictions for the rest (variants never straddle)."""
    product_rank = pictures.groupby(label).product_code.rank(method="dense").astype(int)
    train = product_rank % 2 == 0
    centroids = {k: np.mean(np.stack(g[feature].to_list()), axis=0) for k, g in pictures[train].groupby(label)}
    names = list(centroids)
    stacked = np.stack([centroids[k] for k in names]).reshape(len(names), -1)
    test = pictures[~train]
    features = np.stack(test[feature].to_list()).reshape(len(test), -1)
    distances = ((features[:, None, :] - stacked[None]) ** 2).sum(axis=2)
    predicted = np.array(names)[distances.argmin(axis=1)]
    return float((predicted == test[label].to_numpy()).mean())


def test_silhouettes_tell_the_product_types_apart(pictures):
    assert pictures.product_type_name.nunique() >= 10
    assert _nearest_centroid_accuracy(pictures, "mask", "product_type_name") > 0.85  # chance: < 0.1
    mean_mask = pictures.groupby("product_type_name")["mask"].apply(lambda m: np.mean(np.stack(m.to_list()), 0))
    assert np.abs(mean_mask["Dress"] - mean_mask["Trousers"]).mean() > 0.1


def test_garment_colour_is_the_named_colour(pictures):
    solid = pictures[pictures.graphical_appearance_name == "Solid"]
    assert _nearest_centroid_accuracy(solid, "colour", "colour_group_name") > 0.9
    red = np.stack(solid[solid.colour_group_name == "Red"].colour.to_list())
    assert len(red) and ((red[:, 0] > 150) & (red[:, 1] < 80) & (red[:, 2] < 80)).all()


def test_patterns_are_drawn(pictures, demo_dir):
    """Patterned garments show two tones; solid ones one."""
    def second_tone_share(article_id: str) -> float:
        mask, pixels = _foreground(image_file(demo_dir, article_id))
        inner = pixels[mask]
        distance = np.abs(inner - np.median(inner, axis=0)).max(axis=1)
        return float((distance > 40).mean())

    share = pictures.set_index("article_id").graphical_appearance_name.groupby(level=0).first()
    tone = pd.Series({a: second_tone_share(a) for a in share.index})
    by_pattern = tone.groupby(share).median()
    assert by_pattern["Solid"] < 0.15
    assert (by_pattern[["Stripe", "Dot", "Check"]] > by_pattern["Solid"] + 0.15).all()


def test_render_article_draws_query_pictures_and_names_unknown_values():
    red_dress, red_trousers = demo.render_article("Dress", "Red"), demo.render_article("Trousers", "Red")
    assert red_dress.size == demo.IMAGE_SIZE
    masks = []
    for picture in (red_dress, red_trousers):
        pixels = np.asarray(picture, dtype=np.int16)
        mask = np.abs(pixels - pixels[0, 0]).max(axis=2) > 40
        r, g, b = np.median(pixels[mask], axis=0)
        assert r > 150 and g < 80 and b < 80
        masks.append(mask)
    assert (masks[0] != masks[1]).mean() > 0.1
    with pytest.raises(InputError, match=r"the demo has no colour 'Teal'; it knows Beige, Black"):
        demo.render_article("Dress", "Teal")
    with pytest.raises(InputError, match=r"no product type 'Kilt'"):
        demo.render_article("Kilt", "Red")


# --- purchase signal ----------------------------------------------------------------------------------


def _top_hit_rate(sales: pd.DataFrame, tastes: pd.DataFrame, column: str, taste: str) -> float:
    buyers = sales.groupby("customer_id").filter(lambda g: len(g) >= 10)
    top = buyers.groupby("customer_id")[column].agg(lambda s: s.value_counts().index[0])
    planted = tastes.set_index("customer_id")[taste]
    return float(np.mean([value in np.atleast_1d(planted[c]) for c, value in top.items()]))


def test_planted_tastes_are_recoverable_from_the_transactions(sales):
    tastes = demo.planted_tastes(DEMO_TEST_SIZE["n_customers"], DEMO_TEST_SIZE["seed"])
    assert set(sales.customer_id) <= set(tastes.customer_id)
    shuffled = tastes.assign(customer_id=np.roll(tastes.customer_id.to_numpy(), 1))
    for column, taste, at_least in [("product_type_name", "product_types", 0.9),
                                    ("colour_group_name", "colours", 0.5),
                                    ("index_group_name", "index_group_name", 0.5)]:  # fmt: skip
        rate = _top_hit_rate(sales, tastes, column, taste)
        chance = _top_hit_rate(sales, shuffled, column, taste)
        assert rate >= at_least and rate > chance + 0.25, (column, rate, chance)


def test_sales_are_seasonal(sales):
    month = sales.t_dat.str[5:7].astype(int)
    summer, winter = sales[month.isin([6, 7, 8])], sales[month.isin([12, 1, 2])]

    def share(frame: pd.DataFrame, product_type: str) -> float:
        return float((frame.product_type_name == product_type).mean())

    assert share(summer, "Shorts") > 2 * share(winter, "Shorts")
    assert share(winter, "Jacket") > 2 * share(summer, "Jacket")


def test_articles_come_and_go_and_some_sell_far_more(sales):
    first, last = sales.groupby("article_id").t_dat.min(), sales.groupby("article_id").t_dat.max()
    assert (last < "2020-03-01").mean() > 0.1  # retired before the end
    assert (first > "2019-09-20").mean() > 0.1  # introduced during the second year
    counts = sales.article_id.value_counts()
    assert counts.head(len(counts) // 10).sum() > 0.25 * counts.sum()
    repeat = sales.duplicated(["customer_id", "article_id"]).mean()
    assert 0.05 < repeat < 0.8


# --- H&M-scale transactions-only mode ----------------------------------------------------------------


def test_transactions_only_mode_writes_exact_row_counts(tmp_path, monkeypatch):
    sizes = {"n_articles": 300, "n_customers": 150, "n_transactions": 4_000, "seed": 3}
    monkeypatch.setattr(demo.simulation, "ROWS_PER_BLOCK", 1_000)  # several generation blocks ...
    monkeypatch.setattr(demo.writing, "ROWS_PER_WRITE", 700)  # ... and write chunks
    out = demo.generate_transactions_only(tmp_path / "hm", **sizes)
    assert sorted(p.name for p in out.iterdir()) == ["articles.csv", "customers.csv", "demo.json",
                                                     "transactions_train.csv"]  # fmt: skip
    articles, customers, tx = (read(out, n) for n in ("articles.csv", "customers.csv", "transactions_train.csv"))
    assert (len(articles), len(customers), len(tx)) == (300, 150, 4_000)
    for name in KAGGLE_HEADERS:
        assert (out / name).read_text().split("\n", 1)[0] == KAGGLE_HEADERS[name]
    assert tx.t_dat.is_monotonic_increasing and tx.price.str.fullmatch(r"0\.\d{1,16}").all()
    assert set(tx.article_id) <= set(articles.article_id) and set(tx.customer_id) <= set(customers.customer_id)

    monkeypatch.setattr(demo.writing, "ROWS_PER_WRITE", 1_000_000)
    whole = demo.generate_transactions_only(tmp_path / "whole", **sizes)
    assert (whole / "transactions_train.csv").read_bytes() == (out / "transactions_train.csv").read_bytes()


# --- loading ------------------------------------------------------------------------------------------


def test_the_catalogue_loader_reads_the_demo_and_round_trips_ids(demo_catalog, demo_dir, articles):
    catalog = demo_catalog
    assert catalog.articles.article_id.tolist() == articles.article_id.tolist()
    expected_images = articles.article_id.map(lambda a: image_file(demo_dir, a).is_file())
    assert catalog.articles.has_image.tolist() == expected_images.tolist()
    article_id = articles.article_id[expected_images].iloc[0]
    assert catalog.image_path(article_id) == image_file(demo_dir, article_id)
    assert catalog.image_path(articles.article_id[~expected_images].iloc[0]) is None

    tx = read(demo_dir, "transactions_train.csv")
    loaded = catalog.transactions
    pairs = zip(catalog.customer_ids[loaded.customer], catalog.articles.article_id.to_numpy()[loaded.article])
    assert Counter(pairs) == Counter(zip(tx.customer_id, tx.article_id))
    customer_id = tx.customer_id.iloc[0]
    assert catalog.customer_ids[catalog.customer_code(customer_id)] == customer_id
    assert re.fullmatch(r"\d{10}", catalog.articles.article_id.iloc[-1])
