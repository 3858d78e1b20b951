"""The H&M data layer: real sample counts, id round-trips, every validation message, the parquet cache."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.catalog import ARTICLE_COLUMNS, load_catalog, normalize_article_id
from recommender.errors import DataError, InputError

CUSTOMER_A = "a" * 64
CUSTOMER_B = "0123456789abcdef" * 4


def article_line(article_id: str, type_name="Trousers", colour="Black") -> str:
    values = {c: "x" for c in ARTICLE_COLUMNS}
    values.update(article_id=article_id, product_code=article_id[:7], product_type_name=type_name,
                  colour_group_name=colour, colour_group_code="09", detail_desc="Soft trousers.")
    return ",".join(values[c] for c in ARTICLE_COLUMNS)


def write_dataset(root: Path, transactions: list[str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    articles = [",".join(ARTICLE_COLUMNS), article_line("0108775015"), article_line("0108775044", colour="White"),
                article_line("0200000001", type_name="Dress")]
    (root / "articles.csv").write_text("\n".join(articles) + "\n")
    (root / "customers.csv").write_text(
        "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code\n"
        f"{CUSTOMER_A},,,ACTIVE,NONE,21,{'b' * 64}\n{CUSTOMER_B},1,1,ACTIVE,Regularly,40,{'c' * 64}\n"
    )
    rows = transactions if transactions is not None else [
        f"2020-01-01,{CUSTOMER_A},0108775015,0.0209,2",
        f"2020-01-02,{CUSTOMER_B},0108775044,0.0423,1",
        f"2020-01-03,{CUSTOMER_A},0200000001,0.0500,1",
    ]
    (root / "transactions_train.csv").write_text(
        "t_dat,customer_id,article_id,price,sales_channel_id\n" + "\n".join(rows) + "\n"
    )
    image = root / "images" / "010" / "0108775015.jpg"
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"\xff\xd8 not decoded by the catalogue")
    return root


def test_hm_sample_counts_and_id_round_trip(hm_catalog):
    cat = hm_catalog
    assert len(cat.articles) == 24_717
    assert len(cat.transactions) == 30_542
    assert cat.transactions["customer"].nunique() == 1_337
    assert int(cat.articles["has_image"].sum()) == 14_918
    assert len(cat.customers) == 1_364
    assert cat.articles["article_id"].str.fullmatch(r"\d{10}").all()
    assert cat.articles["article_id"].iat[0] == "0108775015"
    assert cat.articles["product_code"].iat[0] == "0108775"
    # transaction codes map back to the 10-digit strings and 64-hex ids of the CSV
    first = cat.transactions.iloc[0]
    assert cat.articles["article_id"].iat[first["article"]] == "0493995001"
    assert cat.customer_ids[first["customer"]].startswith("1a674938eb6b")
    assert cat.article_row("493995001") == first["article"]  # leading zero optional on input
    assert cat.image_path("0108775015") is None or cat.image_path("0108775015").is_file()
    with_image = cat.articles.loc[cat.articles["has_image"], "article_id"].iat[0]
    assert cat.image_path(with_image).is_file()
    assert cat.transactions["t_dat"].is_monotonic_increasing


def test_parquet_cache_reused_and_refreshed(tmp_path):
    root = write_dataset(tmp_path / "shop")
    cache = tmp_path / "artifacts"
    first = load_catalog(root, cache_dir=cache)
    assert (cache / "catalog.json").is_file()
    (root / "articles.csv").write_text("this is not read when the cache is current")
    os.utime(root / "articles.csv", ns=(0, 0))  # but a change of mtime/size invalidates it
    with pytest.raises(DataError, match="articles.csv is missing column"):
        load_catalog(root, cache_dir=cache)
    write_dataset(root)
    again = load_catalog(root, cache_dir=cache)
    again2 = load_catalog(root, cache_dir=cache)
    assert again2.articles.equals(again.articles)
    assert again2.transactions.equals(again.transactions)
    assert list(first.articles["article_id"]) == list(again2.articles["article_id"])


def test_codes_and_lookups(tmp_path):
    cat = load_catalog(write_dataset(tmp_path / "shop"))
    assert list(cat.transactions["article"]) == [0, 1, 2]
    assert cat.customer_ids[cat.transactions["customer"].iat[0]] == CUSTOMER_A
    assert cat.image_path("0108775015").name == "0108775015.jpg"
    assert cat.image_path("0200000001") is None  # no image file: None, not an error
    with pytest.raises(InputError, match="article 0999999999 is not in the catalogue"):
        cat.article_row("0999999999")
    with pytest.raises(InputError, match="'abc' is not an article id"):
        normalize_article_id("abc")
    with pytest.raises(InputError, match="'xyz' is not a customer id"):
        cat.customer_code("xyz")
    with pytest.raises(InputError, match="is not in this dataset"):
        cat.customer_code("f" * 64)
    assert cat.customer_code(CUSTOMER_B.upper()) == cat.customer_code(CUSTOMER_B)
    assert cat.customer_codes([f" {CUSTOMER_B.upper()}", "f" * 64, CUSTOMER_A]).tolist() == [
        cat.customer_code(CUSTOMER_B), -1, cat.customer_code(CUSTOMER_A)]


def test_customer_codes_are_the_same_from_the_csvs_and_from_the_cache(tmp_path):
    # The cache hands the ids over as Arrow (made into codes without Python strings); the CSVs as strings.
    root, cache = write_dataset(tmp_path / "shop"), tmp_path / "artifacts"
    from_csv = load_catalog(root, cache_dir=cache)
    from_cache = load_catalog(root, cache_dir=cache)
    assert isinstance(from_cache.customer_ids, np.ndarray) and list(from_cache.customer_ids) == list(from_csv.customer_ids)
    for catalog in (from_csv, from_cache):
        codes = [catalog.customer_code(c) for c in (CUSTOMER_A, CUSTOMER_B)]
        assert [catalog.customer_ids[c] for c in codes] == [CUSTOMER_A, CUSTOMER_B]
        assert catalog.customer_keys[codes[1]] == CUSTOMER_B.encode()
        assert catalog.customer_codes(["not an id", "F" * 64, CUSTOMER_B]).tolist() == [-1, -1, codes[1]]


def test_the_customer_index_finds_each_key_and_only_those():
    from recommender.customer_index import CustomerIndex, fixed_width_keys

    ids = ["c" * 64, "a" * 64, "b" * 64]
    index = CustomerIndex(fixed_width_keys(np.array(ids, dtype=object)))
    wanted = fixed_width_keys(pd.Series(["b" * 64, "d" * 64, "c" * 64, "0" * 64]))
    assert index.codes(wanted).tolist() == [2, -1, 0, -1]
    assert CustomerIndex(fixed_width_keys(np.array([], dtype=object))).codes(wanted).tolist() == [-1] * 4


def test_search_only_catalogue_needs_only_articles(tmp_path):
    root = write_dataset(tmp_path / "shop")
    (root / "transactions_train.csv").unlink()
    (root / "customers.csv").unlink()
    cat = load_catalog(root)
    assert cat.transactions is None and cat.customers is None and len(cat.articles) == 3


@pytest.mark.parametrize(
    "rows, message",
    [
        ([f"2020-01-01,{CUSTOMER_A},0108775015,0.02,2", f"2020-13-45,{CUSTOMER_A},0108775015,0.02,2"],
         r"transactions_train.csv, line 3, column t_dat: '2020-13-45' is not a date"),
        ([f"2020-01-01,{CUSTOMER_A},0108775015,cheap,2"],
         r"line 2, column price: 'cheap' is not a number"),
        ([f"2020-01-01,{CUSTOMER_A},0108775015,0.02,online"],
         r"line 2, column sales_channel_id: 'online' is not a small integer"),
        ([f"2020-01-01,{CUSTOMER_A},0108775015,0.02,2", f"2020-01-02,{CUSTOMER_A},0555555555,0.02,2"],
         r"line 3, column article_id: article 0555555555 is not in articles.csv"),
        ([f"2020-01-01,{CUSTOMER_A},01087-75015,0.02,2"],
         r"line 2, column article_id: '01087-75015' is not an article id"),
        ([f"2020-01-01,{CUSTOMER_A},0108775015,0.02,2", "2020-01-01,not-a-customer,0108775015,0.02,2"],
         r"line 3, column customer_id: 'not-a-customer' is not a customer id"),
        ([f"2020-01-01,{CUSTOMER_A},0108775015,0.02,2", f"2020-01-01,{CUSTOMER_A},0108775015"],
         r"line 3: expected 5 columns, found 3"),
    ],
)
def test_malformed_transactions_name_file_line_and_column(tmp_path, rows, message):
    root = write_dataset(tmp_path / "shop", transactions=rows)
    with pytest.raises(DataError, match=message):
        load_catalog(root)


def test_missing_files_and_columns(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_catalog(tmp_path / "nowhere")
    root = write_dataset(tmp_path / "shop")
    (root / "articles.csv").unlink()
    with pytest.raises(DataError, match="articles.csv is missing"):
        load_catalog(root)
    root = write_dataset(tmp_path / "shop2")
    (root / "transactions_train.csv").write_text("t_dat,customer_id,price,sales_channel_id\n")
    with pytest.raises(DataError, match=r"transactions_train.csv is missing column\(s\) article_id"):
        load_catalog(root)
    root = write_dataset(tmp_path / "shop3")
    (root / "transactions_train.csv").write_text("")
    with pytest.raises(DataError, match="transactions_train.csv is empty"):
        load_catalog(root)


def test_malformed_and_duplicate_articles(tmp_path):
    root = write_dataset(tmp_path / "shop")
    lines = (root / "articles.csv").read_text().splitlines()
    (root / "articles.csv").write_text("\n".join(lines + [lines[2]]) + "\n")
    with pytest.raises(DataError, match=r"articles.csv, line 5, column article_id: article 0108775044 appears twice"):
        load_catalog(root)
    (root / "articles.csv").write_text("\n".join(lines[:2] + ["0108775099,broken row"]) + "\n")
    with pytest.raises(DataError, match=r"articles.csv, line 3: expected 25 columns, found 2"):
        load_catalog(root)


def test_header_only_transactions_is_an_empty_history(tmp_path):
    root = write_dataset(tmp_path / "shop", transactions=[])
    cat = load_catalog(root)
    assert len(cat.transactions) == 0
    assert cat.transactions["customer"].dtype == np.int32
    # customers.csv ids still resolve (no purchases is not "unknown")
    assert cat.customer_code(CUSTOMER_B) >= 0
