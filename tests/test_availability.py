"""availability.csv: validated line by line, read again when it changes (no rebuild), the last good file kept
when a new one is bad; out-of-stock articles never recommended nor completing a look, and searched only
when asked, marked."""
from __future__ import annotations

import os

import numpy as np
import pytest

from recommender.availability import Availability, read_availability
from recommender.errors import DataError


def write(folder, text: str, bump: int = 0):
    path = folder / "availability.csv"
    path.write_text(text)
    if bump:  # a distinct modification time, as a later edit has
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))
    return path


def test_in_stock_and_stock_counts(demo_catalog, tmp_path):
    ids = demo_catalog.articles["article_id"].tolist()
    unavailable = read_availability(write(tmp_path, f"article_id,in_stock\n{ids[0]},0\n{ids[1]},yes\n{int(ids[2])},false\n"),
                                    demo_catalog)  # an unpadded id is the same article
    assert np.flatnonzero(unavailable).tolist() == [0, 2]
    unavailable = read_availability(write(tmp_path, f"article_id,stock\n{ids[3]},0\n{ids[4]},12\n\n"), demo_catalog)
    assert np.flatnonzero(unavailable).tolist() == [3]


@pytest.mark.parametrize("text, message", [
    ("id,in_stock\n", "availability.csv line 1: the header must be article_id,in_stock or article_id,stock, not 'id,in_stock'"),
    ("article_id,in_stock\nFIRST,1\n0000000001,0\n", "availability.csv line 3: article '0000000001' is not in the catalogue"),
    ("article_id,in_stock\nFIRST,maybe\n", "availability.csv line 2: in_stock 'maybe' is not one of 1/0, true/false, yes/no"),
    ("article_id,stock\nFIRST,-2\n", "availability.csv line 2: stock '-2' is not a whole number of 0 or more"),
    ("article_id,stock\nFIRST,1,2\n", "availability.csv line 2: 3 values, expected 2 (article_id,stock)"),
])  # fmt: skip
def test_bad_lines_are_named(demo_catalog, tmp_path, text, message):
    path = write(tmp_path, text.replace("FIRST", demo_catalog.articles["article_id"].iat[0]))
    with pytest.raises(DataError) as caught:
        read_availability(path, demo_catalog)
    assert str(caught.value) == message


def test_changes_apply_without_a_rebuild_and_a_bad_file_keeps_the_last_good(demo_catalog, tmp_path):
    ids = demo_catalog.articles["article_id"].tolist()
    availability = Availability(tmp_path, demo_catalog)
    assert availability.unavailable() is None and availability.problem is None  # no file: nothing excluded
    write(tmp_path, f"article_id,in_stock\n{ids[5]},0\n")
    assert np.flatnonzero(availability.unavailable()).tolist() == [5]
    write(tmp_path, f"article_id,in_stock\n{ids[6]},0\n", bump=2)
    assert np.flatnonzero(availability.unavailable()).tolist() == [6]
    write(tmp_path, "article_id,in_stock\n0000000001,0\n", bump=4)
    assert np.flatnonzero(availability.unavailable()).tolist() == [6]  # the last good file stays in force
    assert availability.problem == "availability.csv line 2: article '0000000001' is not in the catalogue"
    (tmp_path / "availability.csv").unlink()
    assert availability.unavailable() is None and availability.problem is None


@pytest.fixture
def stocked(demo_engine, tmp_path, monkeypatch):
    """The demo engine reading an availability.csv of this test's own (written by the test)."""
    availability = Availability(tmp_path, demo_engine.catalog)
    monkeypatch.setattr(demo_engine.search, "availability", availability)
    monkeypatch.setattr(demo_engine.collab, "availability", availability)
    return lambda ids: write(tmp_path, "article_id,in_stock\n" + "".join(f"{a},0\n" for a in ids), bump=len(ids))


def test_out_of_stock_is_searched_only_when_asked(demo_engine, stocked):
    before = demo_engine.search.search(text="dress", k=8)
    stocked(before["article_id"][:2])
    after = demo_engine.search.search(text="dress", k=8)
    assert len(after) == 8 and not set(after["article_id"]) & set(before["article_id"][:2]) and after["available"].all()
    asked = demo_engine.search.search(text="dress", k=8, include_unavailable=True)
    assert asked["article_id"].tolist() == before["article_id"].tolist()
    assert asked["available"].tolist() == [False, False] + [True] * 6


def test_out_of_stock_is_never_recommended_nor_completes_a_look(demo_engine, stocked):
    collab = demo_engine.collab
    customer = collab.example_customers(1)[0]
    article = demo_engine.catalog.articles["article_id"].iat[0]
    methods = ("ranker", "ensemble", "blend", "last purchases + popular", "popular last week")
    before = {m: collab.recommend(customer, k=12, method=m)["article_id"].tolist() for m in methods}
    looks = collab.complete_the_look(article, k=6)["article_id"].tolist()
    gone = {lst[0] for lst in before.values()} | set(looks[:2])
    stocked(sorted(gone))
    for method in methods:
        after = collab.recommend(customer, k=12, method=method)["article_id"].tolist()
        assert len(after) == 12 and not gone & set(after), method
    assert not gone & set(collab.recommend_for_items([article], k=12)["article_id"])
    assert not gone & set(collab.complete_the_look(article, k=6)["article_id"])
