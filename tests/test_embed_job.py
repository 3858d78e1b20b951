"""The catalogue embedding job: image vs caption vectors, resuming after a kill, unreadable files."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from recommender.captions import caption
from recommender.catalog import load_catalog
from recommender.embed import load_embedder
from recommender.embed_job import BATCHES_PER_CHUNK, NEIGHBOURS, embed_catalog
from recommender.images import load_image
from recommender.store import ArtifactStore

BATCH = 8
CHUNK = BATCH * BATCHES_PER_CHUNK


class Counting:
    """A real embedder that also counts what it is asked to encode."""

    def __init__(self, embedder):
        self._embedder = embedder
        self.images = 0
        self.texts = 0

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode_image_tensors(self, batch):
        self.images += len(batch)
        return self._embedder.encode_image_tensors(batch)

    def encode_text(self, texts):
        self.texts += len(texts)
        return self._embedder.encode_text(texts)


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("lookbook-tiny", None)


@pytest.fixture(scope="module")
def embedded(demo_catalog, embedder, tmp_path_factory):
    store = ArtifactStore(tmp_path_factory.mktemp("artifacts"))
    embed_catalog(demo_catalog, embedder, store, batch_size=BATCH, num_workers=1)
    return store


def load(store, name="embeddings"):
    artifact = store.load(name)
    return artifact, {f: np.load(artifact.path / f"{f}.npy") for f in ("vectors", "article_ids", "indexed_by")}


def test_articles_are_embedded_by_image_else_by_caption(demo_catalog, embedder, embedded):
    articles = demo_catalog.articles
    artifact, files = load(embedded)
    vectors = files["vectors"]
    assert artifact.meta["model"] == embedder.fingerprint and artifact.meta["data"] == demo_catalog.fingerprint()
    assert vectors.shape == (len(articles), embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(files["article_ids"], articles["article_id"])
    np.testing.assert_array_equal(files["indexed_by"], np.where(articles["has_image"], "image", "text"))
    assert artifact.meta["counts"] == {
        "image": int(articles["has_image"].sum()), "text": int((~articles["has_image"]).sum()), "unreadable_images": 0,
        "embedded_images": int(articles["has_image"].sum()), "embedded_captions": len(articles),
    }  # fmt: skip

    # Image rows hold exactly the image's embedding (decoded in a worker, batched).
    some = np.flatnonzero(articles["has_image"])[[0, 57, -1]]
    direct = embedder.encode_images([load_image(demo_catalog.image_path(articles["article_id"][r])) for r in some])
    np.testing.assert_allclose(vectors[some], direct, atol=1e-5)

    # Text rows are placed among the image vectors (one modality in the index): each is the mean image
    # vector of the NEIGHBOURS articles whose captions are nearest to its own.
    text_rows = np.flatnonzero(~articles["has_image"])
    image_rows = np.flatnonzero(articles["has_image"])
    captions = embedder.encode_text([caption(articles.iloc[r]) for r in range(len(articles))])
    nearest = image_rows[np.argsort(-(captions[text_rows] @ captions[image_rows].T), axis=1)[:, :NEIGHBOURS]]
    borrowed = vectors[nearest].mean(axis=1)
    np.testing.assert_allclose(vectors[text_rows], borrowed / np.linalg.norm(borrowed, axis=1, keepdims=True), atol=1e-5)
    centre = vectors[image_rows].mean(axis=0)
    assert (vectors[text_rows] @ centre).min() > (captions @ centre).max()  # raw captions sit elsewhere


def test_a_current_artifact_is_not_recomputed(demo_catalog, embedder, embedded):
    folder = embedded.load("embeddings").path
    counting = Counting(embedder)
    embed_catalog(demo_catalog, counting, embedded, batch_size=BATCH, num_workers=1)
    assert counting.images == counting.texts == 0
    assert embedded.load("embeddings").path == folder


def test_only_changed_photos_and_captions_are_embedded_again(demo_catalog, embedder, embedded, tmp_path):
    shutil.copytree(embedded.root, tmp_path / "artifacts")
    store = ArtifactStore(tmp_path / "artifacts")
    articles = demo_catalog.articles.copy()
    renamed, rephotographed = np.flatnonzero(articles["has_image"])[[5, 9]]
    articles.loc[renamed, "prod_name"] = "Renamed trousers"
    digests = {**demo_catalog.image_digests, articles["article_id"][rephotographed]: "new photo bytes"}
    edited = dataclasses.replace(demo_catalog, articles=articles, data_fingerprint="edited", image_digests=digests)
    counting, log = Counting(embedder), []
    embed_catalog(edited, counting, store, batch_size=BATCH, num_workers=1, log=log.append)
    assert (counting.images, counting.texts) == (1, 1)  # the new photo; the renamed article's caption
    assert log == [f"embeddings: 1 of {int(articles['has_image'].sum())} photos are new or changed; "
                   f"the other photos and every unchanged caption reuse the previous vectors"]
    artifact, files = load(store)
    _, before = load(embedded)
    assert artifact.meta["counts"]["embedded_images"] == 1 and artifact.meta["counts"]["embedded_captions"] == 1
    image_rows = np.flatnonzero(articles["has_image"])
    np.testing.assert_allclose(files["vectors"][image_rows], before["vectors"][image_rows], atol=1e-5)


def test_a_killed_job_resumes_with_only_the_missing_chunks(demo_catalog, embedder, embedded, tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    image_batches = []

    def kill_in_second_chunk(fraction, message):
        if message.startswith("embedding images"):
            image_batches.append(message)
            if len(image_batches) == BATCHES_PER_CHUNK + 2:
                raise Killed

    with pytest.raises(Killed):
        embed_catalog(demo_catalog, embedder, store, batch_size=BATCH, num_workers=1, progress=kill_in_second_chunk)
    assert store.manifest("embeddings") is None
    assert len(list((tmp_path / "artifacts" / "scratch" / "embeddings").glob("*/image-*.npy"))) == 1

    counting = Counting(embedder)
    messages = []
    embed_catalog(demo_catalog, counting, store, batch_size=BATCH, num_workers=1,
                  progress=lambda fraction, message: messages.append(message))  # fmt: skip
    n_images = int(demo_catalog.articles["has_image"].sum())
    assert counting.images == n_images - CHUNK
    assert messages[0] == f"resuming images: {CHUNK:,}/{n_images:,} already embedded"
    assert "items/s" in messages[1] and "ETA" in messages[1]
    _, resumed = load(store)
    _, complete = load(embedded)
    np.testing.assert_allclose(resumed["vectors"], complete["vectors"], atol=1e-5)
    assert not (tmp_path / "artifacts" / "scratch" / "embeddings").exists()


def test_partial_work_for_another_model_is_discarded(demo_catalog, embedder, embedded, tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    stale = store.scratch("embeddings") / "0123456789abcdef"
    stale.mkdir()
    np.save(stale / "image-000000000.npy", np.ones((CHUNK, embedder.dim), np.float32))
    embed_catalog(demo_catalog, embedder, store, batch_size=BATCH, num_workers=0)
    np.testing.assert_allclose(load(store)[1]["vectors"], load(embedded)[1]["vectors"], atol=1e-5)


def test_an_unreadable_image_file_falls_back_to_the_caption(demo_dir, embedder, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    catalog = load_catalog(data)
    broken, empty = catalog.articles["article_id"][np.flatnonzero(catalog.articles["has_image"])[[3, 4]]]
    catalog.image_path(broken).write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    catalog.image_path(empty).write_bytes(b"")  # the catalogue reads a 0-byte file as "no image"
    catalog = load_catalog(data)
    store = ArtifactStore(tmp_path / "artifacts")
    embed_catalog(catalog, embedder, store, batch_size=BATCH, num_workers=1)
    artifact, files = load(store)
    indexed_by = dict(zip(files["article_ids"], files["indexed_by"]))
    assert indexed_by[broken] == indexed_by[empty] == "text"
    assert artifact.meta["counts"]["unreadable_images"] == 1
    assert (artifact.path / "unreadable_images.txt").read_text() == f"{broken}\n"
