"""`build`: every step from a data folder to a servable engine, in order, resumable; `open_engine` loads it.

    demo data (if the demo folder is empty) → catalogue (+ parquet cache) → CLIP model (pretrained source,
    or a model trained on this catalogue when that cannot be loaded) → image/text embeddings → FAISS index
    → interactions + ALS + HNSW (when the data has transactions)

A build holds the artifacts folder's cross-process lock (a second one waits or says who is building),
first drops damaged artifacts (`ArtifactStore.repair`), then runs each step, which writes its artifact
through the store and is skipped when its manifest says it is current, so a killed build resumes where
it stopped. Steps compare file contents, not dates: a `touch` rebuilds nothing, an edited article is
re-embedded alone, and the catalogue model is retrained only when more than `RETRAIN_SHARE` of its
image–caption pairs changed.
"""
from __future__ import annotations

import threading
import zipfile
from functools import cached_property
from pathlib import Path
from typing import Callable

from .catalog import Catalog, load_catalog
from .availability import Availability
from .rules import Rules
from .config import DEFAULT_BACKTEST_WEEKS, Settings, default_artifacts_dir, resolve_device
from .errors import ArtifactError, InputError
from .model_choice import load_choice, prepare_model, read_choice, requested_model
from .progress import Progress, stage
from .store import ArtifactStore

# Share of the progress bar per step (training dominates an offline first run).
STEPS = {"data": 0.05, "model": 0.4, "embeddings": 0.3, "content_index": 0.03, "lexical_index": 0.02, "lookalikes": 0.02, "collab": 0.1,
         "backtest": 0.08}


class Engine:
    """Everything the app, CLI and notebooks query; read-only once opened.

    The parts load on first use (one thread loads, the others wait), so a command touches only the
    artifacts it needs: `search` never loads ALS, and a damaged collaborative artifact does not block
    text search.
    """

    def __init__(self, settings: Settings, catalog: Catalog, store: ArtifactStore, model_folder: Path,
                 choice: dict, notices: list[str]):
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.notices = notices
        self._model_folder = model_folder
        self._choice = choice
        self._loading = threading.RLock()
        self._parts: dict[str, object] = {}
        self.build_id, self._built_at = store.build_id(), store.built_at()  # what it opened (`build_info`)
        self.availability = Availability(settings.data_dir, catalog)  # availability.csv, read again when it changes
        self.rules = Rules.for_folder(settings.data_dir, catalog)  # rules.toml: likewise

    @classmethod
    def from_parts(cls, settings: Settings, catalog: Catalog, *, embedder, search, collab) -> "Engine":
        """An engine over parts already in memory (benchmarks at sizes no build here makes)."""
        engine = cls(settings, catalog, ArtifactStore(settings.artifacts_dir), Path(), {}, [])
        engine._parts.update(embedder=embedder, search=search, collab=collab)
        return engine

    def _once(self, name: str, load: Callable[[], object]):
        """``load()`` on first use, by one thread; the others wait for its result."""
        if name not in self._parts:
            with self._loading:
                if name not in self._parts:
                    try:
                        self._parts[name] = load()
                    except (OSError, ValueError, KeyError, EOFError, RuntimeError, zipfile.BadZipFile) as exc:
                        # A file damaged with its size intact (the build's checksums catch it).
                        raise ArtifactError(
                            f"the {name} artifacts in {self.store.root} cannot be read ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}); "
                            f"rebuild with `{self.store.rebuild_hint}`"
                        ) from exc
        return self._parts[name]

    @property
    def embedder(self):
        return self._once("embedder", lambda: load_choice(self._model_folder, self._choice,
                                                           resolve_device(self.settings.device)))

    @property
    def search(self):
        from .content import ContentSearch

        def load():
            search = ContentSearch.load(self.catalog, self.embedder, self.store)
            search.availability, search.rules = self.availability, self.rules
            return search

        return self._once("search", load)

    @property
    def collab(self):
        """The collaborative model, or None when the data has no transactions."""
        from .collab import CollabModel

        def load():
            collab = CollabModel.load(self.store, self.catalog) if self._has_transactions else None
            if collab is not None:
                collab.availability, collab.rules = self.availability, self.rules
            return collab

        return self._once("collab", load)

    @property
    def _has_transactions(self) -> bool:
        return self.catalog.transactions is not None and len(self.catalog.transactions) > 0

    def check_built(self) -> None:
        """ArtifactError unless every artifact a request can touch is built, current and whole (manifests
        and file sizes only): the content and lexical indexes, the collaborative model and the ranker (or
        the build's record that the data was too thin for one)."""
        from .collab import CollabParams, CollabState
        from .collab.ranker import Ranker
        from .lexical import lexical_expect

        self.store.load("content_index", {"data": self.catalog.fingerprint()})
        self.store.load("lexical_index", lexical_expect(self.catalog))
        if self._has_transactions:  # the content source and the taste features read it
            self.store.load("lookalikes", {"data": self.catalog.fingerprint()})
        for name, current in (("collaborative model", CollabState.is_current), ("ranker", Ranker.is_current)):
            if self._has_transactions and not current(self.store, self.catalog, CollabParams()):
                raise ArtifactError(
                    f"the {name} in {self.store.root} is missing or not current (built from other data or by "
                    f"other code); build it with `{self.store.rebuild_hint}`"
                )

    def warm(self) -> "Engine":
        """Load every part a request can touch and answer one request of each kind, so that no request
        waits for loading afterwards (a server says it is ready only after this)."""
        from PIL import Image

        search = self.search
        search.search(text="warm up", k=1)
        search.search(text="warm up", k=1, mode="lexical")
        search.search(images=[Image.new("RGB", (64, 64), "white")], k=1)
        search.attributes.models  # noqa: B018 (zero-shot prompts or trained heads, made once)
        collab = self.collab
        if collab is not None:
            customer = collab.example_customers(1)
            if customer:
                collab.recommend(customer[0], k=1)
                collab.similar_customers(customer[0], k=1)
                collab.history(customer[0])
            collab.recommend_for_items([self.catalog.articles["article_id"].iat[0]], k=1)
            self._customers_with_purchases  # noqa: B018
        return self

    @property
    def fallbacks(self) -> list[str]:
        """What the engine serves in place of what a full build provides (never silently)."""
        self.availability.unavailable()  # a changed file is read now, so a bad one is reported now
        self.rules.current()
        refused = [f"{self.availability.problem}; the last good availability stays in force"] if self.availability.problem else []
        refused += [f"{self.rules.problem}; the last good rules stay in force"] if self.rules.problem else []
        return refused + self._ranker_fallbacks()

    def _ranker_fallbacks(self) -> list[str]:
        if not self._has_transactions:
            return []
        collab, record = self._parts.get("collab"), self.store.manifest("ranker")
        if collab is None and record is not None and record["meta"].get("trained"):
            return []  # not loaded yet; the build trained one
        if collab is not None and collab.ranker is not None:
            return []
        message = (record or {}).get("meta", {}).get("message")
        return [message or "recommendations use the hand-weighted blend: the ranker is missing or was built by "
                           f"other code; build it with `{self.store.rebuild_hint}`"]

    def build_info(self) -> dict:
        """Which build this engine serves: a short id of its artifact versions and when the newest was made."""
        import hashlib

        return {"build_id": hashlib.sha256(self.build_id.encode()).hexdigest()[:12], "built_at": self._built_at}

    def close(self) -> None:
        """Release the artifact versions this engine holds (a build may then remove them)."""
        self.store.release()

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


def store_for(settings: Settings, *, reader: bool = False) -> ArtifactStore:
    """The settings' artifacts folder; ``reader``: an engine's, leasing every version it loads."""
    hint = f"python -m recommender build --data {settings.data_dir}"
    if settings.artifacts_dir != default_artifacts_dir(settings.data_dir):
        hint += f" --artifacts {settings.artifacts_dir}"
    return ArtifactStore(settings.artifacts_dir, rebuild_hint=hint, reader=reader)


def build(
    settings: Settings,
    *,
    progress: Progress | None = None,
    log: Callable[[str], None] = print,
    wait: float | None = None,
    engine: str = "local",
    spark_master: str | None = None,
) -> list[str]:
    """Build what is missing, stale or damaged; returns the notices (e.g. the model fallback) for the caller.

    Holds the artifacts folder's build lock throughout: ``wait`` as in `ArtifactStore.lock` (None: wait
    for another build to finish, 0: BuildRunningError at once). engine="spark": embeddings and ALS run as
    Spark jobs on ``spark_master`` (recommender/spark/).
    """
    store = store_for(settings)
    with store.lock(wait=wait, notify=log):
        store.repair(log=log)
        spark = None
        if engine == "spark":
            from .spark.steps import SparkSteps

            spark = SparkSteps(spark_master, store)
        try:
            return _build_steps(settings, store, progress, log, spark)
        finally:
            if spark:
                spark.close()


def _build_steps(settings: Settings, store: ArtifactStore, progress: Progress | None, log, spark) -> list[str]:
    notices: list[str] = []
    position = 0.0

    def next_stage(name: str) -> Progress:
        nonlocal position
        report = stage(progress, position, STEPS[name])
        position += STEPS[name]
        return report

    report = next_stage("data")
    if settings.is_demo and not (settings.data_dir / "articles.csv").is_file():
        from .demo import generate_demo

        report(0.0, "generating the demo catalogue")
        generate_demo(settings.data_dir, progress=report)
    report(0.9, "reading the catalogue")
    catalog = load_catalog(settings.data_dir, cache_dir=settings.artifacts_dir)
    notices += catalog.notices  # e.g. a file read as Windows-1252

    embedder, notice = prepare_model(settings, catalog, store, next_stage("model"), log)
    if notice:
        notices.append(notice)

    from .content_index import build_content_index
    from .embed_job import embed_catalog

    if spark:
        spark.embed_catalog(catalog, embedder, store, progress=next_stage("embeddings"))
    else:
        embed_catalog(catalog, embedder, store, progress=next_stage("embeddings"), log=log)
    build_content_index(store, progress=next_stage("content_index"))
    from .lexical import build_lexical_index
    from .lookalikes import build_lookalikes

    build_lexical_index(catalog, store, progress=next_stage("lexical_index"))
    build_lookalikes(store, catalog, progress=next_stage("lookalikes"))

    report = next_stage("collab")
    if catalog.transactions is not None and len(catalog.transactions):
        from .collab import CollabState
        from .collab.ranker import Ranker, build_ranker, factor_engine

        if not CollabState.is_current(store, catalog):
            report(0.0, "fitting ALS and the similar-customer index")
            if spark:
                spark.fit_collab(catalog, store, progress=report)
            else:
                CollabState.fit(catalog, progress=report).save(store)
        state = CollabState.load(store, catalog)
        # The ranker trains on factors of the engine that serves them: Spark's when Spark made the state.
        served = factor_engine(store)
        if served == "spark" and not spark and not Ranker.is_current(store, catalog, state.params):
            notices.append("the served factors are Spark's, but this build trains the ranker on implicit's; "
                           "build with --engine spark to train it on Spark's")
            served = "implicit"

        def fit_state(cut):
            if served == "spark":
                return spark.fit_state(catalog, state.params, cut).with_looks(state.looks)
            return CollabState.fit(catalog, state.params, until=cut, looks=state.looks)

        thin = build_ranker(store, state, fit_state, progress=report, factors=served)
        if thin:
            notices.append(thin)
            log(f"notice: {thin}")
        report = next_stage("backtest")
        if settings.backtest_weeks:
            from .evaluate import CHOICE_ARTIFACT, backtest_expect, build_backtest

            if served == "spark" and not spark:  # each week would fit ALS on Spark
                if not store.is_current(CHOICE_ARTIFACT, backtest_expect(catalog, state.params, settings.backtest_weeks, served)):
                    notices.append("the served factors are Spark's: the backtest that chooses the recommendation "
                                   "method runs with --engine spark; until then the ranker ships")
                    log(f"notice: {notices[-1]}")
            else:
                log(build_backtest(store, catalog, state.params, fit_state, weeks=settings.backtest_weeks,
                                   factors=served, looks=state.looks, progress=report))
    report(1.0, "ready")
    return notices


def run_backtest(settings: Settings, *, progress: Progress | None = None, wait: float | None = 0) -> str:
    """The build's backtest step alone, on the built collaborative model (e.g. from the insights page),
    under the build lock (``wait`` as in `build`); returns the line the build would log."""
    from .collab import CollabState
    from .collab.ranker import factor_engine
    from .evaluate import build_backtest

    store = store_for(settings)
    with store.lock(wait=wait, notify=lambda message: None):
        catalog = load_catalog(settings.data_dir, cache_dir=settings.artifacts_dir)
        state = CollabState.load(store, catalog)
        if factor_engine(store) == "spark":
            raise InputError("this build's factors are Spark's: backtest with `python -m recommender build "
                             "--engine spark` so the ranker trains on the factors it serves")
        fit_state = lambda cut: CollabState.fit(catalog, state.params, until=cut, looks=state.looks)
        return build_backtest(store, catalog, state.params, fit_state, weeks=settings.backtest_weeks or
                              DEFAULT_BACKTEST_WEEKS, factors="implicit", looks=state.looks, progress=progress)


def open_engine(settings: Settings) -> Engine:
    """The engine over built artifacts; ArtifactError (what differs + the rebuild command) if the model
    is missing or stale. Search and collaborative parts load on first use (`Engine`, or all at once with
    `Engine.warm`); the versions it loads are leased (a build does not remove them) until `Engine.close`."""
    store = store_for(settings, reader=True)
    catalog = load_catalog(settings.data_dir, cache_dir=settings.artifacts_dir)
    art = store.load("clip_model", {"requested": requested_model(settings)})
    choice = read_choice(art.path, store)
    notices = list(catalog.notices) + ([choice["notice"]] if choice.get("notice") else [])
    return Engine(settings, catalog, store, art.path, choice, notices)


def ensure_engine(settings: Settings, *, progress: Progress | None = None, log=print) -> Engine:
    """Open the engine, building first whatever is missing, stale or damaged (the app's first run)."""
    demo_missing = settings.is_demo and not (settings.data_dir / "articles.csv").is_file()
    if not demo_missing:
        try:
            engine = open_engine(settings)
            engine.check_built()
            return engine
        except ArtifactError:
            pass
    build(settings, progress=progress, log=log)
    return open_engine(settings)
