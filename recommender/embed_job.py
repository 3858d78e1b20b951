"""Embed the whole catalogue, batched and resumable → artifact "embeddings".

Articles with an image are embedded from the image. Articles without one, or whose image file cannot be
decoded, are placed by their caption's text embedding: they get the mean image vector of the articles
whose captions are nearest to theirs (see `_borrowed_image_vectors` for why not the caption vector
itself), and are marked ``indexed_by = "text"`` so search results can say so.

Only what changed is embedded again: the artifact keeps, per article, the digest of its photo and a hash
of its caption text, and a rebuild with the same model reuses the vectors of every photo and caption
it has seen before (an edited name re-embeds that article's caption alone).

Images are decoded and preprocessed in DataLoader worker processes while the model encodes the previous
batch. Finished work is saved in chunks of ``BATCHES_PER_CHUNK`` batches under
``store.scratch("embeddings")``, in a folder named after the model, the work to do and the chunk size: a
killed job loses at most one chunk, and the next run only computes the chunks that are missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import faiss
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .captions import CAPTION_FIELDS
from .digests import column_hashes
from .errors import ArtifactError, InputError
from .progress import Progress
from .store import atomic_write

BATCHES_PER_CHUNK = 16
NEIGHBOURS = 10  # image articles whose vectors place an article that has only a caption


def default_workers() -> int:
    """One core stays with the model; the rest decode images (at most 4 are ever needed)."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


@dataclass
class Plan:
    """What an embedding run must encode (new or changed photos and captions) and where its chunks go."""

    folder: Path
    chunk_size: int
    article_ids: np.ndarray
    image_keys: np.ndarray  # photo digest per row ("" without a photo)
    caption_keys: np.ndarray  # caption hash per row
    known_images: dict  # vectors of the previous artifact by key, reused
    known_captions: dict
    image_rows: np.ndarray  # rows with a photo
    new_images: np.ndarray  # rows whose photo must be encoded, in chunk order
    unknown_captions: np.ndarray  # rows whose caption vector is not known, in chunk order


def plan(catalog, embedder, store, batch_size: int = 64, log: Callable[[str], None] | None = None) -> Plan | None:
    """The work of `embed_catalog` (None when the artifact is current); the Spark job shares it."""
    expect = {"model": embedder.fingerprint, "data": catalog.fingerprint()}
    if store.is_current("embeddings", expect):
        return None
    articles = catalog.articles
    article_ids = articles["article_id"].to_numpy(dtype=str)
    has_image = articles["has_image"].to_numpy()
    # A photo without a known digest gets a key of its own that is never reused.
    image_keys = np.array([(catalog.image_digests.get(a) or f"-{a}") if h else "" for a, h in zip(article_ids, has_image)])
    caption_keys = column_hashes(articles, CAPTION_FIELDS)
    known_images, known_captions = _previous_vectors(store, embedder.fingerprint)

    image_rows = np.flatnonzero(has_image)
    new_images = np.array([r for r in image_rows if image_keys[r] not in known_images], dtype=np.int64)
    unknown_captions = np.array([r for r in range(len(articles)) if caption_keys[r] not in known_captions], dtype=np.int64)
    if log and (known_images or known_captions):
        log(f"embeddings: {len(new_images):,} of {len(image_rows):,} photos are new or changed; "
            f"the other photos and every unchanged caption reuse the previous vectors")
    chunk_size = batch_size * BATCHES_PER_CHUNK
    todo = hashlib.sha1(b"".join([image_keys[new_images].tobytes(), caption_keys[unknown_captions].tobytes()])).hexdigest()
    folder = _work_folder(store, {"model": embedder.fingerprint, "todo": todo, "chunk_size": chunk_size})
    return Plan(folder, chunk_size, article_ids, image_keys, caption_keys, known_images, known_captions,
                image_rows, new_images, unknown_captions)


def embed_catalog(
    catalog,
    embedder,
    store,
    *,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> None:
    """Write the artifact "embeddings" (skipped when it is current for this model and data).

    Files: vectors.npy float32 (n_articles, dim) in catalogue row order, L2-normalised;
    article_ids.npy; indexed_by.npy ("image" / "text" per row); unreadable_images.txt; and for reuse by
    the next build image_keys.npy (photo digest per row, "" without one), caption_keys.npy (caption
    hash per row) and, when captions were needed, captions.npy (caption vectors per row).
    """
    todo = plan(catalog, embedder, store, batch_size, log)
    if todo is None:
        return
    expect = {"model": embedder.fingerprint, "data": catalog.fingerprint()}
    articles, article_ids, chunk_size, work = catalog.articles, todo.article_ids, todo.chunk_size, todo.folder
    image_keys, caption_keys = todo.image_keys, todo.caption_keys
    known_images, known_captions = todo.known_images, todo.known_captions
    image_rows, new_images, unknown_captions = todo.image_rows, todo.new_images, todo.unknown_captions
    # Captions are embedded as soon as one article lacks an image (see below); knowing that up front
    # keeps the progress bar from jumping back between the two phases.
    meter = _Meter(len(new_images) + (len(unknown_captions) if len(image_rows) < len(articles) else 0), progress)

    encoded = _run_chunks(
        work, "image", len(new_images), chunk_size, embedder.dim, meter,
        lambda starts: _encode_images(
            [catalog.image_path(article_ids[r]) for r in _positions(new_images, starts, chunk_size)],
            embedder, batch_size, default_workers() if num_workers is None else num_workers,
        ),
    )  # fmt: skip
    for row, vector in zip(new_images, encoded):
        known_images[image_keys[row]] = vector if vector.any() else None  # a zero vector: undecodable file
    image_vectors = np.zeros((len(articles), embedder.dim), dtype=np.float32)
    readable = np.zeros(len(articles), dtype=bool)
    for row in image_rows:
        vector = known_images[image_keys[row]]
        if vector is not None:
            image_vectors[row], readable[row] = vector, True
    unreadable = image_rows[~readable[image_rows]]
    by_image = np.flatnonzero(readable)
    text_rows = np.flatnonzero(~readable)
    # Captions of every article when some need them: theirs to place them, the others' as neighbours.
    new_captions = unknown_captions if len(text_rows) else unknown_captions[:0]
    meter.total = len(new_images) + len(new_captions)  # grows only if some new image files were unreadable
    encoded = _run_chunks(
        work, "caption", len(new_captions), chunk_size, embedder.dim, meter,
        lambda starts: _encode_captions(articles, _positions(new_captions, starts, chunk_size), embedder, batch_size),
    )  # fmt: skip
    for row, vector in zip(new_captions, encoded):
        known_captions[caption_keys[row]] = vector
    captions = np.stack([known_captions[key] for key in caption_keys]) if len(text_rows) else None

    vectors = image_vectors
    if len(text_rows) and len(by_image):
        vectors[text_rows] = _borrowed_image_vectors(captions[text_rows], captions[by_image], vectors[by_image])
    elif len(text_rows):  # no images at all: caption vectors are a single modality too
        vectors[text_rows] = captions[text_rows]
    indexed_by = np.full(len(articles), "image")
    indexed_by[text_rows] = "text"
    counts = {"image": len(by_image), "text": len(text_rows), "unreadable_images": len(unreadable),
              "embedded_images": len(new_images), "embedded_captions": len(new_captions)}
    with store.write("embeddings", {**expect, "dim": embedder.dim, "counts": counts}) as folder:
        np.save(folder / "vectors.npy", vectors)
        np.save(folder / "article_ids.npy", article_ids)
        np.save(folder / "indexed_by.npy", indexed_by)
        np.save(folder / "image_keys.npy", image_keys)
        np.save(folder / "caption_keys.npy", caption_keys)
        if captions is not None:
            np.save(folder / "captions.npy", captions)
        (folder / "unreadable_images.txt").write_text("".join(f"{a}\n" for a in article_ids[unreadable]))
    store.clear_scratch("embeddings")
    meter.report(f"embedded {counts['image']:,} articles by image, {counts['text']:,} by caption text"
                 + (f" ({len(unreadable):,} image files unreadable)" if len(unreadable) else ""))


def _previous_vectors(store, model_fingerprint: str) -> tuple[dict, dict]:
    """{photo digest: vector, or None when undecodable} and {caption hash: vector} of the last build with
    this model (empty when there is none, it used another model, or it predates the keys)."""
    manifest = store.manifest("embeddings")
    if manifest is None or manifest["meta"].get("model") != model_fingerprint:
        return {}, {}
    try:
        art = store.load("embeddings")
        vectors = np.load(art.path / "vectors.npy")
        indexed_by = np.load(art.path / "indexed_by.npy")
        image_keys = np.load(art.path / "image_keys.npy")
        caption_keys = np.load(art.path / "caption_keys.npy")
        captions = np.load(art.path / "captions.npy") if (art.path / "captions.npy").is_file() else None
    except (OSError, ValueError, ArtifactError):
        return {}, {}
    images = {key: (vector if how == "image" else None)
              for key, vector, how in zip(image_keys, vectors, indexed_by) if key and not key.startswith("-")}
    texts = dict(zip(caption_keys, captions)) if captions is not None else {}
    return images, texts


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
    # Another process may be using its own folder here unless this one holds the build lock.
    for other in scratch.iterdir() if store.holds_lock else ():
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
            with atomic_write(path[start]) as handle:  # a chunk file exists only when complete
                np.save(handle, np.concatenate(parts))
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
