"""The build's two heavy steps on Spark, for pipeline.build(engine="spark"); the session starts lazily."""
from __future__ import annotations

import atexit
from contextlib import ExitStack

from .session import spark_session


class SparkSteps:
    """`embed_catalog` and `fit_collab` with the local steps' signatures. Spark (a JVM, seconds) starts only
    when a step has work, and stops at `close()` or, after a failure, when the process exits."""

    def __init__(self, master: str | None, store):
        self.master = master
        self.store = store
        self._stack: ExitStack | None = None
        self._spark = None

    @property
    def spark(self):
        if self._spark is None:
            self._stack = ExitStack()
            self._spark = self._stack.enter_context(spark_session(self.master, self.store.scratch("spark")))
            atexit.register(self.close)
        return self._spark

    def embed_catalog(self, catalog, embedder, store, *, progress=None) -> None:
        from .embeddings import embed_catalog_on_spark

        expect = {"model": embedder.fingerprint, "data": catalog.fingerprint()}
        if not store.is_current("embeddings", expect):
            embed_catalog_on_spark(self.spark, catalog, embedder, store, progress=progress)

    def fit_collab(self, catalog, store, *, progress=None) -> None:
        from .als import fit_collab_on_spark

        fit_collab_on_spark(self.spark, catalog, store, progress=progress)

    def fit_state(self, catalog, params, until):
        """The state before ``until`` with Spark's factors (the ranker's training windows)."""
        from .als import fit_state_on_spark

        return fit_state_on_spark(self.spark, catalog, self.store, params, until)

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack, self._spark = None, None
            self.store.clear_scratch("spark")
