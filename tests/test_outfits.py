"""Complete the look on a hand-made catalogue: lift over popularity, other product groups only, one per
product type, style coherence, and new articles borrowing their look-alikes' co-purchases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.catalog import Catalog
from recommender.collab import CollabModel, CollabParams, CollabState
from recommender.lookalikes import Looks

#            product  type          group
ARTICLES = [("P1", "Dress", "Garment Full body"),        # 0
            ("P2", "Sneakers", "Shoes"),                 # 1
            ("P3", "Bag", "Accessories"),                # 2
            ("P4", "Trousers", "Garment Lower body"),    # 3
            ("P5", "Top", "Garment Upper body"),         # 4
            ("P6", "Boots", "Shoes"),                    # 5  a best seller
            ("P7", "Skirt", "Garment Lower body"),       # 6
            ("P8", "Belt", "Accessories"),               # 7
            ("P9", "Sneakers", "Shoes"),                 # 8  a second pair of sneakers
            ("P10", "Dress", "Garment Full body"),       # 9  a dress: never a complement of a dress
            ("P11", "Dress", "Garment Full body")]       # 10 a new arrival: nobody bought it  fmt: skip
BASKETS = {"A": [0, 1, 2, 9], "B": [0, 1, 8], "C": [0, 5, 3], "D": [5], "E": [5], "F": [5, 4]}  # one week each
LAST = np.datetime64("2020-09-20", "ns")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    articles = pd.DataFrame({
        "article_id": [f"{500 + i:010d}" for i in range(len(ARTICLES))],
        "product_code": [a[0] for a in ARTICLES], "prod_name": [f"{a[1]} {a[0]}" for a in ARTICLES],
        "product_type_name": [a[1] for a in ARTICLES], "product_group_name": [a[2] for a in ARTICLES],
        "colour_group_name": "Black", "index_group_name": "Ladieswear", "has_image": True,
    })  # fmt: skip
    names = list(BASKETS)
    rows = [(LAST - np.timedelta64(3 + 7 * i, "D"), i, article) for i, name in enumerate(names) for article in BASKETS[name]]
    rows.sort(key=lambda r: r[0])
    transactions = pd.DataFrame({
        "t_dat": [r[0] for r in rows], "customer": np.array([r[1] for r in rows], np.int32),
        "article": np.array([r[2] for r in rows], np.int32), "price": np.float32(0.02),
        "sales_channel_id": np.int8(2),
    })  # fmt: skip
    ids = np.array([name.lower() * 64 for name in names], dtype=object)
    return Catalog(Path("/nowhere/outfits"), articles, pd.DataFrame({"customer_id": ids}), transactions, ids, "outfits")


def model(catalog, looks=None) -> CollabModel:
    return CollabModel(CollabState.fit(catalog, CollabParams(factors=4, iterations=3), looks=looks))


def ids(catalog, rows) -> list[str]:
    return catalog.articles["article_id"].iloc[list(rows)].tolist()


def test_lift_over_popularity_other_groups_one_per_type(catalog):
    # Baskets: 6. In baskets: dress 0 → 3, sneakers 1 → 2, bag 2 → 1, trousers 3 → 1, boots 5 → 4.
    # Shrunk lift together / (n_a·n_b / 6 + 1): sneakers 2/2 = 1, bag and trousers 1/1.5, sneakers 8 1/1.5,
    # the best-selling boots 1/3. The dress 9 is the dress's own group; sneakers 8 repeat a type. The top,
    # never bought with the dress, fills a place after them: it sells in the dress's index group.
    found = model(catalog).complete_the_look(ids(catalog, [0])[0])
    assert found["article_id"].tolist() == ids(catalog, [1, 2, 3, 5, 4])
    assert found["score"].tolist()[:4] == pytest.approx([1.0, 2 / 3, 2 / 3, 1 / 3], abs=1e-4)
    assert 0 < found["score"].iat[4] <= 0.1 / 3 + 1e-6  # below every co-purchase
    assert found["reason"].iat[0] == "bought with it in the same week by 2 shoppers"
    assert found["reason"].iat[4] == "goes with it: sells well in Ladieswear this week"
    assert found.attrs["method"] == "complete the look"
    assert model(catalog).complete_the_look(ids(catalog, [0])[0], k=2)["article_id"].tolist() == ids(catalog, [1, 2])


def test_style_coherence_lifts_complements_that_look_alike(catalog):
    vectors = np.zeros((len(ARTICLES), 4), np.float32)
    vectors[:, 3] = 1.0
    vectors[0] = vectors[3] = [1, 0, 0, 0]  # the trousers look like the dress: ×1.5
    looks = Looks(vectors, np.full((len(ARTICLES), 1), -1, np.int32), np.full((len(ARTICLES), 1), np.nan, np.float32))
    found = model(catalog, looks).complete_the_look(ids(catalog, [0])[0])
    assert found["article_id"].tolist() == ids(catalog, [1, 3, 2, 5, 4])  # 3: 2/3 × 1.5 = 1, ties 1 → lower row
    assert found["score"].tolist()[:4] == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3], abs=1e-4)


def test_a_new_article_borrows_its_lookalikes_co_purchases(catalog):
    vectors = np.tile(np.array([[1, 0, 0, 0]], np.float32), (len(ARTICLES), 1))
    neighbours = np.full((len(ARTICLES), 2), -1, np.int32)
    sims = np.full((len(ARTICLES), 2), np.nan, np.float32)
    neighbours[10], sims[10] = [0, 4], [0.9, 0.0]  # the new dress looks like dress 0 (the top: not at all)
    new = ids(catalog, [10])[0]
    found = model(catalog, Looks(vectors, neighbours, sims)).complete_the_look(new)
    assert found["article_id"].tolist() == ids(catalog, [1, 2, 3, 5, 4])  # dress 0's, in its order
    assert found["score"].tolist()[:4] == pytest.approx(np.array([1.0, 2 / 3, 2 / 3, 1 / 3]) * 0.9 * 1.5, abs=1e-4)
    assert found["reason"].iat[0] == "bought with the Dress P1, which looks like it, in the same week by 2 shoppers"
    # Without look-alikes there is nothing to borrow: what sells in its index group, one per type.
    alone = model(catalog).complete_the_look(new)
    assert set(alone["reason"]) == {"goes with it: sells well in Ladieswear this week"}
    assert sorted(alone["article_id"]) == ids(catalog, [1, 2, 3, 4, 5])
