"""Content search: FAISS index choice, recall, filters, persistence; queries with a tiny open_clip model."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from recommender.content import FILTER_COLUMNS, SEARCH_COLUMNS, ContentSearch
from recommender.content_index import ContentIndex, build_content_index, recall_at
from recommender.embed import _fast_precision, load_embedder
from recommender.embed_job import embed_catalog
from recommender.errors import ArtifactError, InputError
from recommender.images import load_image
from recommender.lexical import build_lexical_index
from recommender.precision import AGREEMENT
from recommender.store import ArtifactStore


def clustered(n: int, dim: int = 64, clusters: int = 200, spread: float = 0.6, sample: int = 0) -> np.ndarray:
    """Points of one fixed Gaussian mixture on the sphere (the structure real embeddings have and IVF
    relies on); another ``sample`` draws other points from the same mixture."""
    centres = np.random.default_rng(0).standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(1 + sample)
    points = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def ids(n: int) -> np.ndarray:
    return np.array([f"{i:010d}" for i in range(n)])


@pytest.fixture(scope="module")
def ann_index():
    vectors = clustered(20_000)
    return vectors, ContentIndex.build(vectors, ids(len(vectors)), exact_threshold=10_000)


def test_small_catalogue_gets_an_exact_index_and_exact_rankings():
    vectors = clustered(2_000)
    index = ContentIndex.build(vectors, ids(2_000))
    assert index.params["kind"] == "exact"
    query = vectors[:5]
    rows, scores = index.search(query, 10)
    expected = np.argsort(-(query @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)  # each vector is its own best match


def test_large_catalogue_gets_ivf_with_measured_recall(ann_index):
    vectors, index = ann_index
    assert index.params["kind"] == "ivf"
    assert index.params["recall_at_100"] >= 0.95
    assert index.params["nprobe"] < index.params["nlist"]
    # Held-out queries from the same mixture, checked against brute force.
    queries = clustered(300, sample=1)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :100]
    rows, _ = index.search(queries, 100)
    assert recall_at(rows, truth) >= 0.95


def test_unstructured_vectors_keep_the_exact_index():
    # Random directions have no clusters for IVF to exploit: reaching the recall target would mean
    # probing most lists, i.e. a scan, so the index stays exact.
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((12_000, 64)).astype(np.float32)
    index = ContentIndex.build(vectors, ids(len(vectors)), exact_threshold=10_000)
    assert index.params["kind"] == "exact"
    assert max(index.params["ivf_trial"]["recall_by_nprobe"].values()) < 0.95


@pytest.mark.parametrize("kind", ["exact", "ivf"])
@pytest.mark.parametrize("share", [0.3, 0.01, 0.0004])
def test_filters_return_k_allowed_results_when_k_exist(ann_index, kind, share):
    vectors, ivf = ann_index
    index = ivf if kind == "ivf" else ContentIndex.build(vectors, ids(len(vectors)))
    allowed = np.random.default_rng(2).random(len(vectors)) < share
    n_allowed = int(allowed.sum())
    queries = vectors[:20]
    rows, scores = index.search(queries, 12, allowed)
    found = (rows >= 0).sum(axis=1)
    assert (found == min(12, n_allowed)).all()
    assert allowed[rows[rows >= 0]].all()
    subset = np.flatnonzero(allowed)
    truth = subset[np.argsort(-(queries @ vectors[subset].T), axis=1)[:, :12]]
    assert recall_at(rows, truth) >= 0.95
    assert np.isneginf(scores[rows < 0]).all()


def test_persisted_index_round_trips(ann_index, tmp_path):
    vectors, index = ann_index
    index.save(tmp_path)
    loaded = ContentIndex.load(tmp_path)
    assert loaded.params == index.params
    np.testing.assert_array_equal(loaded.article_ids, index.article_ids)
    np.testing.assert_array_equal(loaded.search(vectors[:5], 10)[0], index.search(vectors[:5], 10)[0])
    np.testing.assert_allclose(loaded.reconstruct([3, 7]), vectors[[3, 7]], atol=1e-6)


# --- queries over the demo catalogue ------------------------------------------------------------------


def build_search(catalog, embedder, root):
    store = ArtifactStore(root)
    embed_catalog(catalog, embedder, store, batch_size=32, num_workers=0)
    build_content_index(store)
    build_lexical_index(catalog, store)
    return ContentSearch.load(catalog, embedder, store), store


@pytest.fixture(scope="module")
def plain_built(demo_catalog, tmp_path_factory):
    """Random lookbook-tiny weights: enough for everything that does not need the model to understand."""
    return build_search(demo_catalog, load_embedder("lookbook-tiny", None), tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def plain(plain_built):
    return plain_built[0]


def photo_bytes(catalog, article_id: str) -> bytes:
    return catalog.image_path(article_id).read_bytes()


def with_image(catalog, count: int, seed: int = 0) -> list[str]:
    ids = catalog.articles["article_id"][catalog.articles["has_image"]].to_numpy()
    return list(np.random.default_rng(seed).choice(ids, count, replace=False))


def test_results_carry_article_metadata_and_how_each_was_indexed(plain, demo_catalog):
    results = plain.search(text="black trousers", k=400, group="article")  # every article, one result each
    assert list(results.columns) == SEARCH_COLUMNS
    assert len(results) == len(demo_catalog.articles)
    assert results["score"].is_monotonic_decreasing
    merged = results.merge(demo_catalog.articles, on="article_id", suffixes=("", "_catalogue"))
    assert (merged["product_type_name"] == merged["product_type_name_catalogue"]).all()
    assert (merged["indexed_by"] == np.where(merged["has_image"], "image", "text")).all()


def test_an_image_query_finds_the_pictured_article_first(plain, demo_catalog):
    # The catalogue was embedded in the device's fast type (bfloat16 on CPUs with native bf16) and queries
    # run in the precision timed fastest here; each agrees with float32 to precision.AGREEMENT, so the
    # photo's own vector scores 1 within that, and within rounding when both are float32.
    exact = plain.embedder.image_precision is None and _fast_precision(plain.embedder.device) is None
    for article_id in with_image(demo_catalog, 8):
        results = plain.search(images=[photo_bytes(demo_catalog, article_id)], k=3)
        assert results["article_id"][0] == article_id
        assert results["score"][0] == pytest.approx(1.0, abs=1e-4 if exact else 1 - AGREEMENT)
    # the same as a path, a PIL image and a file object
    article_id = with_image(demo_catalog, 1, seed=1)[0]
    path = demo_catalog.image_path(article_id)
    for image in (path, str(path), Image.open(path), io.BytesIO(path.read_bytes())):
        assert plain.search(images=image, k=1)["article_id"][0] == article_id


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(plain, demo_catalog):
    article_id = with_image(demo_catalog, 1, seed=2)[0]
    upright = Image.open(demo_catalog.image_path(article_id))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the sensor stored it turned the other way
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=95, exif=exif)
    assert plain.search(images=[buffer.getvalue()], k=1)["article_id"][0] == article_id


def test_more_like_this_uses_the_stored_vectors_and_leaves_the_articles_out(plain, demo_catalog):
    first, second = with_image(demo_catalog, 2, seed=3)
    rows = demo_catalog.article_rows([first, second])
    vectors = plain.index.reconstruct(np.arange(plain.index.size))
    query = vectors[rows].mean(axis=0)
    query /= np.linalg.norm(query)
    expected = np.argsort(-(vectors @ query - plain.index.offsets))  # caption-placed rows: hub offset off
    expected = demo_catalog.articles["article_id"].to_numpy()[[r for r in expected if r not in rows][:10]]
    results = plain.search(like=[first, second], k=10, group="article")
    assert list(results["article_id"]) == list(expected)


def test_mixing_weight_moves_results_from_the_text_ones_to_the_image_ones(plain, demo_catalog):
    article_id = with_image(demo_catalog, 1, seed=4)[0]
    image = photo_bytes(demo_catalog, article_id)
    text = "black trousers"
    text_only = plain.search(text=text, k=50)["article_id"].tolist()
    image_only = plain.search(images=[image], k=50)["article_id"].tolist()
    assert plain.search(text=text, images=[image], image_weight=0.0, k=50)["article_id"].tolist() == text_only
    assert plain.search(text=text, images=[image], image_weight=1.0, k=50)["article_id"].tolist() == image_only
    overlaps = []
    for weight in (0.0, 0.25, 0.5, 0.75, 1.0):
        mixed = plain.search(text=text, images=[image], image_weight=weight, k=50)["article_id"].tolist()
        overlaps.append((len(set(mixed) & set(text_only)), len(set(mixed) & set(image_only))))
    with_text, with_image_ = zip(*overlaps)
    assert list(with_text) == sorted(with_text, reverse=True) and with_text[0] > with_text[-1]
    assert list(with_image_) == sorted(with_image_) and with_image_[0] < with_image_[-1]


def test_filters_return_k_matching_results_whenever_k_match(plain, demo_catalog):
    articles = demo_catalog.articles
    results = plain.search(text="a summer outfit", filters={"colour_group_name": "Black"}, k=12)
    assert len(results) == 12 and (results["colour_group_name"] == "Black").all()

    either = plain.search(text="a summer outfit", filters={"colour_group_name": ["Red", "Blue"]}, k=40)
    assert len(either) == 40 and set(either["colour_group_name"]) == {"Red", "Blue"}

    both = {"product_type_name": "Dress", "colour_group_name": "Red"}
    matching = ((articles["product_type_name"] == "Dress") & (articles["colour_group_name"] == "Red")).sum()
    assert 0 < matching < 12
    results = plain.search(text="a summer outfit", filters=both, k=12)
    assert len(results) == matching
    assert (results["product_type_name"] == "Dress").all() and (results["colour_group_name"] == "Red").all()

    like = plain.search(like=[articles["article_id"][0]], filters={"index_group_name": "Menswear"}, k=5)
    assert len(like) == 5 and (like["index_group_name"] == "Menswear").all()


def test_filter_values_are_the_catalogue_vocabulary(plain, demo_catalog):
    values = plain.filter_values()
    assert list(values) == list(FILTER_COLUMNS)
    for column, listed in values.items():
        assert listed == sorted(demo_catalog.articles[column].unique())


def test_an_index_built_with_another_model_is_refused(demo_catalog, plain_built):
    _, store = plain_built
    other = load_embedder("ViT-B-32", None)
    with pytest.raises(ArtifactError) as error:
        ContentSearch.load(demo_catalog, other, store)
    message = str(error.value)
    assert "content_index" in message and "model: built with lookbook-tiny|random" in message
    assert "now ViT-B-32|random" in message and "python -m recommender build" in message


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()[:-600]


def tiny_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "query, message",
    [
        ({}, "nothing to search for: give a text, one or more images, or catalogue article ids"),
        ({"text": "   "}, "the search text is empty"),
        ({"text": "x" * 10_000}, "the search text is 10,000 characters long; the limit is 1,000"),
        ({"images": [b""]}, "image 1 is empty (0 bytes)"),
        ({"images": [b"%PDF-1.4 not a picture"]}, "image 1 is a PDF document, which is not accepted"),
        ({"images": [truncated_jpeg()]}, "image 1 is a corrupt or truncated image"),
        ({"images": [tiny_png(9_000, 5_000)]}, "image 1 is 9000x5000 pixels; the limit is 40 megapixels"),
        ({"like": ["0000000001"]}, "article 0000000001 is not in the catalogue"),
        ({"like": ["red-dress"]}, "'red-dress' is not an article id"),
        ({"text": "dress", "filters": {"colour_group_name": "Neon"}},
         "colour_group_name 'Neon' is not in the catalogue; known: Beige, Black, Blue"),
        ({"text": "dress", "filters": {"price": "1"}}, "cannot filter on 'price'"),
        ({"text": "dress", "k": 0}, "k must be a positive whole number"),
        ({"text": "dress", "images": [tiny_png(8, 8)], "image_weight": 2}, "image_weight must be between 0 and 1"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_specific_message(plain, query, message):
    with pytest.raises(InputError) as error:
        plain.search(**query)
    assert message in str(error.value)


def test_bad_files_get_a_message_naming_them(plain, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    with pytest.raises(InputError, match="notes.txt is not an image"):
        plain.search(images=[notes])
    with pytest.raises(InputError, match="no such image file"):
        plain.search(images=[tmp_path / "missing.jpg"])
    with pytest.raises(InputError, match="notes.txt is not an image"):
        plain.predict_attributes(notes)


def test_real_hm_photos_and_rows_without_photos(hm_sample_dir, tmp_path):
    """A slice of the real H&M sample: JPEG product photos decoded in loader workers, 40% of the
    articles without a photo placed by caption and marked, a photo query finding its article."""
    import pandas as pd

    from recommender.catalog import load_catalog

    data = tmp_path / "hm_slice"
    data.mkdir()
    articles = pd.read_csv(hm_sample_dir / "articles.csv", dtype=str, keep_default_na=False).head(200)
    articles.to_csv(data / "articles.csv", index=False)
    for article_id in articles["article_id"]:
        photo = hm_sample_dir / "images" / article_id[:3] / f"{article_id}.jpg"
        if photo.is_file():
            (data / "images" / article_id[:3]).mkdir(parents=True, exist_ok=True)
            (data / "images" / article_id[:3] / photo.name).symlink_to(photo)
    catalog = load_catalog(data)
    has_image = catalog.articles["has_image"]
    assert 0 < has_image.sum() < len(has_image)

    search, _ = build_search(catalog, load_embedder("lookbook-tiny", None), tmp_path / "artifacts")
    assert search.index_meta["by_image"] == has_image.sum() and search.index_meta["by_text"] == (~has_image).sum()
    for article_id in catalog.articles["article_id"][has_image][:5]:
        assert search.search(images=[photo_bytes(catalog, article_id)], k=1)["article_id"][0] == article_id
    results = search.search(text="black jersey top", k=len(catalog.articles))
    assert (results["indexed_by"] == np.where(results["has_image"], "image", "text")).all()


# --- what a trained model makes of it ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(demo_catalog, tmp_path_factory):
    """lookbook-tiny trained on the demo catalogue's image-caption pairs (as the offline build does)."""
    from recommender.train_clip import train_clip

    folder = tmp_path_factory.mktemp("trained")
    checkpoint = train_clip(demo_catalog, out=folder / "model.pt", batch_size=64)  # default epochs
    return build_search(demo_catalog, load_embedder("lookbook-tiny", str(checkpoint)), folder / "artifacts")[0]


def colour_type_pairs(catalog, minimum: int = 3) -> list[tuple[str, str]]:
    sizes = catalog.articles.groupby(["colour_group_name", "product_type_name"]).size()
    return list(sizes[sizes >= minimum].index)


def test_text_queries_rank_articles_of_that_colour_and_type_first(trained, demo_catalog):
    colour_hits, type_hits = [], []
    for colour, ptype in colour_type_pairs(demo_catalog):
        top = trained.search(text=f"{colour.lower()} {ptype.lower()}", k=5, mode="visual")
        colour_hits.append((top["colour_group_name"] == colour).mean())
        type_hits.append((top["product_type_name"] == ptype).mean())
    print(f"precision@5: colour {np.mean(colour_hits):.2f}, type {np.mean(type_hits):.2f}")
    # chance: 1/16 colours, 1/12 types
    assert np.mean(colour_hits) >= 0.2 and np.mean(type_hits) >= 0.25
    top = trained.search(text="red dress", k=5, mode="visual")
    red, dress = top["colour_group_name"] == "Red", top["product_type_name"] == "Dress"
    assert (red & dress).sum() >= 2 and (red | dress).all()


def test_a_negative_text_pushes_that_colour_out(trained):
    before = after = kept_before = kept_after = 0
    for ptype in ("Dress", "T-shirt", "Trousers", "Sweater", "Skirt", "Jacket"):
        for colour in ("Red", "Black", "White", "Dark Blue", "Beige"):
            plain_results = trained.search(text=ptype.lower(), k=20, mode="visual")
            pushed = trained.search(text=ptype.lower(), negative=colour.lower(), k=20, mode="visual")
            before += (plain_results["colour_group_name"] == colour).sum()
            after += (pushed["colour_group_name"] == colour).sum()
            kept_before += (plain_results["product_type_name"] == ptype).sum()
            kept_after += (pushed["product_type_name"] == ptype).sum()
    print(f"negated colour in top 20: {before} -> {after}; asked-for type: {kept_before} -> {kept_after}")
    assert after <= before / 2
    assert kept_after >= 0.8 * kept_before


def test_more_like_this_returns_articles_of_the_same_type(trained, demo_catalog):
    articles = demo_catalog.articles
    same = []
    for article_id in with_image(demo_catalog, 40, seed=5):
        results = trained.search(like=[article_id], k=5)
        assert article_id not in set(results["article_id"])
        same.append((results["product_type_name"] == articles["product_type_name"][demo_catalog.article_row(article_id)]).mean())
    print(f"more like this, same type @5: {np.mean(same):.2f}")
    assert np.mean(same) >= 0.3  # chance: 1/12


def test_articles_without_an_image_are_found_by_their_description(trained, demo_catalog):
    """Searched by its colour and type, an article without a photo comes after no article that matches
    none of those words (nothing passes it by looks alone; photographed articles with the same words may,
    having looks as well), without crowding photographed articles out of other queries."""
    articles = demo_catalog.articles

    def rank_for_own_description(row) -> int:
        results = trained.search(text=f"{row['colour_group_name']} {row['product_type_name']}".lower(), k=len(articles))
        position = int(np.flatnonzero(results["article_id"] == row["article_id"])[0])
        assert results["indexed_by"][position] == ("image" if row["has_image"] else "text")
        if not row["has_image"]:
            assert results["matched"][:position].map(bool).all(), (row["article_id"], position)
        return position

    text_only = [rank_for_own_description(row) for _, row in articles[~articles["has_image"]].iterrows()]
    photographed = [rank_for_own_description(row) for _, row in articles[articles["has_image"]].sample(60, random_state=0).iterrows()]
    print(f"median rank for own description: without image {np.median(text_only)}, with {np.median(photographed)}")
    shares = [(trained.search(text=f"{c} {t}".lower(), k=12)["indexed_by"] == "text").mean()
              for c, t in colour_type_pairs(demo_catalog)]  # fmt: skip
    assert np.mean(shares) <= 3 * len(text_only) / len(articles)


def test_hybrid_ranks_only_photographed_articles_by_their_looks(plain, demo_catalog):
    """Hand-made index: three articles without a photo sit exactly on the query's text vector, the rest
    far from it, and no article has the query's word. By looks alone (visual mode) the three come first;
    in hybrid, whose words' visual leg ranks photographed articles only, they do not come at all: their
    vectors are borrowed, and they would have to be found by words they lack."""
    articles = demo_catalog.articles
    query = "parasol"
    assert not demo_catalog.articles.astype(str).apply(lambda c: c.str.lower().str.contains(query)).any().any()
    vector = plain.embedder.encode_text([query])[0]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(articles), len(vector))).astype(np.float32)
    vectors -= np.outer(vectors @ vector, vector)
    planted = articles.index[~articles["has_image"]][:3].to_numpy()
    vectors[planted] = vector
    indexed_by = np.where(articles["has_image"], "image", "text")
    search = ContentSearch(demo_catalog, plain.embedder,
                           ContentIndex.build(vectors, articles["article_id"].to_numpy(), indexed_by), plain.lexical)
    planted_ids = set(articles["article_id"][planted])
    assert set(search.search(text=query, k=3, mode="visual")["article_id"]) == planted_ids
    hybrid = search.search(text=query, k=10)
    assert len(hybrid) == 10 and hybrid["has_image"].all() and not planted_ids & set(hybrid["article_id"])


def test_zero_shot_attributes_name_what_the_photo_shows(trained, demo_catalog):
    articles = demo_catalog.articles
    correct = {column: [] for column in ("product_type_name", "colour_group_name", "graphical_appearance_name", "index_group_name")}
    for article_id in with_image(demo_catalog, 40, seed=6):
        predicted = trained.predict_attributes(demo_catalog.image_path(article_id), neighbour_share=0.0)  # the model alone
        assert list(predicted) == list(correct)
        row = articles.iloc[demo_catalog.article_row(article_id)]
        for column, top in predicted.items():
            values, probabilities = zip(*top)
            assert len(top) == 3 and set(values) <= set(articles[column])
            assert list(probabilities) == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6
            correct[column].append(values[0] == row[column])
    accuracy = {column: float(np.mean(hits)) for column, hits in correct.items()}
    print(f"zero-shot top-1 accuracy: {accuracy}")
    assert accuracy["product_type_name"] >= 0.25 and accuracy["colour_group_name"] >= 0.15  # chance: 1/12, 1/16


def test_a_photo_and_its_mirror_image_get_the_same_attributes(trained, demo_catalog, tmp_path):
    """Training flips photos, so a prediction averages the photo and its mirror image: which way a garment
    faces says nothing about what it is."""
    for article_id in with_image(demo_catalog, 3, seed=8):
        picture = load_image(demo_catalog.image_path(article_id))
        mirrored = tmp_path / f"{article_id}-mirrored.png"
        picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
        original = trained.predict_attributes(demo_catalog.image_path(article_id))
        flipped = trained.predict_attributes(mirrored)
        for column, top in original.items():
            assert [v for v, _ in flipped[column]] == [v for v, _ in top]
            assert [p for _, p in flipped[column]] == pytest.approx([p for _, p in top], abs=2e-3)


def test_alike_catalogue_photos_vote_on_a_photos_attributes(plain, demo_catalog):
    """Hand-made index: three articles of one product type sit exactly on the photo's vector, the rest
    far away. Their label wins when the votes carry the prediction, and is absent from it otherwise
    only by the model's own say."""
    articles = demo_catalog.articles
    photo = demo_catalog.image_path(with_image(demo_catalog, 1, seed=3)[0])
    vector = plain.embedder.encode_images([load_image(photo)])[0]
    truth = articles["product_type_name"].iloc[demo_catalog.article_row(photo.stem)]
    planted = articles.index[(articles["product_type_name"] != truth) & articles["has_image"]][:3]
    label = articles["product_type_name"].iloc[planted[0]]
    planted = articles.index[(articles["product_type_name"] == label) & articles["has_image"]][:3].to_numpy()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(articles), len(vector))).astype(np.float32)
    vectors -= np.outer(vectors @ vector, vector)  # orthogonal to the photo: far from it
    vectors[planted] = vector
    search = ContentSearch(demo_catalog, plain.embedder, ContentIndex.build(vectors, articles["article_id"].to_numpy()))
    voted = search.predict_attributes(photo, neighbour_share=1.0)["product_type_name"]
    assert voted[0] == (label, pytest.approx(1.0, abs=1e-6))  # the 3 planted outweigh 17 orthogonal ones
    model_only = search.predict_attributes(photo, neighbour_share=0.0)["product_type_name"]
    mixed = dict(search.predict_attributes(photo, neighbour_share=0.5)["product_type_name"])
    assert mixed[label] >= 0.5 and dict(model_only).get(label, 0.0) <= 0.5
