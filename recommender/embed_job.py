"""Embed the whole catalogue, batched and resumable → artifact "embeddings".

Articles with an image are embedded from the image. Articles without one, or whose image file cannot be
decoded, are placed by their caption's text embedding: they get the mean image vector of the articles
whose captions are nearest to theirs (see `_borrowed_image_vectors` for why not the caption vector
itself), and are marked ``indexed_by = "text"`` so search results can say so.

Images are decoded and preprocessed in DataLoader worker processes while the model encodes the previous
batch. Finished work is saved in chunks of ``BATCHES_PER_CHUNK`` batches under
``store.scratch("embeddings")``, in a folder named after the model, the data and the chunk size: a killed
job loses at most one chunk, and the next run only computes the chunks that are missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import faiss
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .errors import InputError

Progress = Callable[[float, str], None]

BATCHES_PER_CHUNK = 16
NEIGHBOURS = 10  # image articles whose vectors place an article that has only a caption


def default_workers() -> int:
    """One core stays with the model; the rest decode images (at most 4 are ever needed)."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def embed_catalog(
    catalog,
    embedder,
    store,
    *,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: Progress | None = None,
) -> None:
    """Write the artifact "embeddings" (skipped when it is current for this model and data).

    Files: vectors.npy float32 (n_articles, dim) in catalogue row order, L2-normalised;
    article_ids.npy; indexed_by.npy ("image" / "text" per row); unreadable_images.txt.
    """
    expect = {"model": embedder.fingerprint, "data": catalog.fingerprint()}
    if store.is_current("embeddings", expect):
        return
    chunk_size = batch_size * BATCHES_PER_CHUNK
    work = _work_folder(store, {**expect, "chunk_size": chunk_size})
    articles = catalog.articles
    article_ids = articles["article_id"].to_numpy(dtype=str)
    image_rows = np.flatnonzero(articles["has_image"].to_numpy())
    # Captions are embedded for every article as soon as one lacks an image (see below); knowing that
    # up front keeps the progress bar from jumping back between the two phases.
    meter = _Meter(len(image_rows) + (len(articles) if len(image_rows) < len(articles) else 0), progress)

    image_vectors = _run_chunks(
        work, "image", len(image_rows), chunk_size, embedder.dim, meter,
        lambda starts: _encode_images(
            [catalog.image_path(article_ids[r]) for r in _positions(image_rows, starts, chunk_size)],
            embedder, batch_size, default_workers() if num_workers is None else num_workers,
        ),
    )  # fmt: skip
    unreadable = image_rows[~image_vectors.any(axis=1)]  # a zero vector marks an undecodable file
    by_image = image_rows[image_vectors.any(axis=1)]
    text_rows = np.setdiff1d(np.arange(len(articles)), by_image)
    # Captions of every article when some need them: theirs to place them, the others' as neighbours.
    captioned = np.arange(len(articles)) if len(text_rows) else text_rows
    meter.total = len(image_rows) + len(captioned)  # grows only if some image files were unreadable
    captions = _run_chunks(
        work, "caption", len(captioned), chunk_size, embedder.dim, meter,
        lambda starts: _encode_captions(articles, _positions(captioned, starts, chunk_size), embedder, batch_size),
    )  # fmt: skip

    vectors = np.zeros((len(articles), embedder.dim), dtype=np.float32)
    vectors[image_rows] = image_vectors
    if len(text_rows) and len(by_image):
        vectors[text_rows] = _borrowed_image_vectors(captions[text_rows], captions[by_image], vectors[by_image])
    elif len(text_rows):  # no images at all: caption vectors are a single modality too
        vectors[text_rows] = captions
    indexed_by = np.full(len(articles), "image")
    indexed_by[text_rows] = "text"
    counts = {"image": len(by_image), "text": len(text_rows), "unreadable_images": len(unreadable)}
    with store.write("embeddings", {**expect, "dim": embedder.dim, "counts": counts}) as folder:
        np.save(folder / "vectors.npy", vectors)
        np.save(folder / "article_ids.npy", article_ids)
        np.save(folder / "indexed_by.npy", indexed_by)
        (folder / "unreadable_images.txt").write_text("".join(f"{a}\n" for a in article_ids[unreadable]))
    store.clear_scratch("embeddings")
    meter.report(f"embedded {counts['image']:,} articles by image, {counts['text']:,} by caption text"
                 + (f" ({len(unreadable):,} image files unreadable)" if len(unreadable) else ""))


def _borrowed_image_vectors(captions: np.ndarray, pool_captions: np.ndarray, pool_images: np.ndarray) -> np.ndarray:
    """For each caption, the normalised mean image vector of the pool articles with the nearest captions.

    CLIP's text and image vectors sit in two separate cones (the modality gap) and text-to-text
    similarities run far above text-to-image ones, so caption vectors in an index of image vectors
    would top every text query (measured with lookbook-tiny on the demo; shifting them by the mean
    gap was not enough). Placing an article among the images of the articles described most like it
    (typically its own colour variants) keeps the index in one modality.
    """
    pool = faiss.IndexFlatIP(pool_captions.shape[1])
    pool.add(np.ascontiguousarray(pool_captions))
    _, nearest = pool.search(np.ascontiguousarray(captions), min(NEIGHBOURS, len(pool_captions)))
    borrowed = pool_images[nearest].mean(axis=1)
    return (borrowed / np.maximum(np.linalg.norm(borrowed, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _work_folder(store, key: dict) -> Path:
    """The scratch folder for this model + data + chunking; partial work for anything else is dropped."""
    name = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    scratch = store.scratch("embeddings")
    for other in scratch.iterdir():
        if other.name != name:
            shutil.rmtree(other, ignore_errors=True) if other.is_dir() else other.unlink()
    (scratch / name).mkdir(exist_ok=True)
    return scratch / name


def _positions(rows: np.ndarray, starts: list[int], chunk_size: int) -> np.ndarray:
    return np.concatenate([rows[start : start + chunk_size] for start in starts])


def _run_chunks(work: Path, kind: str, total: int, chunk_size: int, dim: int, meter: "_Meter", encode) -> np.ndarray:
    """Vectors for items 0..total-1: saved chunks are read back, the missing ones encoded and saved.

    ``encode(starts)`` yields the vectors of the chunks starting at ``starts``, in order, batch by batch.
    """
    starts = range(0, total, chunk_size)
    path = {start: work / f"{kind}-{start:09d}.npy" for start in starts}
    missing = [start for start in starts if not path[start].exists()]
    meter.start(kind, total, done=total - sum(min(chunk_size, total - s) for s in missing))
    if missing:
        batches = encode(missing)
        for start in missing:
            size, parts = min(chunk_size, total - start), []
            while sum(len(p) for p in parts) < size:
                parts.append(next(batches))
                meter.advance(len(parts[-1]))
            tmp = path[start].with_suffix(".tmp.npy")
            np.save(tmp, np.concatenate(parts))
            os.replace(tmp, path[start])  # a chunk file exists only when complete
    return np.concatenate([np.zeros((0, dim), np.float32)] + [np.load(path[start]) for start in starts])


class _ImageFiles(Dataset):
    """Decoded, preprocessed images; an undecodable file gives a zero tensor and ok=False."""

    def __init__(self, paths: list[Path], preprocess):
        from PIL import Image

        self.paths = paths
        self.preprocess = preprocess
        self.blank = torch.zeros_like(preprocess(Image.new("RGB", (32, 32))))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from .images import load_image

        try:
            return self.preprocess(load_image(self.paths[i], name=str(self.paths[i]))), True
        except InputError:
            return self.blank, False


def _encode_images(paths, embedder, batch_size: int, num_workers: int):
    loader = DataLoader(
        _ImageFiles(paths, embedder.preprocess),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=str(embedder.device).startswith("cuda"),
    )
    with torch.inference_mode():
        for pixels, ok in loader:
            vectors = embedder.encode_image_tensors(pixels)
            vectors[~ok.numpy()] = 0.0
            yield vectors


def _encode_captions(articles, rows: np.ndarray, embedder, batch_size: int):
    from .captions import caption

    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            texts = [caption(articles.iloc[r]) for r in rows[start : start + batch_size]]
            yield embedder.encode_text(texts)


class _Meter:
    """Progress over the whole job; items/s and ETA per phase, counted over the work done in this run."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.done = total, 0
        self.progress = progress

    def start(self, kind: str, phase_total: int, done: int) -> None:
        self.kind, self.phase_total, self.phase_done, self.new = kind, phase_total, done, 0
        self.started = time.perf_counter()
        self.done += done
        if done:
            self.report(f"resuming {kind}s: {done:,}/{phase_total:,} already embedded")

    def advance(self, count: int) -> None:
        self.done += count
        self.phase_done += count
        self.new += count
        rate = self.new / max(time.perf_counter() - self.started, 1e-9)
        eta = (self.phase_total - self.phase_done) / rate
        self.report(f"embedding {self.kind}s: {self.phase_done:,}/{self.phase_total:,} "
                    f"({rate:.1f} items/s, ETA {_duration(eta)})")

    def report(self, message: str) -> None:
        if self.progress:
            self.progress(min(1.0, self.done / max(1, self.total)), message)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
