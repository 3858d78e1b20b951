"""`python -m recommender serve`: uvicorn over `create_app`, one engine per worker process.

Settings reach the worker processes through the LOOKBOOK_* environment (what `Settings()` reads), so
one or many workers start the same way.
"""
from __future__ import annotations

import logging
import os

from ..config import Settings
from .app import available_cores, create_app

log = logging.getLogger("recommender.api")


def settings_environment(settings: Settings) -> dict[str, str]:
    env = {
        "LOOKBOOK_DATA": str(settings.data_dir),
        "LOOKBOOK_ARTIFACTS": str(settings.artifacts_dir),
        "LOOKBOOK_MODEL": settings.model,
        "LOOKBOOK_PRETRAINED": settings.pretrained,
        "LOOKBOOK_NO_FALLBACK": "" if settings.fallback else "1",
    }
    if settings.device:
        env["LOOKBOOK_DEVICE"] = settings.device
    return env


def threads_per_worker() -> int:
    return max(1, available_cores() // int(os.environ.get("LOOKBOOK_SERVE_WORKERS", "1")))


def configure_threads() -> None:
    """BLAS / OpenMP / torch thread counts, once per process before the engine loads (never per request)."""
    try:
        from ..runtime import configure_threads as configure
    except ImportError:  # bridge until recommender.runtime lands
        import faiss
        import torch
        from threadpoolctl import threadpool_limits

        # One thread per call: the pool runs one call per core. Two-thread calls on busy cores spin-wait
        # (a demo text query took 68 ms of CPU instead of 4 with other jobs on the machine).
        torch.set_num_threads(1)
        faiss.omp_set_num_threads(1)
        threadpool_limits(1)  # BLAS (numpy, implicit) and other OpenMP libraries
        return
    configure("serve")


def app_from_environment():
    """uvicorn's app factory (runs in each worker process)."""
    configure_threads()
    origins = [o.strip() for o in os.environ.get("LOOKBOOK_CORS_ORIGINS", "").split(",") if o.strip()]
    return create_app(Settings(), api_key=os.environ.get("LOOKBOOK_API_KEY") or None,
                      cors_origins=origins, threads=threads_per_worker())


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve until interrupted. 127.0.0.1 by default: another host must be asked for explicitly."""
    import uvicorn

    os.environ.update(settings_environment(settings))
    os.environ["LOOKBOOK_SERVE_WORKERS"] = str(workers)
    if os.environ.get("LOOKBOOK_API_KEY"):
        log.info("API key required on /v1")
    uvicorn.run("recommender.api.server:app_from_environment", factory=True, host=host, port=port,
                workers=workers, access_log=False, timeout_graceful_shutdown=5)
