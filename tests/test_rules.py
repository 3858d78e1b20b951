"""Merchandising rules on a hand-made catalogue with exact expected orders, the file's validation (one
message naming the rule and its line), reloads, and hostile files."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.catalog import Catalog
from recommender.errors import DataError
from recommender.rules import MAX_RULES, Rules, read_rules

#            type        colour  index group
ARTICLES = [("Dress", "Black", "Ladieswear"),   # 0
            ("Dress", "Red", "Ladieswear"),     # 1
            ("Top", "Black", "Ladieswear"),     # 2
            ("Trousers", "Grey", "Menswear"),   # 3
            ("Shirt", "White", "Menswear"),     # 4
            ("Skirt", "Black", "Divided"),      # 5
            ("Hoodie", "Grey", "Divided"),      # 6
            ("Dress", "Blue", "Divided")]       # 7  fmt: skip
TODAY = dt.date(2026, 12, 5)
LAST = np.datetime64("2020-09-20", "ns")
# (article, days before the data's last day, price): 7 first sold 3 days before the end, 6 is expensive
SALES = [(0, 100, 0.02), (1, 90, 0.03), (2, 80, 0.02), (3, 70, 0.04), (4, 60, 0.03), (5, 50, 0.02),
         (6, 40, 0.09), (7, 3, 0.03), (0, 0, 0.02)]  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    articles = pd.DataFrame({
        "article_id": [f"{700 + i:010d}" for i in range(len(ARTICLES))], "prod_name": [f"{a[0]} {a[1]}" for a in ARTICLES],
        "product_type_name": [a[0] for a in ARTICLES], "colour_group_name": [a[1] for a in ARTICLES],
        "index_group_name": [a[2] for a in ARTICLES], "product_group_name": "Garment", "has_image": True,
    })  # fmt: skip
    rows = sorted(SALES, key=lambda s: -s[1])
    tx = pd.DataFrame({"t_dat": [LAST - np.timedelta64(s[1], "D") for s in rows], "customer": np.zeros(len(rows), np.int32),
                       "article": np.array([s[0] for s in rows], np.int32), "price": np.array([s[2] for s in rows], np.float32),
                       "sales_channel_id": np.int8(2)})  # fmt: skip
    ids = np.array(["a" * 64], dtype=object)
    return Catalog(Path("/nowhere/rules"), articles, pd.DataFrame({"customer_id": ids}), tx, ids, "rules")


def rules_of(tmp_path, catalog, text: str, bump: int = 0) -> Rules:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    if bump:
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))
    return Rules(path, catalog)


RANKED = np.arange(8)  # a list, best first: 0, 1, …, 7


def test_boost_bury_exclude_in_exact_orders(tmp_path, catalog):
    rules = rules_of(tmp_path, catalog, """
[[rule]]
name = "menswear up"
action = "boost"
factor = 4.0
[rule.when]
index_group_name = ["Menswear"]

[[rule]]
name = "black down"
action = "bury"
factor = 0.25
[rule.when]
colour_group_name = "Black"

[[rule]]
name = "no hoodies"
action = "exclude"
[rule.when]
product_type_name = ["Hoodie"]
""")
    rows, scores, touched = rules.apply(RANKED, 5, today=TODAY)
    # positional 1/(1+i): 3 → 0.25×4 = 1.0, 4 → 0.2×4 = 0.8; 0 → 1×0.25, 2 → 1/3×0.25, 5 → 1/6×0.25; 6 gone.
    # Order: 0 (0.25 … ties: 3 has 1.0) → 3 (1.0), 4 (0.8), 1 (0.5), 0 (0.25), 7 (0.125), 2 (0.083), 5 (0.042)
    assert rows.tolist() == [3, 4, 1, 0, 7]
    assert scores.tolist() == pytest.approx([1.0, 0.8, 0.5, 0.25, 0.125])
    assert touched == [["menswear up"], ["menswear up"], [], ["black down"], []]
    assert rules.touched == {(str(TODAY), "menswear up"): 2, (str(TODAY), "black down"): 1}


def test_price_new_arrivals_ids_and_date_ranges(tmp_path, catalog):
    rules = rules_of(tmp_path, catalog, """
[[rule]]
name = "new in"
action = "boost"
factor = 10.0
[rule.when]
new_within_days = 7

[[rule]]
name = "not the dear ones"
action = "exclude"
[rule.when]
price_min = 0.05

[[rule]]
name = "december only"
action = "exclude"
start = 2026-12-01
end = 2026-12-31
[rule.when]
article_ids = ["0000000701"]
""")
    assert rules.apply(RANKED, 8, today=TODAY)[0].tolist() == [7, 0, 2, 3, 4, 5]  # 7 new; 6 dear; 1 in December
    assert rules.apply(RANKED, 8, today=dt.date(2027, 1, 1))[0].tolist() == [7, 0, 1, 2, 3, 4, 5]


def test_pins_for_a_query_or_a_filter_first_in_file_order(tmp_path, catalog):
    rules = rules_of(tmp_path, catalog, """
[[rule]]
name = "party"
action = "pin"
query = "Party  Dress"
articles = ["0000000707", "0000000705"]

[[rule]]
name = "party again"
action = "pin"
query = "party dress"
articles = ["0000000705", "0000000703"]

[[rule]]
name = "divided edit"
action = "pin"
filter = { index_group_name = "Divided" }
articles = ["0000000706"]
""")
    rows, _, touched = rules.apply(RANKED, 4, query="party dress!", today=TODAY)
    assert rows.tolist() == [7, 5, 3, 0]  # a pinned article once, where its first pin puts it (a "cycle" of pins)
    assert touched[:3] == [["party"], ["party"], ["party again"]]
    assert rules.apply(RANKED, 3, query="dress", filters={"index_group_name": ["Divided"]}, today=TODAY)[0].tolist() == [6, 0, 1]
    allowed = np.ones(8, bool)
    allowed[7] = False  # filtered out or out of stock: a pin does not bring it back
    assert rules.apply(RANKED, 2, query="party dress", allowed=allowed, today=TODAY)[0].tolist() == [5, 3]
    assert rules.apply(RANKED, 2, today=TODAY)[0].tolist() == [0, 1]  # no query, no filter: pins do nothing


@pytest.mark.parametrize("text, message", [
    ("[[rule]\nname = 'x'\n", "rules.toml: not valid TOML ("),
    ("[[rule]]\naction = 'boost'\nfactor = 2.0\n[rule.when]\nsize = 'M'\n",
     "rules.toml rule 1 (line 1): unknown column 'size' in when"),
    ("[[rule]]\naction = 'boost'\nfactor = 2.0\n\n[[rule]]\naction = 'bury'\nfactor = 3\n",
     "rules.toml rule 2 (line 5): a bury factor must be below 1, not 3"),
    ("[[rule]]\naction = 'pin'\nquery = 'x'\narticles = ['0000000001']\n",
     "rules.toml rule 1 (line 1): article '0000000001' is not in the catalogue"),
    ("[[rule]]\naction = 'exclude'\n[rule.when]\ncolour_group_name = 'Plaid'\n",
     "rules.toml rule 1 (line 1): colour_group_name 'Plaid' is not in the catalogue"),
    ("[[rule]]\naction = 'promote'\n", "rules.toml rule 1 (line 1): action 'promote' is not one of pin, boost, bury, exclude"),
    ("[[rule]]\naction = 'exclude'\nstart = 'soon'\n", "rules.toml rule 1 (line 1): start must be a date like 2026-12-31"),
    ("[[rule]]\nname = 'a'\naction = 'exclude'\n[[rule]]\nname = 'a'\naction = 'exclude'\n",
     "rules.toml rule 2 (line 4): the name 'a' is taken by an earlier rule"),
])  # fmt: skip
def test_a_bad_file_is_one_message_naming_the_rule_and_line(tmp_path, catalog, text, message):
    (tmp_path / "rules.toml").write_text(text)
    with pytest.raises(DataError) as caught:
        read_rules(tmp_path / "rules.toml", catalog)
    assert str(caught.value).startswith(message)


def test_too_many_rules_are_refused_and_the_last_good_rules_stay(tmp_path, catalog):
    rules = rules_of(tmp_path, catalog, "[[rule]]\nname = 'menswear out'\naction = 'exclude'\n[rule.when]\nindex_group_name = 'Menswear'\n")
    assert rules.apply(RANKED, 8, today=TODAY)[0].tolist() == [0, 1, 2, 5, 6, 7]
    many = "".join(f"[[rule]]\nname = 'r{i}'\naction = 'exclude'\n[rule.when]\narticle_ids = ['0000000700']\n"
                   for i in range(10_000))
    (tmp_path / "rules.toml").write_text(many)
    stat = (tmp_path / "rules.toml").stat()
    os.utime(tmp_path / "rules.toml", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert rules.apply(RANKED, 8, today=TODAY)[0].tolist() == [0, 1, 2, 5, 6, 7]  # still the last good rules
    assert rules.problem == f"rules.toml holds 10,000 rules; at most {MAX_RULES:,} are allowed"
    (tmp_path / "rules.toml").unlink()
    assert rules.apply(RANKED, 3, today=TODAY)[0].tolist() == [0, 1, 2] and rules.problem is None


@pytest.fixture
def shop_rules(demo_engine, tmp_path, monkeypatch):
    """The demo engine reading a rules.toml of this test's own."""
    def install(text: str) -> Rules:
        rules = rules_of(tmp_path, demo_engine.catalog, text, bump=len(text))
        monkeypatch.setattr(demo_engine.search, "rules", rules)
        monkeypatch.setattr(demo_engine.collab, "rules", rules)
        return rules
    return install


def test_rules_apply_to_search_recommendations_and_complete_the_look(demo_engine, shop_rules):
    search, collab = demo_engine.search, demo_engine.collab
    plain = search.search(text="dress", k=6)
    customer = collab.example_customers(1)[0]
    recs, recs12 = collab.recommend(customer, k=6), collab.recommend(customer, k=12)
    plain30 = search.search(text="dress", k=30)
    article = demo_engine.catalog.articles["article_id"].iat[0]
    outfit = collab.complete_the_look(article, k=4)
    pinned = demo_engine.catalog.articles.query("product_type_name == 'Trousers'")["article_id"].iat[0]
    gone = [plain["article_id"].iat[0], recs["article_id"].iat[0], outfit["article_id"].iat[0]]
    shop_rules(f"""
[[rule]]
name = "trousers for dresses"
action = "pin"
query = "dress"
articles = ["{pinned}"]

[[rule]]
name = "sold elsewhere"
action = "exclude"
[rule.when]
article_ids = {gone!r}
""".replace("'", '"'))
    found = search.search(text="dress", k=6)
    assert found["article_id"].iat[0] == pinned and found["rules"].iat[0] == ["trousers for dresses"]
    assert len(found) == 6 and not set(gone) & set(found["article_id"])
    assert found["article_id"].tolist()[1:] == [a for a in plain30["article_id"] if a not in gone and a != pinned][:5]
    assert search.search(text="red dress", k=6)["article_id"].iat[0] != pinned  # another query: no pin
    ruled = collab.recommend(customer, k=6)
    assert len(ruled) == 6 and gone[1] not in set(ruled["article_id"]) and ruled["reason"].str.len().gt(0).all()
    assert ruled["article_id"].tolist() == [a for a in recs12["article_id"] if a not in gone][:6]  # backfilled
    completed = collab.complete_the_look(article, k=4)
    assert gone[2] not in set(completed["article_id"]) and len(completed) == 4


def test_the_cli_says_a_refused_rules_file_and_searches_without_it(demo_settings, capsys):
    from recommender.cli import main

    rules = demo_settings.data_dir / "rules.toml"
    rules.write_text("[[rule]]\naction = 'promote'\n")
    try:
        base = ["search", "--data", str(demo_settings.data_dir), "--artifacts", str(demo_settings.artifacts_dir)]
        assert main([*base, "--text", "dress", "-k", "3", "--json"]) == 0
    finally:
        rules.unlink()
    out, err = capsys.readouterr()
    assert "notice: rules.toml rule 1 (line 1): action 'promote' is not one of pin, boost, bury, exclude" in err
    assert err.rstrip().endswith("; it is not applied") and len(out.splitlines()) == 3
