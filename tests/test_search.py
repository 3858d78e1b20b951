"""Search v2: query analysis, the BM25 artifact, reciprocal rank fusion, and each mode through the
engine and the CLI (demo catalogue)."""
from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

from recommender.cli import main
from recommender.content import SEARCH_COLUMNS, ContentSearch
from recommender.errors import ArtifactError, InputError
from recommender.lexical import LexicalIndex, build_lexical_index, load_lexical_index, split_words
from recommender.search import Ranking, lexical_ranking, lexical_scores, reciprocal_rank_fusion
from recommender.store import ArtifactStore

COLUMNS = ["article_id", "prod_name", "product_type_name", "product_group_name", "colour_group_name",
           "graphical_appearance_name", "index_group_name", "section_name", "garment_group_name", "detail_desc"]  # fmt: skip
ROWS = [
    ("0000000001", "Basic T-shirt", "T-shirt", "Garment Upper body", "Black", "Solid", "Menswear", "Men Basics", "Jersey Basic", "T-shirt in cotton jersey."),
    ("0000000002", "Jade HW Skinny Denim TRS", "Trousers", "Garment Lower body", "Blue", "Denim", "Ladieswear", "Ladies Denim", "Trousers Denim", "High-waisted skinny jeans."),
    ("0000000003", "Lace dress", "Dress", "Garment Full body", "Black", "Lace", "Ladieswear", "Womens Casual", "Dresses Ladies", "Short dress in lace."),
    ("0000000004", "Plain dress", "Dress", "Garment Full body", "Black", "Solid", "Ladieswear", "Womens Casual", "Dresses Ladies", "Short dress in jersey."),
    ("0000000005", "Alma Sneaker", "Sneakers", "Shoes", "White", "Solid", "Divided", "Divided Shoes", "Shoes", "Trainers with laces."),
    ("0000000006", "Sam chinos", "Trousers", "Garment Lower body", "Beige", "Solid", "Menswear", "Men Trousers", "Trousers", "Chinos in cotton twill."),
    ("0000000007", "Push-up bra", "Bra", "Underwear", "Black", "Solid", "Ladieswear", "Womens Lingerie", "Under-, Nightwear", "Push-up bra with underwired cups."),
    ("0000000008", "Knit jumper", "Sweater", "Garment Upper body", "Grey", "Melange", "Ladieswear", "Womens Tops", "Knitwear", "Jumper in a soft knit."),
]  # fmt: skip


@pytest.fixture(scope="module")
def articles() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=COLUMNS)


@pytest.fixture(scope="module")
def lexical(articles) -> LexicalIndex:
    return LexicalIndex.build(articles)


def top_ids(lexical, articles, text: str, n: int = 3) -> list[str]:
    scores, _ = lexical.query_scores(text)
    return list(articles["article_id"][lexical_ranking(scores, None, n)])


# --- query analysis -------------------------------------------------------------------------------


def test_words_are_folded_and_compounds_joined():
    assert split_words("Men's T-Shirt, Slim-fit CAFÉ") == ["mens", "tshirt", "slimfit", "cafe"]


@pytest.mark.parametrize("query", ["t-shirt", "t shirt", "tshirt", "T-Shirts", "TSHIRT"])
def test_hyphen_space_and_joined_spellings_find_the_t_shirt(lexical, articles, query):
    assert top_ids(lexical, articles, query, 1) == ["0000000001"]


def test_synonyms_come_from_the_catalogue_vocabulary(lexical, articles):
    analysed = dict(lexical.analyzer.analyse_query("pants sneakers jumper"))
    assert analysed["pants"] == ["trouser"]  # "slacks" is not in this catalogue, so not searched
    assert analysed["sneakers"] == ["sneaker", "trainer"]
    assert set(analysed["jumper"]) == {"jumper", "sweater"}
    assert set(top_ids(lexical, articles, "pants", 2)) == {"0000000002", "0000000006"}
    assert top_ids(lexical, articles, "trainers", 1) == ["0000000005"]


def test_typos_of_four_letters_or_more_are_corrected_against_the_vocabulary(lexical, articles):
    assert lexical.analyzer.analyse_query("blak dres") == [("black", ["black"]), ("dress", ["dress"])]
    assert lexical.analyzer.analyse_query("skinyy")[0][0] == "skinny"  # transposition
    assert lexical.analyzer.analyse_query("bar") == [("bar", [])]  # too short to guess
    assert lexical.analyzer.analyse_query("xyzzyq") == [("xyzzyq", [])]  # nothing within one edit
    assert top_ids(lexical, articles, "blak lace dres", 1) == ["0000000003"]


def test_a_product_name_finds_its_article_first(lexical, articles):
    assert top_ids(lexical, articles, "jade hw skinny denim trs", 1) == ["0000000002"]
    assert top_ids(lexical, articles, "push up bra", 1) == ["0000000007"]


def test_explanations_name_the_articles_own_matching_words(lexical, articles):
    record = articles.iloc[1].to_dict()
    terms = {t for _, ts in lexical.analyzer.analyse_query("skinny jeans") for t in ts}
    assert lexical.matched(record, terms) == {
        "prod_name": ["skinny", "denim"], "graphical_appearance_name": ["denim"], "section_name": ["denim"],
        "garment_group_name": ["denim"], "detail_desc": ["skinny", "jeans"],
    }  # fmt: skip


PHRASE_ROWS = [
    ("0000000011", "Cargo trousers", "Trousers", "Garment Lower body", "Beige", "Solid", "Ladieswear", "Womens Trousers", "Trousers", "Trousers with wide legs and a high waist."),
    ("0000000012", "Pleated trousers", "Trousers", "Garment Lower body", "Beige", "Solid", "Ladieswear", "Womens Trousers", "Trousers", "Trousers with a wide waistband, tapered legs and a slit at each leg."),
    ("0000000013", "Oxford shirt", "Shirt", "Garment Upper body", "White", "Solid", "Menswear", "Men Shirts", "Shirts", "Shirt in cotton in a slim fit."),
    ("0000000014", "Poplin shirt", "Shirt", "Garment Upper body", "White", "Solid", "Menswear", "Men Shirts", "Shirts", "Shirt in a regular fit with a slim collar and slim sleeves."),
    ("0000000015", "Denim shirt", "Shirt", "Garment Upper body", "Blue", "Denim", "Menswear", "Men Shirts", "Shirts", "Slim-fit shirt in denim."),
    ("0000000016", "Linen shirt", "Shirt", "Garment Upper body", "White", "Solid", "Menswear", "Men Shirts", "Shirts", "Shirt in linen in a slim fit."),
]  # fmt: skip


@pytest.mark.parametrize("weight, first", [(0.0, ["0000000012"]), (None, ["0000000011"])])
def test_words_next_to_each_other_rank_above_the_same_words_apart(monkeypatch, weight, first):
    # "wide legs" in one description; "wide waistband, tapered legs … leg" in the other, whose words
    # alone score higher: the phrase puts the first one first (and without it, it would not be).
    from recommender import lexical as lexical_module

    if weight is not None:
        monkeypatch.setattr(lexical_module, "PHRASE_WEIGHT", weight)
    articles = pd.DataFrame(PHRASE_ROWS, columns=COLUMNS)
    index = LexicalIndex.build(articles)
    assert top_ids(index, articles, "wide leg trousers", 1) == first
    assert index.analyzer.phrases(index.analyzer.analyse_query("wide leg trousers")) == [["wide_leg"]]


def test_two_words_are_joined_only_where_the_catalogue_writes_them_joined_more_often(lexical, articles):
    phrases = pd.DataFrame(PHRASE_ROWS, columns=COLUMNS)
    index = LexicalIndex.build(phrases)
    # "slim fit" twice apart, "Slim-fit" once: the words stay two, and the phrase ranks its articles first
    assert [word for word, _ in index.analyzer.analyse_query("slim fit shirt")] == ["slim", "fit", "shirt"]
    assert set(top_ids(index, phrases, "slim fit shirt", 2)) == {"0000000013", "0000000016"}
    # "T-shirt" is only ever written joined: "t shirt" is the compound
    assert [word for word, _ in lexical.analyzer.analyse_query("t shirt")] == ["tshirt"]


def test_a_negative_text_pushes_lexical_matches_down(lexical, articles):
    plain, _ = lexical_scores(lexical, "black dress", None)
    pushed, _ = lexical_scores(lexical, "black dress", "lace")
    order = lambda s: list(articles["article_id"][lexical_ranking(s, None, 2)])  # noqa: E731
    assert order(plain)[0] == "0000000003"  # "lace dress" in its own name and pattern: first without
    assert order(pushed) == ["0000000004", "0000000003"]  # still found, below the plain dress


# --- fusion ---------------------------------------------------------------------------------------


def test_reciprocal_rank_fusion_on_a_hand_made_example():
    fused = reciprocal_rank_fusion([Ranking(np.array([3, 1, 2])), Ranking(np.array([1, 4, 3]), visual=True)])
    # 1: 1/62 + 1/61, 3: 1/61 + 1/63, 4: 1/62, 2: 1/63
    assert fused.rows.tolist() == [1, 3, 4, 2]
    np.testing.assert_allclose(fused.scores, [1 / 62 + 1 / 61, 1 / 61 + 1 / 63, 1 / 62, 1 / 63])
    assert fused.visual_rank == {1: 1, 4: 2, 3: 3}
    weighted = reciprocal_rank_fusion([Ranking(np.array([3, 1]), 0.2), Ranking(np.array([1, 4]), 0.8)])
    assert weighted.rows.tolist() == [1, 4, 3]


def test_the_lexical_leg_keeps_allowed_matches_only(lexical, articles):
    scores, _ = lexical.query_scores("black")
    allowed = (articles["product_type_name"] == "Dress").to_numpy()
    assert set(articles["article_id"][lexical_ranking(scores, allowed, 10)]) == {"0000000003", "0000000004"}


# --- the artifact ---------------------------------------------------------------------------------


def test_changed_articles_make_the_lexical_index_stale_and_the_build_step_rebuilds_it(articles, tmp_path):
    from recommender.catalog import load_catalog

    data = tmp_path / "data"
    data.mkdir()
    articles.to_csv(data / "articles.csv", index=False)
    store = ArtifactStore(tmp_path / "artifacts")
    build_lexical_index(load_catalog(data), store)
    assert load_lexical_index(load_catalog(data), store).analyzer.analyse_query("velvet") == [("velvet", [])]

    changed = articles.copy()
    changed.loc[3, "prod_name"] = "Velvet dress"
    changed.to_csv(data / "articles.csv", index=False)
    catalog = load_catalog(data)
    with pytest.raises(ArtifactError, match="artifact 'lexical_index' .* does not match: articles: built with"):
        load_lexical_index(catalog, store)
    build_lexical_index(catalog, store)
    rebuilt = load_lexical_index(catalog, store)
    scores, _ = rebuilt.query_scores("velvet")
    assert list(articles["article_id"][lexical_ranking(scores, None, 5)]) == ["0000000004"]


# --- through the engine and the CLI (demo catalogue) ---------------------------------------------------


def test_each_mode_returns_k_results_with_explanations(demo_engine):
    for mode in ("hybrid", "visual", "lexical"):
        results = demo_engine.search.search(text="red dress", k=10, mode=mode)
        assert list(results.columns) == SEARCH_COLUMNS and len(results) == 10
        assert list(results["score"]) == sorted(results["score"], reverse=True)
        top = results.iloc[0]
        assert top["matched"], f"{mode}: the best result matches no word of 'red dress'"
        assert set(top["matched"]) <= set(COLUMNS + ["perceived_colour_master_name", "perceived_colour_value_name"])
    lexical = demo_engine.search.search(text="red dress", k=10, mode="lexical")
    assert (lexical["product_type_name"] == "Dress").all() and not lexical["looks_alike"].any()
    hybrid = demo_engine.search.search(text="red dress", k=10)
    assert hybrid["looks_alike"].any() and (hybrid["product_type_name"] == "Dress").mean() >= 0.8


@pytest.mark.parametrize("query", [{"text": "dress"}, {"text": "black top", "mode": "lexical"}, {"like": "LIKE"}])
def test_one_result_per_product_with_its_other_colours(demo_engine, demo_catalog, query):
    search, articles = demo_engine.search, demo_catalog.articles
    if "like" in query:
        query = {"like": [articles["article_id"].iat[3]]}
    product_of = dict(zip(articles["article_id"], articles["product_code"]))
    grouped = search.search(**query, k=8)
    by_article = search.search(**query, k=40, group="article")
    # Each product once, as its best-ranked article, in the article ranking's order; k products.
    firsts = by_article[~by_article["article_id"].map(product_of).duplicated()].head(8)
    assert grouped["article_id"].tolist() == firsts["article_id"].tolist()
    assert len(grouped) == min(8, len(firsts)) and grouped["article_id"].map(product_of).is_unique
    # Its other colours: every other article of the product, none of another.
    for row in grouped.itertuples():
        siblings = set(articles.loc[articles["product_code"] == product_of[row.article_id], "article_id"]) - {row.article_id}
        assert set(row.other_colours) == siblings
    assert grouped["other_colours"].map(len).sum() > 0  # the demo has products in several colours
    assert (by_article["other_colours"].map(len) == 0).all()


def test_grouping_keeps_k_products_under_filters_and_lists_only_allowed_colours(demo_engine, demo_catalog):
    articles = demo_catalog.articles
    colour = articles["colour_group_name"].value_counts().index[0]
    found = demo_engine.search.search(text="dress", filters={"colour_group_name": colour}, k=5)
    assert (found["colour_group_name"] == colour).all()
    allowed = set(articles.loc[articles["colour_group_name"] == colour, "article_id"])
    assert all(set(ids) <= allowed for ids in found["other_colours"])
    products = articles.loc[articles["colour_group_name"] == colour, "product_code"].nunique()
    assert len(found) == min(5, products)
    with pytest.raises(InputError, match="group must be one of product, article"):
        demo_engine.search.search(text="dress", group="colour")


def test_facet_counts_are_the_word_matches_under_the_other_filters(demo_engine, demo_catalog):
    search, articles = demo_engine.search, demo_catalog.articles
    colour = articles["colour_group_name"].value_counts().index[0]
    found = search.search(text="dress", filters={"colour_group_name": [colour]}, facets=True)
    facets = found.attrs["facets"]
    assert facets["basis"] == "words"
    words = lexical_scores(search.lexical, "dress", None)[0] > 0
    expect = lambda rows, column: {v: int(n) for v, n in articles.loc[rows, column].value_counts().items()}
    nonzero = lambda counts: {v: n for v, n in counts.items() if n}
    # A column's own filter does not narrow its counts (they say what choosing another value gives) …
    assert nonzero(facets["counts"]["colour_group_name"]) == expect(words, "colour_group_name")
    # … the others' do; every catalogue value is listed, 0 where it would empty the results.
    both = words & (articles["colour_group_name"] == colour).to_numpy()
    assert nonzero(facets["counts"]["product_type_name"]) == expect(both, "product_type_name")
    assert set(facets["counts"]["product_type_name"]) == set(articles["product_type_name"])
    assert 0 in facets["counts"]["product_type_name"].values()
    assert "facets" not in search.search(text="dress").attrs  # only when asked


def test_facets_of_a_visual_query_count_its_first_hundred_by_looks(demo_engine, demo_catalog):
    liked = demo_catalog.articles["article_id"].iat[3]
    facets = demo_engine.search.search(like=[liked], facets=True).attrs["facets"]
    assert facets["basis"] == "first 100 by looks"
    assert all(sum(counts.values()) == 100 for counts in facets["counts"].values())


def test_filters_apply_to_both_legs_with_exactly_k_results(demo_engine, demo_catalog):
    articles = demo_catalog.articles
    colour = "Black"
    n_black = int((articles["colour_group_name"] == colour).sum())
    for mode in ("hybrid", "visual"):
        results = demo_engine.search.search(text="dress", filters={"colour_group_name": colour}, k=n_black, mode=mode)
        assert len(results) == n_black and (results["colour_group_name"] == colour).all()
        assert results["article_id"].is_unique
    # Words only: the black articles the word matches, and no others.
    lexical = demo_engine.search.search(text="dress", filters={"colour_group_name": colour}, k=n_black, mode="lexical")
    assert 0 < len(lexical) < n_black and lexical["matched"].map(bool).all() and not lexical["filled"].any()


def test_words_that_match_nothing_are_no_results_in_lexical_mode(demo_engine):
    assert demo_engine.search.search(text="qqqxyz", k=12, mode="lexical").empty
    hybrid = demo_engine.search.search(text="qqqxyz", k=12)
    assert len(hybrid) == 12 and hybrid["filled"].all()  # by looks alone, each marked
    dress = demo_engine.search.search(text="red dress", k=30)
    assert dress["filled"].tolist() == (~dress["matched"].map(bool)).tolist()


def test_an_article_without_an_image_is_found_by_its_name(demo_engine, demo_catalog):
    """Among the first by its words; in hybrid above all but a few articles that match none of them (it is
    ranked by its words, and only photographed articles by their looks)."""
    articles = demo_catalog.articles
    imageless = articles[~articles["has_image"]]
    assert len(imageless)
    for _, row in imageless.iterrows():
        name = f"{row['prod_name']} {row['colour_group_name']}"
        lexical = demo_engine.search.search(text=name, k=5, mode="lexical")
        assert row["article_id"] in set(lexical["article_id"]), name
        results = demo_engine.search.search(text=name, k=60).reset_index(drop=True)
        position = int(np.flatnonzero(results["article_id"] == row["article_id"])[0])
        hit = results.iloc[position]
        assert hit["indexed_by"] == "text" and not hit["has_image"] and not hit["looks_alike"]
        assert hit["matched"]["prod_name"], name
        # Above it: articles matching its words, and at most a few that only look like the query.
        assert (~results["matched"][:position].map(bool)).sum() <= 3, (name, position)


def test_photos_and_more_like_this_stay_visual(demo_engine, demo_catalog):
    article_id = demo_catalog.articles["article_id"][demo_catalog.articles["has_image"]].iloc[0]
    photo = demo_catalog.image_path(article_id)
    for mode in ("hybrid", "lexical"):
        assert demo_engine.search.search(images=[photo], k=5, mode=mode).equals(
            demo_engine.search.search(images=[photo], k=5, mode="visual"))
    like = demo_engine.search.search(like=[article_id], k=5)
    assert article_id not in set(like["article_id"]) and like["looks_alike"].all()
    both = demo_engine.search.search(text="dress", images=[photo], image_weight=0.5, k=8)
    assert len(both) == 8 and both["looks_alike"].any()


def test_an_unknown_mode_is_refused(demo_engine):
    with pytest.raises(InputError, match="mode must be one of hybrid, visual, lexical, not 'fuzzy'"):
        demo_engine.search.search(text="dress", mode="fuzzy")


def test_cli_search_modes_and_explanations_in_json(demo_settings, capsys):
    base = ["search", "--data", str(demo_settings.data_dir), "--artifacts", str(demo_settings.artifacts_dir)]
    assert main([*base, "--text", "red dress", "--mode", "lexical", "-k", "3", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3 and all(line["product_type_name"] == "Dress" for line in lines)
    assert all("dress" in line["matched"]["product_type_name"] for line in lines)
    assert main([*base, "--text", "red dress", "-k", "4", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    with pytest.raises(SystemExit):
        main([*base, "--text", "dress", "--mode", "fuzzy"])
    assert "invalid choice: 'fuzzy'" in capsys.readouterr().err


def test_cli_search_groups_products_and_prints_facets(demo_settings, demo_engine, capsys):
    base = ["search", "--data", str(demo_settings.data_dir), "--artifacts", str(demo_settings.artifacts_dir)]
    want = demo_engine.search.search(text="dress", k=6, facets=True)
    assert main([*base, "--text", "dress", "-k", "6", "--json", "--facets"]) == 0
    first, *rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first["facets"] == want.attrs["facets"]
    assert [r["article_id"] for r in rows] == want["article_id"].tolist()
    assert [r["other_colours"] for r in rows] == want["other_colours"].tolist()
    assert main([*base, "--text", "dress", "-k", "6", "--facets"]) == 0
    out = capsys.readouterr().out
    colours = want.attrs["facets"]["counts"]["colour_group_name"]
    top = min(colours, key=lambda value: (-colours[value], value))  # most first, ties by name
    assert out.startswith("# facets over words\n") and f"colour_group_name: {top} {colours[top]}" in out
    assert any(f"+{len(ids)} colours" in out for ids in want["other_colours"] if ids)
    assert main([*base, "--text", "dress", "-k", "6", "--group", "article", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["article_id"] for r in rows] == demo_engine.search.search(text="dress", k=6, group="article")["article_id"].tolist()


# --- attributes -------------------------------------------------------------------------------------


def test_concurrent_first_photos_get_complete_identical_attributes(demo_engine, demo_catalog):
    """The attribute models are made once under a lock; threads asking at the same time all wait for them."""
    engine_search = demo_engine.search
    fresh = ContentSearch(demo_catalog, engine_search.embedder, engine_search.index, engine_search.lexical)
    photo = demo_catalog.image_path(demo_catalog.articles["article_id"][demo_catalog.articles["has_image"]].iloc[3])
    answers, errors = [], []
    start = threading.Barrier(8)

    def ask():
        try:
            start.wait()
            answers.append(fresh.predict_attributes(photo))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(answers) == 8
    expected = ["product_type_name", "colour_group_name", "graphical_appearance_name", "index_group_name"]
    assert all(list(answer) == expected for answer in answers)
    assert all(answer == answers[0] for answer in answers)


# --- photo precision --------------------------------------------------------------------------------


def test_query_precision_is_chosen_by_timing_once_per_machine_and_model(tmp_path):
    import torch

    from recommender.embed import random_embedder
    from recommender.precision import CACHE_VERSION, choose_query_precision, machine_key
    from recommender.quantize import INT8

    embedder = random_embedder("lookbook-tiny")
    embedder.image_precision = torch.bfloat16  # the candidate a bf16-capable CPU offers
    cache = tmp_path / "query_precision.cache"
    first = choose_query_precision(embedder, cache)
    assert first["cached"] is False
    assert set(first["image"]["timings_ms"]) == {"float32", "bfloat16", INT8}
    assert set(first["text"]["timings_ms"]) == {"float32", INT8}
    for tower in ("image", "text"):
        chosen, timings = first[tower], first[tower]["timings_ms"]
        faster = [n for n, cosine in chosen["cosine"].items() if cosine >= 0.995 and timings[n] <= 0.9 * timings["float32"]]
        assert chosen["choice"] == min(faster, key=timings.get, default="float32")  # float32 unless clearly slower
    expected = {"float32": None, "bfloat16": torch.bfloat16, INT8: INT8}
    assert embedder.image_precision == expected[first["image"]["choice"]]
    assert embedder.text_precision == expected[first["text"]["choice"]]

    stored = json.loads(cache.read_text())
    key = f"v{CACHE_VERSION}|{machine_key()}|{embedder.fingerprint}"
    stored[key]["image"]["choice"], stored[key]["text"]["choice"] = INT8, "float32"  # as if measured so here
    cache.write_text(json.dumps(stored))
    embedder.image_precision = torch.bfloat16
    again = choose_query_precision(embedder, cache)
    assert again["cached"] is True and embedder.image_precision == INT8 and embedder.text_precision is None


def test_personalised_search_reranks_the_relevant_results_for_the_shopper(demo_engine, demo_settings, capsys):
    from recommender.content import PERSONAL_DEPTH

    search, collab = demo_engine.search, demo_engine.collab
    customer = collab.example_customers(1)[0]
    taste = collab.taste(customer)
    assert collab.ranker is not None and taste.ranker_scores is not None  # the ranker's scores are a signal
    generic = search.search(text="dress", k=PERSONAL_DEPTH, group="article")
    mine = search.search(text="dress", k=10, group="article", taste=taste)
    assert set(mine["article_id"]) <= set(generic["article_id"])  # re-ranked within the relevant set
    assert mine["article_id"].tolist() != generic["article_id"].tolist()[:10]
    assert mine["for_you"].str.len().gt(0).all() and (search.search(text="dress", k=10)["for_you"] == "").all()
    # The order is relevance (falling linearly over the set) mixed half and half with the affinity.
    rows = demo_engine.catalog.article_rows(generic["article_id"])
    affinity, _ = taste.affinity(rows)
    mixed = 0.5 * (1 - np.arange(len(rows)) / len(rows)) + 0.5 * affinity
    assert mine["article_id"].tolist() == generic["article_id"].iloc[np.lexsort((np.arange(len(rows)), -mixed))[:10]].tolist()
    base = ["search", "--data", str(demo_settings.data_dir), "--artifacts", str(demo_settings.artifacts_dir)]
    assert main([*base, "--text", "dress", "-k", "10", "--group", "article", "--customer", customer, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["article_id"] for r in rows] == mine["article_id"].tolist() and rows[0]["for_you"] == mine["for_you"].iat[0]
