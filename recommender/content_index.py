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
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import faiss
import numpy as np

from .errors import ArtifactError
from .progress import Progress
from .vectors import normalise

# Below this many vectors a flat scan is fast and exact (bench/bench_content.py times it); from it on
# IVF is tried.
EXACT_THRESHOLD = 30_000
RECALL_TARGET = 0.95
RECALL_AT = 100
CALIBRATION_QUERIES = 256
HUB_PROBES = 256

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
        vectors = np.ascontiguousarray(normalise(vectors))
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
        queries = np.ascontiguousarray(normalise(np.atleast_2d(queries)))
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
    queries = normalise(sources + normalise(rng.standard_normal(sources.shape)))
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
