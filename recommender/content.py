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
That is the visual leg (mode "visual"); a text query in mode "hybrid" (the default) is also ranked by
BM25 (lexical.py) and the rankings are fused (search.py); every result says why (`matched`, `looks_alike`).
"""
from __future__ import annotations

import json
import math
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import faiss
import numpy as np
import pandas as pd
from PIL import Image

from .errors import ArtifactError, InputError
from .lexical import FIELD_WEIGHTS as LEXICAL_FIELDS
from .search import (
    DEPTH,
    LEXICAL_SHARE,
    LOOKS_ALIKE_TOP,
    MODES,
    Ranking,
    lexical_ranking,
    lexical_scores,
    reciprocal_rank_fusion,
)

Progress = Callable[[float, str], None]

# Below this many vectors a flat scan is fast and exact (bench/bench_content.py times it); from it on
# IVF is tried.
EXACT_THRESHOLD = 30_000
RECALL_TARGET = 0.95
RECALL_AT = 100
CALIBRATION_QUERIES = 256
NEGATIVE_WEIGHT = 0.5
HUB_PROBES = 256

FILTER_COLUMNS = ("index_group_name", "product_group_name", "product_type_name", "colour_group_name")
RESULT_COLUMNS = [
    "article_id", "score", "prod_name", "product_type_name", "product_group_name", "colour_group_name",
    "graphical_appearance_name", "index_group_name", "detail_desc", "has_image", "indexed_by",
]  # fmt: skip
SEARCH_COLUMNS = RESULT_COLUMNS + ["matched", "looks_alike"]  # why each result: search.py
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
ATTRIBUTE_NEIGHBOURS = 20  # the most alike catalogue photos whose labels vote on a photo's attributes
NEIGHBOUR_TEMPERATURE = 20.0  # softmax of their cosines: the nearest count most
NEIGHBOUR_SHARE = 0.5  # of an attribute's probability from those votes (bench/photo_attributes.py)
UNLABELLED = {"Unknown", "undefined", ""}  # H&M placeholders, not something to predict


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class ContentIndex:
    """A FAISS index over article vectors plus the row → article id mapping."""

    def __init__(self, index: faiss.Index, article_ids: np.ndarray, indexed_by: np.ndarray, params: dict,
                 offsets: np.ndarray | None = None):
        if index.ntotal != len(article_ids) or len(article_ids) != len(indexed_by):
            raise ArtifactError(
                f"content index holds {index.ntotal} vectors for {len(article_ids)} article ids; "
                "rebuild with `python -m recommender build`"
            )
        self.index = index
        self.article_ids = np.asarray(article_ids).astype(str)
        self.indexed_by = np.asarray(indexed_by).astype(str)
        self.params = params
        # Per-row score correction of borrowed (caption-placed) vectors: see hub_offsets.
        self.offsets = np.zeros(len(article_ids), np.float32) if offsets is None else np.asarray(offsets, np.float32)
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
        offsets = hub_offsets(vectors, indexed_by == "image")
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        params = {"kind": "exact", "n": n}
        if n >= exact_threshold:
            ivf, trial = _calibrated_ivf(vectors, flat, progress)
            if ivf is not None:
                return cls(ivf, article_ids, indexed_by, {**trial, "n": n}, offsets)
            params["ivf_trial"] = trial
        return cls(flat, article_ids, indexed_by, params, offsets)

    # --- persistence ----------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        faiss.write_index(self.index, str(folder / "index.faiss"))
        np.save(folder / "article_ids.npy", self.article_ids)
        np.save(folder / "indexed_by.npy", self.indexed_by)
        np.save(folder / "offsets.npy", self.offsets)
        (folder / "params.json").write_text(json.dumps(self.params, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> "ContentIndex":
        folder = Path(folder)
        try:
            index = faiss.read_index(str(folder / "index.faiss"))
            article_ids = np.load(folder / "article_ids.npy")
            indexed_by = np.load(folder / "indexed_by.npy")
            offsets = np.load(folder / "offsets.npy")
            params = json.loads((folder / "params.json").read_text())
        except (OSError, RuntimeError, ValueError) as exc:
            raise ArtifactError(
                f"content index in {folder} is unreadable ({exc}); rebuild with `python -m recommender build`"
            ) from exc
        return cls(index, article_ids, indexed_by, params, offsets)

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
    more than it saves.
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
    ivf.cp.max_points_per_centroid = 64  # a 64-per-list sample is plenty for the centroids and trains faster
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


def hub_offsets(vectors: np.ndarray, by_image: np.ndarray, probes: int = HUB_PROBES) -> np.ndarray:
    """How much nearer than a photographed article each caption-placed article sits to queries in general.

    An article without a photo gets the mean image vector of its caption-neighbours (embed_job), and a
    mean of vectors is a hub: nearer to every query than real photos are, so such articles filled the
    top of unrelated queries. Its offset is its mean cosine to a fixed sample of photo vectors (the
    queries' stand-ins) less the photographed articles' mean; the visual leg subtracts it. Photographed
    articles get 0.
    """
    offsets = np.zeros(len(vectors), np.float32)
    photo_rows = np.flatnonzero(by_image)
    if len(photo_rows) == 0 or by_image.all():
        return offsets
    sample = vectors[np.random.default_rng(0).choice(photo_rows, min(probes, len(photo_rows)), replace=False)]
    closeness = np.concatenate([vectors[i : i + 8192] @ sample.T for i in range(0, len(vectors), 8192)]).mean(axis=1)
    offsets[~by_image] = closeness[~by_image] - closeness[by_image].mean()
    return offsets


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
        "hub_offsets": HUB_PROBES,
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

    def __init__(self, catalog, embedder, index: ContentIndex, lexical=None):
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
        self.lexical = lexical  # lexical.LexicalIndex; None: visual search only
        self._by_image = index.indexed_by == "image"
        self._texts = {c: articles[c].to_numpy(dtype=object) for c in LEXICAL_FIELDS if c in articles.columns}
        # Plain numpy columns: taking a few rows from them is much faster than DataFrame.iloc on
        # Arrow-backed strings (pandas 3).
        self._columns = {
            c: index.indexed_by if c == "indexed_by" else articles[c].to_numpy(dtype=bool if c == "has_image" else object)
            for c in RESULT_COLUMNS
            if c != "score"
        }
        self._codes = {c: pd.Categorical(articles[c].astype(str)) for c in FILTER_COLUMNS}
        self._attribute_vectors: dict | None = None
        self._attribute_lock = threading.Lock()
        self.index_meta = {
            **index.params,
            "by_image": int((index.indexed_by == "image").sum()),
            "by_text": int((index.indexed_by == "text").sum()),
        }

    @classmethod
    def load(cls, catalog, embedder, store) -> "ContentSearch":
        """The stored indexes (vectors and words), refused (ArtifactError) when built with another model or
        other data."""
        from .lexical import load_lexical_index
        from .precision import choose_query_precision

        artifact = store.load("content_index", {"model": embedder.fingerprint, "data": catalog.fingerprint()})
        search = cls(catalog, embedder, ContentIndex.load(artifact.path), load_lexical_index(catalog, store))
        # not *.json: the store reads those as artifact manifests
        search.query_precision = choose_query_precision(embedder, store.root / "query_precision.cache")
        return search

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
        mode: str = "hybrid",
    ) -> pd.DataFrame:
        """The k best articles, with RESULT_COLUMNS plus `matched` ({field: the article's words that match
        the text}) and `looks_alike` (ranked high by the visual leg). `mode`: hybrid (lexical and
        visual fused, search.py), visual (CLIP vectors only) or lexical (BM25 only); photos and "more
        like this" are ranked visually in every mode."""
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
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
        example = _normalise(np.concatenate(examples).mean(axis=0)) if examples else None
        push = None
        if negative is not None:
            negative = self.embedder.validate_text(negative)
            push = self.embedder.encode_text([negative])[0]

        if text is None or mode == "visual" or self.lexical is None:
            parts = []
            if text is not None:
                parts.append((1.0 - image_weight, self.embedder.encode_text([text])[0]))
            if example is not None:
                parts.append((image_weight, example))
            query = parts[0][1] if len(parts) == 1 else sum(w * v for w, v in parts)
            found, scores = self._visual(self._pushed(query, push), k, allowed)
            visual_rank = {row: rank for rank, row in enumerate(found.tolist(), 1)}
            terms = []
            if text is not None and self.lexical is not None:
                terms = [t for _, ts in self.lexical.analyzer.analyse_query(text) for t in ts]
        else:
            found, scores, visual_rank, terms = self._fused(text, example, image_weight, negative, push, allowed, k, mode)
        return self._frame(found, scores, visual_rank, set(terms))

    def _fused(self, text, example, image_weight, negative, push, allowed, k, mode):
        """Rows and scores by reciprocal rank fusion of the lexical leg, the visual leg of the text
        (hybrid) and the photos' visual ranking (when there are photos); exactly k when k are allowed."""
        depth = max(k, DEPTH)
        lexical, terms = lexical_scores(self.lexical, text, negative)
        text_share = 1.0 - image_weight if example is not None else 1.0
        lexical_rows = lexical_ranking(lexical, allowed, depth)
        legs = [Ranking(lexical_rows, text_share)]
        vector = None
        if mode == "hybrid":
            vector = self._pushed(self.embedder.encode_text([text])[0], push)
            # The words' visual leg ranks photographed articles only: an article without a photo has no
            # looks of its own (its vector is its caption-neighbours' photos), so there it would be ranked
            # on its words a second time. It is found by its words, in the lexical leg.
            photographed = self._by_image if allowed is None else allowed & self._by_image
            legs = [
                Ranking(lexical_rows, text_share * LEXICAL_SHARE),
                Ranking(self._visual_rows(vector, photographed, depth), text_share * (1 - LEXICAL_SHARE), visual=True),
            ]
        if example is not None:
            legs.append(Ranking(self._visual_rows(self._pushed(example, push), allowed, depth), image_weight, visual=True))
        fused = reciprocal_rank_fusion(legs)
        rows, scores = fused.rows[:k], fused.scores[:k]
        if len(legs) == 1:  # lexical mode, text only: BM25 scores (scaled to a best of 1), not ranks
            scores = lexical[rows].astype(float)
        n_allowed = self.index.size if allowed is None else int(allowed.sum())
        if len(rows) < min(k, n_allowed):  # too few matches: the rest by looks (hybrid) or catalogue order
            if vector is not None:
                rest = self._visual_rows(vector, allowed, k + len(rows))
            else:
                rest = np.flatnonzero(np.ones(self.index.size, dtype=bool) if allowed is None else allowed)
            rest = rest[~np.isin(rest, rows)][: k - len(rows)]
            rows, scores = np.concatenate([rows, rest]), np.concatenate([scores, np.zeros(len(rest))])
        return rows, scores, fused.visual_rank, terms

    def _visual_rows(self, vector: np.ndarray, allowed: np.ndarray | None, depth: int) -> np.ndarray:
        return self._visual(vector, depth, allowed)[0]

    def _visual(self, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest allowed articles by photo vectors; caption-placed articles (no photo) compete
        with their hub offset subtracted (hub_offsets), so they rank by how near they are, not by
        being near everything."""
        with_photo = self._by_image if allowed is None else allowed & self._by_image
        rows, scores = self.index.search(vector, k, with_photo)
        rows, scores = rows[0], scores[0]
        without = ~self._by_image if allowed is None else allowed & ~self._by_image
        if without.any():
            more, more_scores = self.index.search(vector, k, without)
            more, more_scores = more[0], more_scores[0]
            keep = more >= 0
            more, more_scores = more[keep], more_scores[keep] - self.index.offsets[more[keep]]
            rows, scores = np.concatenate([rows, more]), np.concatenate([scores, more_scores])
        keep = rows >= 0
        rows, scores = rows[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")[:k]
        return rows[order], scores[order].astype(float)

    @staticmethod
    def _pushed(query: np.ndarray, push: np.ndarray | None) -> np.ndarray:
        query = _normalise(query)
        return query if push is None else _normalise(query - NEGATIVE_WEIGHT * push)

    def _frame(self, rows: np.ndarray, scores: np.ndarray, visual_rank: dict, terms: set[str]) -> pd.DataFrame:
        columns = {c: values[rows] for c, values in self._columns.items()}
        frame = pd.DataFrame({"article_id": columns.pop("article_id"), "score": np.asarray(scores, dtype=float), **columns})
        records = [{c: values[row] for c, values in self._texts.items()} for row in rows.tolist()]
        frame["matched"] = [self.lexical.matched(r, terms) if self.lexical is not None else {} for r in records]
        frame["looks_alike"] = [visual_rank.get(row, LOOKS_ALIKE_TOP + 1) <= LOOKS_ALIKE_TOP and bool(self._by_image[row])
                                for row in rows.tolist()]  # fmt: skip
        return frame

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

    def predict_attributes(self, image, neighbour_share: float = NEIGHBOUR_SHARE) -> dict[str, list[tuple[str, float]]]:
        """The top values of each attribute for a photo, with probabilities: from the attribute heads
        trained with the model (train_clip.AttributeHeads) where it has them, zero-shot otherwise, mixed
        with the labels of the most alike catalogue photos (`neighbour_share` of the probability); the photo
        and its mirror image are averaged."""
        picture = _load_images([image])[0]
        views = [picture, picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]  # training flips photos too
        heads = self._attribute_models()
        # Trained heads read the unnormalised embedding, as in training; one pass serves the rest too.
        raw = self._raw_image_embeddings(views) if any(bias is not None for *_, bias in heads.values()) else None
        vectors = self.embedder.encode_images(views) if raw is None else _normalise(raw)
        neighbours = self._photo_neighbours(_normalise(vectors.mean(axis=0))) if neighbour_share > 0 else None
        predictions = {}
        for column, (values, weights, bias) in heads.items():
            if bias is None:  # zero-shot: prompts' text vectors at CLIP's trained temperature
                logits = vectors @ weights.T
            else:
                logits = raw @ weights.T + bias
            probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities = (probabilities / probabilities.sum(axis=1, keepdims=True)).mean(axis=0)
            if neighbours is not None:
                votes = self._neighbour_votes(column, values, *neighbours)
                if votes.sum() > 0:
                    probabilities = (1 - neighbour_share) * probabilities + neighbour_share * votes
            top = np.argsort(-probabilities)[:ATTRIBUTE_TOP]
            predictions[column] = [(values[i], float(probabilities[i])) for i in top]
        return predictions

    def _photo_neighbours(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The ATTRIBUTE_NEIGHBOURS most alike photographed articles and their vote weights (a softmax
        of their cosines at NEIGHBOUR_TEMPERATURE), or None when the catalogue has no photos."""
        if not self._by_image.any():
            return None
        rows, scores = self.index.search(vector, ATTRIBUTE_NEIGHBOURS, self._by_image)
        keep = rows[0] >= 0
        rows, scores = rows[0][keep], scores[0][keep]
        if not len(rows):
            return None
        weights = np.exp(NEIGHBOUR_TEMPERATURE * (scores - scores.max()))
        return rows, weights / weights.sum()

    def _neighbour_votes(self, column: str, values: list[str], rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Over `values`: the weighted share of the neighbours labelled with each (unknown labels drop out)."""
        position = {value: i for i, value in enumerate(values)}
        votes = np.zeros(len(values))
        for label, weight in zip(self.catalog.articles[column].to_numpy()[rows].astype(str), weights):
            if label in position:
                votes[position[label]] += weight
        return votes

    def _raw_image_embeddings(self, pictures: list) -> np.ndarray:
        import torch

        with torch.inference_mode():
            pixels = torch.stack([self.embedder.preprocess(p) for p in pictures]).to(self.embedder.device)
            return self.embedder.model.encode_image(pixels).float().cpu().numpy()

    def _attribute_models(self) -> dict[str, tuple[list[str], np.ndarray, np.ndarray | None]]:
        """{column: (values, weights, bias or None for zero-shot)}, made once: concurrent first photos
        wait for one thread to make them (a half-filled table was visible to them before)."""
        with self._attribute_lock:
            if self._attribute_vectors is None:
                models = {}
                trained = _trained_heads(self.embedder)
                scale = float(self.embedder.model.logit_scale.detach().exp())  # CLIP's trained temperature
                for column, templates in ATTRIBUTE_PROMPTS.items():
                    if column in trained:
                        models[column] = trained[column]
                        continue
                    values = sorted(set(self.catalog.articles[column].astype(str)) - UNLABELLED)
                    prompts = [self.embedder.encode_text([t.format(v.lower()) for v in values]) for t in templates]
                    models[column] = (values, scale * _normalise(np.mean(prompts, axis=0)), None)
                self._attribute_vectors = models
            return self._attribute_vectors


def _trained_heads(embedder) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """The attribute heads saved in the model's checkpoint by train_clip (none for pretrained models),
    without their placeholder classes ("Unknown")."""
    import torch

    source = Path(embedder.pretrained or "")
    if source.suffix not in (".pt", ".pth") or not source.is_file():
        return {}
    try:
        heads = torch.load(source, map_location="cpu", weights_only=True, mmap=True).get("attribute_heads") or {}
    except Exception:  # an unreadable checkpoint cannot have loaded as the model: nothing to add
        return {}
    out = {}
    for column, head in heads.items():
        keep = [i for i, value in enumerate(head["classes"]) if value not in UNLABELLED and value != "nan"]
        if len(keep) >= 2:
            out[column] = ([head["classes"][i] for i in keep], head["weight"].float().numpy()[keep],
                           head["bias"].float().numpy()[keep])  # fmt: skip
    return out


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
