"""Content search over CLIP vectors: a FAISS index chosen by catalogue size, and the queries on top of it.

Vectors are L2-normalised, so inner product = cosine similarity. The FAISS id of a vector is the
article's row in `Catalog.articles`. All vectors are image vectors: articles without a photo are placed
by their caption among the images of similar articles (embed_job.py) and reported as
``indexed_by = "text"``.

Index choice (`ContentIndex.build`):
- fewer than `EXACT_THRESHOLD` vectors: `IndexFlatIP`, exact (a query scans the catalogue in a few ms);
- more: `IndexIVFFlat` with ~4·√n lists, and `nprobe` *calibrated on the catalogue's own vectors*: the
  smallest power of two whose recall@100 against exact search reaches `RECALL_TARGET`. When even that
  needs more than a quarter of the lists (vectors without cluster structure, e.g. random ones), IVF
  would cost as much as a scan, so the exact index is kept. Kind, nprobe and the measured recall are
  stored with the index.

Queries (`ContentSearch.search`) follow HM-search: text and example vectors (query images, and the
stored vectors of "more like this" articles) are each averaged and renormalised, then mixed as
``(1 - image_weight)·text + image_weight·examples`` and renormalised. A negative text is pushed away:
``q ← normalise(q − NEGATIVE_WEIGHT·negative)``. Filters and the exclusion of the "like" articles
themselves go to FAISS as an `IDSelectorBitmap`, so k results come back whenever k articles match.
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import faiss
import numpy as np
import pandas as pd

from .errors import ArtifactError, InputError

Progress = Callable[[float, str], None]

# Below this many vectors a flat scan is fast and exact (30k x 512: ~4 ms of CPU per query, 105k:
# ~11 ms; bench/bench_content.py); from it on IVF is tried.
EXACT_THRESHOLD = 30_000
RECALL_TARGET = 0.95
RECALL_AT = 100
CALIBRATION_QUERIES = 256
NEGATIVE_WEIGHT = 0.5

FILTER_COLUMNS = ("index_group_name", "product_group_name", "product_type_name", "colour_group_name")
RESULT_COLUMNS = [
    "article_id", "score", "prod_name", "product_type_name", "product_group_name", "colour_group_name",
    "graphical_appearance_name", "index_group_name", "detail_desc", "has_image", "indexed_by",
]  # fmt: skip
# Zero-shot attributes: the catalogue's own values of each column, each embedded as the mean of its
# prompts (CLIP's prompt ensembling): the bare value, as in the captions a catalogue-trained model
# learnt from, and a sentence of the kind pretrained CLIP models saw.
ATTRIBUTE_PROMPTS = {
    "product_type_name": ("{}", "a photo of a {}"),
    "colour_group_name": ("{}", "a photo of {} clothing"),
    "graphical_appearance_name": ("{}", "a photo of a {} garment"),
    "index_group_name": ("{}", "a photo of {} fashion"),
}
ATTRIBUTE_TOP = 3
UNLABELLED = {"Unknown", "undefined", ""}  # H&M placeholders, not something to predict


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class ContentIndex:
    """A FAISS index over article vectors plus the row → article id mapping."""

    def __init__(self, index: faiss.Index, article_ids: np.ndarray, indexed_by: np.ndarray, params: dict):
        if index.ntotal != len(article_ids) or len(article_ids) != len(indexed_by):
            raise ArtifactError(
                f"content index holds {index.ntotal} vectors for {len(article_ids)} article ids; "
                "rebuild with `python -m recommender build`"
            )
        self.index = index
        self.article_ids = np.asarray(article_ids).astype(str)
        self.indexed_by = np.asarray(indexed_by).astype(str)
        self.params = params
        self._ivf = faiss.try_extract_index_ivf(index) if params["kind"] == "ivf" else None

    @property
    def size(self) -> int:
        return self.index.ntotal

    @property
    def dim(self) -> int:
        return self.index.d

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        article_ids,
        indexed_by=None,
        *,
        exact_threshold: int = EXACT_THRESHOLD,
        progress: Progress | None = None,
    ) -> "ContentIndex":
        vectors = np.ascontiguousarray(_normalise(vectors))
        n, dim = vectors.shape
        indexed_by = np.full(n, "image") if indexed_by is None else np.asarray(indexed_by)
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        params = {"kind": "exact", "n": n}
        if n >= exact_threshold:
            ivf, trial = _calibrated_ivf(vectors, flat, progress)
            if ivf is not None:
                return cls(ivf, article_ids, indexed_by, {**trial, "n": n})
            params["ivf_trial"] = trial
        return cls(flat, article_ids, indexed_by, params)

    # --- persistence ----------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        faiss.write_index(self.index, str(folder / "index.faiss"))
        np.save(folder / "article_ids.npy", self.article_ids)
        np.save(folder / "indexed_by.npy", self.indexed_by)
        (folder / "params.json").write_text(json.dumps(self.params, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> "ContentIndex":
        folder = Path(folder)
        try:
            index = faiss.read_index(str(folder / "index.faiss"))
            article_ids = np.load(folder / "article_ids.npy")
            indexed_by = np.load(folder / "indexed_by.npy")
            params = json.loads((folder / "params.json").read_text())
        except (OSError, RuntimeError, ValueError) as exc:
            raise ArtifactError(
                f"content index in {folder} is unreadable ({exc}); rebuild with `python -m recommender build`"
            ) from exc
        return cls(index, article_ids, indexed_by, params)

    # --- queries --------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None):
        """Top-k rows and cosine scores per query; ``allowed`` is a boolean mask over rows.

        Returns (rows, scores), each (n_queries, k), padded with -1 / -inf where fewer than k rows
        are allowed. With a mask, IVF probes proportionally more lists (the same number of *allowed*
        candidates as an unfiltered query) and, should that still give fewer than k, all of them: an
        exact search over the allowed subset.
        """
        queries = np.ascontiguousarray(_normalise(np.atleast_2d(queries)))
        k = max(1, min(int(k), self.size))
        if allowed is None:
            selector, wanted, nprobe = None, k, self.params.get("nprobe")
        else:
            allowed = np.asarray(allowed, dtype=bool)
            n_allowed = int(allowed.sum())
            if n_allowed == 0:
                return np.full((len(queries), k), -1), np.full((len(queries), k), -np.inf, np.float32)
            bitmap = np.packbits(allowed, bitorder="little")  # FAISS reads bit i as (byte i>>3, bit i&7)
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
            wanted = min(k, n_allowed)
            nprobe = self.params.get("nprobe")
            if nprobe:
                nprobe = min(self._ivf.nlist, math.ceil(nprobe * self.size / n_allowed))
        with _threads(1 if len(queries) == 1 else faiss.omp_get_max_threads()):
            scores, rows = self._search(queries, k, selector, nprobe)
            if nprobe and nprobe < self._ivf.nlist and ((rows >= 0).sum(axis=1) < wanted).any():
                scores, rows = self._search(queries, k, selector, self._ivf.nlist)
        scores[rows < 0] = -np.inf
        return rows, scores

    def _search(self, queries, k, selector, nprobe):
        if self._ivf is not None:
            params = faiss.SearchParametersIVF(nprobe=int(nprobe))
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return self.index.search(queries, k, params=params)

    def reconstruct(self, rows) -> np.ndarray:
        """The stored vectors of these rows (IVF keeps a direct map for this)."""
        return self.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """FAISS's OpenMP threads for this (Python) thread only: OpenMP keeps the setting per thread.

    One query gains nothing from threads: FAISS splits the scan and the threads' spin-waiting costs
    more than it saves (flat 10k x 512: 1 ms of CPU single-threaded, 16 ms with two threads).
    """
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _calibrated_ivf(vectors: np.ndarray, flat: faiss.IndexFlatIP, progress: Progress | None):
    """IVF with the smallest nprobe reaching RECALL_TARGET on perturbed catalogue vectors, or None."""
    n, dim = vectors.shape
    # ~4·sqrt(n) lists (FAISS's guideline), at least 39 training vectors each.
    nlist = min(2 ** round(math.log2(4 * math.sqrt(n))), 2 ** int(math.log2(max(1, n // 39))))
    report = progress or (lambda fraction, message: None)
    report(0.0, f"training IVF ({nlist} lists) on {n:,} vectors")
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.max_points_per_centroid = 64  # a 64-per-list sample is plenty for the centroids, 4x faster
    ivf.cp.seed = 1234
    ivf.train(vectors)
    ivf.add(vectors)
    ivf.make_direct_map()  # reconstruct() for "more like this"

    # Queries near the data but not on it: catalogue vectors plus as much isotropic noise, renormalised
    # (cosine ~0.7 to their source), so neighbour lists span cluster borders as real queries do.
    rng = np.random.default_rng(0)
    sources = vectors[rng.choice(n, min(CALIBRATION_QUERIES, n), replace=False)]
    queries = _normalise(sources + _normalise(rng.standard_normal(sources.shape)))
    report(0.6, "measuring recall against exact search")
    _, truth = flat.search(queries, RECALL_AT)
    trials = {}
    nprobe = 1
    while nprobe <= nlist // 4:
        _, found = ivf.search(queries, RECALL_AT, params=faiss.SearchParametersIVF(nprobe=nprobe))
        trials[nprobe] = recall_at(found, truth)
        if trials[nprobe] >= RECALL_TARGET:
            ivf.nprobe = nprobe
            report(1.0, f"IVF nprobe={nprobe}: recall@{RECALL_AT} {trials[nprobe]:.3f}")
            params = {"kind": "ivf", "nlist": nlist, "nprobe": nprobe, "recall_at_100": trials[nprobe]}
            return ivf, params
        nprobe *= 2
    report(1.0, f"IVF needs more than {nlist // 4} of {nlist} lists for recall {RECALL_TARGET}; exact search")
    return None, {"nlist": nlist, "recall_by_nprobe": trials}


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each true neighbour list that was found."""
    hits = [len(np.intersect1d(f[f >= 0], t[t >= 0])) / max(1, (t >= 0).sum()) for f, t in zip(found, truth)]
    return float(np.mean(hits))


def build_content_index(store, *, progress: Progress | None = None) -> None:
    """Artifact "content_index" from the current "embeddings"; skipped when already built from them."""
    embeddings = store.load("embeddings")
    expect = {
        "model": embeddings.meta["model"],
        "data": embeddings.meta["data"],
        "embeddings": embeddings.path.name,
        "exact_threshold": EXACT_THRESHOLD,
        "recall_target": RECALL_TARGET,
    }
    if store.is_current("content_index", expect):
        return
    vectors = np.load(embeddings.path / "vectors.npy")
    index = ContentIndex.build(
        vectors,
        np.load(embeddings.path / "article_ids.npy"),
        np.load(embeddings.path / "indexed_by.npy"),
        progress=progress,
    )
    with store.write("content_index", {**expect, "index": index.params}) as folder:
        index.save(folder)
    if progress:
        progress(1.0, f"content index: {index.params['kind']} search over {index.size:,} articles")


class ContentSearch:
    """Text / image / mixed / more-like-this queries with filters, over one catalogue and one model."""

    def __init__(self, catalog, embedder, index: ContentIndex):
        articles = catalog.articles
        if not np.array_equal(index.article_ids, articles["article_id"].to_numpy(dtype=str)):
            raise ArtifactError(
                f"the content index lists other articles than {catalog.root}; rebuild with "
                f"`python -m recommender build --data {catalog.root}`"
            )
        if index.dim != embedder.dim:
            raise ArtifactError(
                f"the content index holds {index.dim}-d vectors but {embedder.model_name} makes "
                f"{embedder.dim}-d ones; rebuild with `python -m recommender build --data {catalog.root}`"
            )
        self.catalog = catalog
        self.embedder = embedder
        self.index = index
        # Plain numpy columns: taking 12 rows from them is ~10x faster than DataFrame.iloc on
        # Arrow-backed strings (pandas 3), which mattered against the 30 ms text-query budget.
        self._columns = {
            c: index.indexed_by if c == "indexed_by" else articles[c].to_numpy(dtype=bool if c == "has_image" else object)
            for c in RESULT_COLUMNS
            if c != "score"
        }
        self._codes = {c: pd.Categorical(articles[c].astype(str)) for c in FILTER_COLUMNS}
        self._attribute_vectors: dict[str, tuple[list[str], np.ndarray]] | None = None
        self.index_meta = {
            **index.params,
            "by_image": int((index.indexed_by == "image").sum()),
            "by_text": int((index.indexed_by == "text").sum()),
        }

    @classmethod
    def load(cls, catalog, embedder, store) -> "ContentSearch":
        """The stored index, refused (ArtifactError) when built with another model or other data."""
        artifact = store.load("content_index", {"model": embedder.fingerprint, "data": catalog.fingerprint()})
        return cls(catalog, embedder, ContentIndex.load(artifact.path))

    def filter_values(self) -> dict[str, list[str]]:
        return {c: sorted(codes.categories) for c, codes in self._codes.items()}

    def search(
        self,
        text: str | None = None,
        images: Iterable = (),
        image_weight: float = 0.5,
        negative: str | None = None,
        like: Iterable[str] = (),
        filters: Mapping[str, str | Iterable[str]] | None = None,
        k: int = 12,
    ) -> pd.DataFrame:
        if isinstance(images, (bytes, str, Path)) or hasattr(images, "read") or hasattr(images, "mode"):
            images = [images]
        if isinstance(like, str):
            like = [like]
        images, like = list(images), list(like)
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive whole number, not {k!r}")
        if not 0.0 <= float(image_weight) <= 1.0:
            raise InputError(f"image_weight must be between 0 and 1, not {image_weight}")
        if isinstance(text, str) and not text.strip() and (images or like):
            text = None  # an empty text box next to a photo
        if text is None and not (images or like):
            raise InputError("nothing to search for: give a text, one or more images, or catalogue article ids")
        if text is not None:
            text = self.embedder.validate_text(text)
        if isinstance(negative, str) and not negative.strip():
            negative = None

        like_rows = self.catalog.article_rows(like) if like else np.empty(0, dtype=np.int64)
        allowed = self._allowed(filters)
        if len(like_rows):
            allowed = np.ones(self.index.size, dtype=bool) if allowed is None else allowed
            allowed[like_rows] = False

        examples = []
        if images:
            examples.append(self.embedder.encode_images(_load_images(images)))
        if len(like_rows):
            examples.append(self.index.reconstruct(like_rows))
        parts = []
        if text is not None:
            parts.append((1.0 - image_weight, self.embedder.encode_text([text])[0]))
        if examples:
            parts.append((image_weight, _normalise(np.concatenate(examples).mean(axis=0))))
        query = parts[0][1] if len(parts) == 1 else sum(w * v for w, v in parts)
        query = _normalise(query)
        if negative is not None:
            push = self.embedder.encode_text([self.embedder.validate_text(negative)])[0]
            query = _normalise(query - NEGATIVE_WEIGHT * push)

        rows, scores = self.index.search(query, k, allowed)
        keep = rows[0] >= 0
        found = rows[0][keep]
        columns = {c: values[found] for c, values in self._columns.items()}
        return pd.DataFrame({"article_id": columns.pop("article_id"), "score": scores[0][keep].astype(float), **columns})

    def _allowed(self, filters) -> np.ndarray | None:
        """Boolean row mask for {column: value or values}; InputError for unknown columns or values."""
        if not filters:
            return None
        allowed = np.ones(self.index.size, dtype=bool)
        for column, values in filters.items():
            if column not in self._codes:
                raise InputError(f"cannot filter on '{column}'; filters: {', '.join(FILTER_COLUMNS)}")
            values = [values] if isinstance(values, str) else list(values)
            codes = self._codes[column]
            known = set(codes.categories)
            for value in values:
                if value not in known:
                    listing = ", ".join(sorted(known)[:30]) + (", …" if len(known) > 30 else "")
                    raise InputError(f"{column} '{value}' is not in the catalogue; known: {listing}")
            if values:
                allowed &= np.isin(codes.codes, codes.categories.get_indexer(values))
        return allowed

    def predict_attributes(self, image) -> dict[str, list[tuple[str, float]]]:
        """Zero-shot: the top values of each attribute for an image, with softmax probabilities."""
        vector = self.embedder.encode_images(_load_images([image]))[0]
        scale = float(self.embedder.model.logit_scale.detach().exp())  # the temperature CLIP was trained with
        predictions = {}
        for column, (values, prompts) in self._attribute_prompt_vectors().items():
            logits = scale * (prompts @ vector)
            probabilities = np.exp(logits - logits.max())
            probabilities /= probabilities.sum()
            top = np.argsort(-probabilities)[:ATTRIBUTE_TOP]
            predictions[column] = [(values[i], float(probabilities[i])) for i in top]
        return predictions

    def _attribute_prompt_vectors(self) -> dict[str, tuple[list[str], np.ndarray]]:
        if self._attribute_vectors is None:
            self._attribute_vectors = {}
            for column, templates in ATTRIBUTE_PROMPTS.items():
                values = sorted(set(self.catalog.articles[column].astype(str)) - UNLABELLED)
                prompts = [self.embedder.encode_text([t.format(v.lower()) for v in values]) for t in templates]
                self._attribute_vectors[column] = (values, _normalise(np.mean(prompts, axis=0)))
        return self._attribute_vectors


def _load_images(images: list) -> list:
    from .images import load_image

    loaded = []
    for number, image in enumerate(images, 1):
        if hasattr(image, "mode") and hasattr(image, "convert"):  # already a PIL image
            loaded.append(image.convert("RGB"))
        else:
            name = Path(image).name if isinstance(image, (str, Path)) else getattr(image, "name", f"image {number}")
            loaded.append(load_image(image, name=name))
    return loaded
