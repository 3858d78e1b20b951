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


def threads_per_worker() -> int:
    return max(1, available_cores() // int(os.environ.get("LOOKBOOK_SERVE_WORKERS", "1")))


def configure_threads() -> None:
    """BLAS / OpenMP / torch thread counts, once per process before the engine loads (never per request)."""
    from ..runtime import configure_threads as configure

    configure("serve", cores=threads_per_worker())


def app_from_environment():
    """uvicorn's app factory (runs in each worker process)."""
    configure_threads()
    origins = [o.strip() for o in os.environ.get("LOOKBOOK_CORS_ORIGINS", "").split(",") if o.strip()]
    return create_app(Settings(), api_key=os.environ.get("LOOKBOOK_API_KEY") or None,
                      cors_origins=origins, threads=threads_per_worker())


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve until interrupted. 127.0.0.1 by default: another host must be asked for explicitly."""
    import uvicorn

    os.environ.update(settings.environment())
    os.environ["LOOKBOOK_SERVE_WORKERS"] = str(workers)
    if os.environ.get("LOOKBOOK_API_KEY"):
        log.info("API key required on /v1")
    uvicorn.run("recommender.api.server:app_from_environment", factory=True, host=host, port=port,
                workers=workers, access_log=False, timeout_graceful_shutdown=5)
