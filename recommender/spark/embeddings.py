"""The catalogue embedding as a Spark job, finishing into the same `embeddings` artifact as the local job.

The local job (embed_job.py) saves its work in chunk files of a scratch folder and resumes from them. Here
each chunk is one Spark task: an executor decodes the chunk's images (or takes its captions), encodes them
with the model it loaded once per Python worker (CUDA when that executor has it) and writes the chunk file
itself. The local job then finds every chunk done and only assembles the artifact (articles without a usable
image placed by their captions, exactly as locally). So the scratch folder must be on storage that every
executor sees (the artifacts folder, see README), and an interrupted Spark build resumes like a local one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..embed_job import embed_catalog, plan

Progress = Callable[[float, str], None]
BATCH_SIZE = 64  # embed_job's default: the chunk layout (and so resuming) depends on it

_models: dict = {}  # per executor Python worker: (model, source) → Embedder, loaded once


def chunk_path(work: Path, kind: str, start: int) -> Path:
    """embed_job._run_chunks' file for the chunk of ``kind`` ("image" / "caption") starting at ``start``."""
    return Path(work) / f"{kind}-{start:09d}.npy"


def embed_catalog_on_spark(spark, catalog, embedder, store, *, progress: Progress | None = None) -> None:
    """Write the artifact "embeddings" (skipped when current), encoding on the Spark executors."""
    report = progress or (lambda fraction, message: None)
    todo = plan(catalog, embedder, store, BATCH_SIZE)  # the local job's work: new or changed items only
    if todo is None:
        return
    paths = [str(catalog.image_path(todo.article_ids[r])) for r in todo.new_images]
    report(0.0, f"Spark: embedding {len(paths):,} images")
    _run(spark, embedder, todo.folder, "image", paths, todo.chunk_size)

    # As locally: captions are needed as soon as one article lacks a usable photo.
    new_unusable = sum(int((~np.load(chunk_path(todo.folder, "image", s)).any(axis=1)).sum())
                       for s in range(0, len(paths), todo.chunk_size))
    old_unusable = any(todo.known_images.get(todo.image_keys[r]) is None for r in todo.image_rows
                       if todo.image_keys[r] in todo.known_images)
    if len(todo.image_rows) < len(catalog.articles) or new_unusable or old_unusable:
        from ..captions import caption

        report(0.7, f"Spark: embedding {len(todo.unknown_captions):,} captions")
        texts = [caption(catalog.articles.iloc[r]) for r in todo.unknown_captions]
        _run(spark, embedder, todo.folder, "caption", texts, todo.chunk_size)
    report(0.95, "assembling the embeddings")
    embed_catalog(catalog, _AssembleOnly(embedder), store, batch_size=BATCH_SIZE)
    report(1.0, "embeddings ready (Spark)")


def _run(spark, embedder, work: Path, kind: str, items: list[str], chunk_size: int) -> None:
    """One task per missing chunk: (start, items) rows → chunk files written by the executors."""
    import pandas as pd

    starts = [s for s in range(0, len(items), chunk_size) if not chunk_path(work, kind, s).exists()]
    if not starts:
        return
    tasks = pd.DataFrame({"start": starts, "items": [items[s : s + chunk_size] for s in starts]})
    frame = spark.createDataFrame(tasks, "start long, items array<string>").repartition(len(starts))
    job = _ChunkJob(embedder.model_name, embedder.pretrained, embedder.fingerprint, str(work), kind)
    done = frame.mapInPandas(job, "start long, rows long, device string").toPandas()
    missing = sorted(set(starts) - set(done["start"]))
    if missing:
        raise RuntimeError(f"Spark finished without the {kind} chunks starting at {missing[:5]}")


class _ChunkJob:
    """The function mapInPandas runs on an executor (pickled with these few fields, no model inside)."""

    def __init__(self, model_name: str, source: str, fingerprint: str, work: str, kind: str):
        self.model_name, self.source, self.fingerprint = model_name, source, fingerprint
        self.work, self.kind = work, kind

    def __call__(self, batches):
        import pandas as pd

        embedder = self._embedder()
        for batch in batches:
            for start, items in zip(batch["start"], batch["items"]):
                vectors = self._encode(embedder, list(items))
                path = chunk_path(Path(self.work), self.kind, int(start))
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, vectors)
                os.replace(tmp, path)  # a chunk file exists only when complete, as in the local job
                yield pd.DataFrame({"start": [int(start)], "rows": [len(vectors)], "device": [str(embedder.device)]})

    def _embedder(self):
        from ..embed import load_embedder

        key = (self.model_name, self.source)
        if key not in _models:
            _models[key] = load_embedder(self.model_name, self.source)  # cuda when this executor has it
        embedder = _models[key]
        if embedder.fingerprint != self.fingerprint:
            raise RuntimeError(f"executor loaded other weights for {self.model_name} from {self.source}")
        return embedder

    def _encode(self, embedder, items: list[str]) -> np.ndarray:
        from ..embed_job import _encode_images

        if self.kind == "image":  # one core per task: the executor's other cores run other chunks
            batches = list(_encode_images([Path(p) for p in items], embedder, BATCH_SIZE, num_workers=0))
        else:
            batches = [embedder.encode_text(items[s : s + BATCH_SIZE]) for s in range(0, len(items), BATCH_SIZE)]
        return np.concatenate([np.zeros((0, embedder.dim), np.float32)] + batches)


class _AssembleOnly:
    """The embedder as embed_catalog sees it once Spark wrote every chunk: asked to encode, it fails
    loudly instead of silently redoing the work on the driver."""

    def __init__(self, embedder):
        self._embedder = embedder
        self.fingerprint, self.dim, self.device = embedder.fingerprint, embedder.dim, embedder.device
        self.preprocess = embedder.preprocess

    def encode_image_tensors(self, batch):
        raise RuntimeError("a Spark image chunk is missing: the embeddings were not assembled")

    def encode_text(self, texts, batch_size: int = 256):
        raise RuntimeError("a Spark caption chunk is missing: the embeddings were not assembled")
