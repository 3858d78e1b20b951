"""`build`: every step from a data folder to a servable engine, in order, resumable; `open_engine` loads it.

    demo data (if the demo folder is empty) → catalogue (+ parquet cache) → CLIP model (pretrained source,
    or a model trained on this catalogue when that cannot be loaded) → image/text embeddings → FAISS index
    → interactions + ALS + HNSW (when the data has transactions)

Each step writes its artifact through the store and is skipped when its manifest says it is current, so a
killed build resumes where it stopped.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

from .catalog import Catalog, load_catalog
from .config import Settings, resolve_device
from .errors import ArtifactError, ModelError
from .store import ArtifactStore

Progress = Callable[[float, str], None]

# Share of the progress bar per step (training dominates an offline first run).
STEPS = {"data": 0.05, "model": 0.45, "embeddings": 0.3, "content_index": 0.05, "collab": 0.15}
FALLBACK_MODEL = "lookbook-tiny"


@dataclass
class Engine:
    """Everything the app, CLI and notebooks query; read-only once opened."""

    settings: Settings
    catalog: Catalog
    embedder: object
    search: object
    collab: object | None
    notices: list[str] = field(default_factory=list)

    def status(self) -> dict:
        """What the engine serves, for the app's sidebar and `build`'s summary."""
        return {
            "dataset": self.catalog.name,
            "data_dir": str(self.catalog.root),
            "model": self.embedder.model_name,
            "pretrained": self.embedder.pretrained,
            "articles": len(self.catalog.articles),
            "indexed_by_image": self.search.index_meta["by_image"],
            "indexed_by_text": self.search.index_meta["by_text"],
            "customers": self._customers_with_purchases,
        }

    @cached_property
    def _customers_with_purchases(self) -> int:  # ~1 s at H&M scale: counted once (the engine is read-only)
        transactions = self.catalog.transactions
        return 0 if transactions is None else int(transactions["customer"].nunique())


def _stage(progress: Progress | None, start: float, width: float) -> Progress:
    """Map a step's own 0..1 progress into its slice of the overall bar."""

    def report(fraction: float, message: str) -> None:
        if progress:
            progress(min(1.0, start + width * max(0.0, min(1.0, fraction))), message)

    return report


def store_for(settings: Settings) -> ArtifactStore:
    hint = f"python -m recommender build --data {settings.data_dir}"
    if settings.artifacts_dir != Settings(data_dir=settings.data_dir).artifacts_dir:
        hint += f" --artifacts {settings.artifacts_dir}"
    return ArtifactStore(settings.artifacts_dir, rebuild_hint=hint)


def requested_model(settings: Settings) -> str:
    return f"{settings.model} {settings.pretrained}"


def build(settings: Settings, *, progress: Progress | None = None, log: Callable[[str], None] = print,
          engine: str = "local", spark_master: str | None = None) -> list[str]:
    """Build what is missing or stale; returns the notices (e.g. the model fallback) for the caller to show.

    engine="spark": embeddings and ALS run as Spark jobs on ``spark_master`` (recommender/spark/)."""
    store = store_for(settings)
    spark = None
    if engine == "spark":
        from .spark.steps import SparkSteps

        spark = SparkSteps(spark_master, store)
    notices: list[str] = []
    position = 0.0

    def next_stage(name: str) -> Progress:
        nonlocal position
        report = _stage(progress, position, STEPS[name])
        position += STEPS[name]
        return report

    report = next_stage("data")
    if settings.is_demo and not (settings.data_dir / "articles.csv").is_file():
        from .demo import generate_demo

        report(0.0, "generating the demo catalogue")
        generate_demo(settings.data_dir, progress=report)
    report(0.9, "reading the catalogue")
    catalog = load_catalog(settings.data_dir, cache_dir=settings.artifacts_dir)

    embedder, notice = _prepare_model(settings, catalog, store, next_stage("model"), log)
    if notice:
        notices.append(notice)

    from .content import build_content_index
    from .embed_job import embed_catalog

    (spark.embed_catalog if spark else embed_catalog)(catalog, embedder, store, progress=next_stage("embeddings"))
    build_content_index(store, progress=next_stage("content_index"))

    report = next_stage("collab")
    if catalog.transactions is not None and len(catalog.transactions):
        from .collab import CollabModel

        if not CollabModel.is_current(store, catalog):
            report(0.0, "fitting ALS and the similar-customer index")
            if spark:
                spark.fit_collab(catalog, store, progress=report)
            else:
                CollabModel.fit(catalog, progress=report).save(store)
    if spark:
        spark.close()
    report(1.0, "ready")
    return notices


def _prepare_model(settings: Settings, catalog: Catalog, store: ArtifactStore, report: Progress, log):
    """The requested pretrained model, or (offline / unavailable) one trained on this catalogue.

    The choice is an artifact too, so opening the engine never retries an unreachable hub.
    """
    from .embed import load_embedder

    device = resolve_device(settings.device)
    expect = {"requested": requested_model(settings), "data": catalog.fingerprint()}
    if store.is_current("clip_model", expect):
        art = store.load("clip_model", expect)
        choice = json.loads((art.path / "choice.json").read_text())
        report(1.0, f"model: {choice['model_name']} {choice['pretrained']}")
        return _load_choice(art.path, choice, device), choice.get("notice")

    report(0.0, f"loading {settings.pretrained}")
    notice = None
    try:
        embedder = load_embedder(settings.model, settings.pretrained, device=device)
        choice = {"model_name": settings.model, "pretrained": settings.pretrained}
        checkpoint = None
    except ModelError as exc:
        if not settings.fallback:
            raise
        notice = (
            f"{settings.model} {settings.pretrained} could not be loaded ({exc}); "
            f"using a model trained on this catalogue instead"
        )
        log(f"notice: {notice}")
        from .train_clip import train_clip

        work = store.scratch("clip_model")
        checkpoint = train_clip(catalog, out=work / "model.pt", model_name=FALLBACK_MODEL,
                                epochs=settings.train_epochs, progress=report)
        choice = {"model_name": FALLBACK_MODEL, "pretrained": "model.pt", "notice": notice}
    with store.write("clip_model", expect) as tmp:
        if checkpoint is not None:
            shutil.copy2(checkpoint, tmp / "model.pt")
        (tmp / "choice.json").write_text(json.dumps(choice, indent=2))
    store.clear_scratch("clip_model")
    art = store.load("clip_model", expect)
    return (_load_choice(art.path, choice, device) if checkpoint is not None else embedder), notice


def _load_choice(folder: Path, choice: dict, device: str):
    from .embed import load_embedder

    source = choice["pretrained"]
    if (folder / source).is_file():  # a checkpoint stored inside the artifact
        source = str(folder / source)
    return load_embedder(choice["model_name"], source, device=device)


def open_engine(settings: Settings) -> Engine:
    """Load a built engine; ArtifactError (what differs + the rebuild command) if missing or stale."""
    from .content import ContentSearch

    store = store_for(settings)
    catalog = load_catalog(settings.data_dir, cache_dir=settings.artifacts_dir)
    expect = {"requested": requested_model(settings), "data": catalog.fingerprint()}
    art = store.load("clip_model", expect)
    choice = json.loads((art.path / "choice.json").read_text())
    embedder = _load_choice(art.path, choice, resolve_device(settings.device))
    search = ContentSearch.load(catalog, embedder, store)
    collab = None
    if catalog.transactions is not None and len(catalog.transactions):
        from .collab import CollabModel

        collab = CollabModel.load(store, catalog)
    notices = [choice["notice"]] if choice.get("notice") else []
    return Engine(settings, catalog, embedder, search, collab, notices)


def ensure_engine(settings: Settings, *, progress: Progress | None = None, log=print) -> Engine:
    """Open the engine, building first whatever is missing or stale (the app's first run)."""
    demo_missing = settings.is_demo and not (settings.data_dir / "articles.csv").is_file()
    if not demo_missing:
        try:
            return open_engine(settings)
        except ArtifactError:
            pass
    build(settings, progress=progress, log=log)
    return open_engine(settings)
