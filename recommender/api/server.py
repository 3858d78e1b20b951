"""`python -m recommender serve`: uvicorn over `create_app`, one engine per worker process.

Settings reach the worker processes through the LOOKBOOK_* environment (what `Settings()` reads), so
one or many workers start the same way.
"""
from __future__ import annotations

import logging
import os

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import Settings
from ..runtime import available_cores
from .app import create_app

log = logging.getLogger("recommender.api")
# Open connections and requests a worker takes at once; more are answered 503 at once.
MAX_CONNECTIONS = 256
HEADER_TIMEOUT_S = 10.0  # from a request's first byte to the end of its headers


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on request headers, which uvicorn lacks: a client that
    trickles its headers (a byte every few seconds resets the keep-alive timer) is answered 408 and
    disconnected. Bodies have their own timeout (app.BODY_TIMEOUT_S)."""

    _header_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request on a kept-alive connection starts
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # its headers are in
            self._disarm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()


def threads_per_worker() -> int:
    return max(1, available_cores() // int(os.environ.get("LOOKBOOK_SERVE_WORKERS", "1")))


def configure_threads() -> None:
    """BLAS / OpenMP / torch thread counts, once per process before the engine loads (never per request):
    one thread a call, since the pool runs `threads_per_worker()` calls at once (calls × threads ≤ cores,
    as in the app)."""
    from ..runtime import configure_threads as configure

    configure("serve", cores=1)


def app_from_environment():
    """uvicorn's app factory (runs in each worker process)."""
    configure_threads()
    _log_to_stderr()
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
                workers=workers, access_log=False, timeout_graceful_shutdown=5, limit_concurrency=MAX_CONNECTIONS,
                http=HeaderTimeoutProtocol)


def _log_to_stderr() -> None:
    """The engine's own messages (loading, builds switched to) beside uvicorn's, at INFO."""
    engine_log = logging.getLogger("recommender")
    if not engine_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        engine_log.addHandler(handler)
        engine_log.setLevel(logging.INFO)
