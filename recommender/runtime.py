"""Thread counts for the whole process, set once at start by the CLI, the app and any server; and
forked worker processes for work that splits into independent pieces (`forked_map`).

Per-call limits do not hold: BLAS pools are process-wide and a limit set from a request thread is
ignored by OpenBLAS built with pthreads, and OpenMP reads OMP_NUM_THREADS once, when it is loaded, as
the default of every thread started later (a Streamlit session, a server's worker). So the limits are
set here, before FAISS and torch do any work:

    purpose "serve": many small queries side by side. BLAS 1 and FAISS (OpenMP) 1 per query, so
                     concurrent queries do not oversubscribe the cores; torch (the text/image encoder,
                     one forward pass per query) may use every core.
    purpose "build": one big job at a time: every library may use every core.

When serving, OpenMP's idle threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE): a spinning
thread takes a core from the server's own event loop and from other queries, and a query encoder's
thread descheduled by them makes its partners spin at every barrier (a tiny text encoder took tens of
milliseconds in the app that way).
"""
from __future__ import annotations

import multiprocessing
import os
import threading
from itertools import chain, islice
from typing import Callable, Iterable, Iterator, TypeVar

T, R = TypeVar("T"), TypeVar("R")
PURPOSES = ("serve", "build")
# Read when a BLAS library loads: libraries imported after configure_threads start with the limit.
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def thread_plan(purpose: str, cores: int) -> dict[str, int]:
    """The thread counts for `purpose` on `cores` cores."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    if purpose == "serve":
        return {"blas": 1, "openmp": 1, "torch": cores, "torch_interop": 1}
    return {"blas": cores, "openmp": cores, "torch": cores, "torch_interop": 1}


def configure_threads(purpose: str = "serve", cores: int | None = None) -> dict[str, int]:
    """Set BLAS, OpenMP (FAISS) and torch thread counts for this process; returns the plan applied.

    Call it once, first thing (before FAISS or torch have run anything): OpenMP's default for threads
    started later is fixed when it loads.
    """
    cores = cores or available_cores()
    plan = thread_plan(purpose, cores)
    os.environ["OMP_NUM_THREADS"] = str(plan["openmp"])
    if purpose == "serve":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when OpenMP loads, like OMP_NUM_THREADS
    for name in BLAS_VARIABLES:
        os.environ[name] = str(plan["blas"])

    import numpy  # noqa: F401  (loads its BLAS so the limit below reaches it)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=plan["blas"], user_api="blas")  # process-wide; kept (not a context)

    import faiss

    faiss.omp_set_num_threads(plan["openmp"])  # this thread; later threads take OMP_NUM_THREADS

    import torch

    torch.set_num_threads(plan["torch"])  # torch re-applies it in every thread that runs an op
    try:
        torch.set_num_interop_threads(plan["torch_interop"])
    except RuntimeError:  # may be set once only, before any inter-op work: a second call keeps the first
        pass
    return plan


def forked_map(function: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> Iterator[R]:
    """``function`` of each item, in the items' order, computed by ``workers`` processes (default: one a
    core) forked from this one: they see this process's memory as it is at the fork (a loaded model, its
    tables) without copying or pickling it, so build what they share first. Only items and results travel.
    Everything runs here with one worker, with fewer than ITEMS_PER_WORKER items a worker (starting the
    processes would cost more than it saves), outside the main thread (the app's sessions, a server's
    requests: forking a process whose other threads may hold locks is unsafe), and where fork does not exist."""
    items = iter(items)
    workers = available_cores() if workers is None else workers
    head = list(islice(items, ITEMS_PER_WORKER * workers))
    forkable = "fork" in multiprocessing.get_all_start_methods() and threading.current_thread() is threading.main_thread()
    if len(head) < ITEMS_PER_WORKER * workers or workers <= 1 or not forkable:
        yield from map(function, chain(head, items))
        return
    global _forked_function
    _forked_function = function
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_call_forked, chain(head, items))
    finally:
        _forked_function = None


ITEMS_PER_WORKER = 4
_forked_function = None  # what forked workers call: inherited at the fork, never pickled


def _call_forked(item):
    return _forked_function(item)


class built_once:
    """A cached property built at most once per instance, also when several threads ask for it first at
    the same time (`functools.cached_property` takes no lock since Python 3.12: concurrent first requests
    built GB-scale tables twice). After the first build it is a plain attribute read."""

    def __init__(self, build: Callable):
        self.build, self.name, self.__doc__ = build, build.__name__, build.__doc__
        self._lock = threading.RLock()  # held only while a first value is built

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        values = instance.__dict__
        if self.name not in values:
            with self._lock:
                if self.name not in values:
                    values[self.name] = self.build(instance)
        return values[self.name]
