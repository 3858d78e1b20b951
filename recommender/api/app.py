"""`create_app(settings)`: the engine's search and recommendations over HTTP (FastAPI).

The engine is opened once per process, in a background thread at start (so /health answers at once and
/ready says when it is loaded), and shared read-only by every request. CPU-bound calls run in a thread
pool bounded by the cores, so the event loop stays free for /health and for reading requests while
searches run. Endpoints only translate HTTP to engine calls and frames to JSON.
"""
import asyncio
import hmac
import html
import logging
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from ..config import Settings
from ..errors import LookbookError
from ..runtime import available_cores
from . import schemas
from .errors import ApiError, error_response, install_error_handlers, lookbook_status, public
from .routes import API_KEY_HEADER, ARTICLE_FIELDS, ERRORS, router
from .uploads import MAX_REQUEST_BYTES

log = logging.getLogger("recommender.api")
POLL_S = 2.0  # how often a server looks for a newer build
BODY_TIMEOUT_S = 20.0  # between two parts of a request body (a photo upload sends many)
MAX_JSON_BYTES = 64 * 1024  # a JSON body (picked article ids) is parsed whole: far above any real one
RELEASE_AFTER_S = 60.0  # the replaced engine's artifacts are released this long after a switch


class RequestTooLarge(Exception):
    """Raised into the app while a request body streams in, once it passes the limit."""


class RequestTimedOut(Exception):
    """Raised into the app when the next part of a request body does not come within BODY_TIMEOUT_S."""


class EngineHolder:
    """The engine the process serves (or why there is none yet), the bounded pool its calls run in, and
    the switch to a newer build.

    An engine is served only once it is warm (every part loaded, one request of each kind answered), so
    no request ever waits for loading. Every `POLL_S` the artifacts folder's build id (the current
    versions' names: a few small reads) is compared with the served engine's; when a build has landed
    (no build holds the lock, and the id changed and stayed put for a poll), a new engine is opened and
    warmed in a worker thread and swapped in between requests. A request takes the engine once
    (`require`), so its response comes wholly from one version; the old engine's artifact leases are
    released `RELEASE_AFTER_S` later, once its last requests are done. An incomplete build (stale
    artifacts, a killed builder) is tried once per build id and the current engine keeps serving.
    """

    def __init__(self, settings: Settings, engine=None, threads: int | None = None, poll_s: float = POLL_S):
        self.settings = settings
        self.engine = engine
        self.problem: ApiError | None = None
        self.threads = threads or available_cores()
        self.poll_s = poll_s
        self._limiter: anyio.CapacityLimiter | None = None
        self._article_columns: tuple | None = None  # (engine, its columns)
        self._tried: str | None = None  # the last build id a switch was tried for

    def open_warm(self):
        """A new engine over the current build, checked and warm (runs in a worker thread)."""
        from ..pipeline import open_engine

        engine = open_engine(self.settings)
        try:
            engine.check_built()
            return engine.warm()
        except BaseException:
            engine.close()
            raise

    async def load(self) -> None:
        from ..pipeline import store_for

        try:
            self._tried = await anyio.to_thread.run_sync(store_for(self.settings).build_id)  # what this loads
            self.engine = await anyio.to_thread.run_sync(self.open_warm)
            log.info("engine ready: %s, build %s", self.engine.catalog.name, self.engine.build_info())
        except LookbookError as exc:  # not built, stale, other model: the message says what to run
            log.error("cannot open the engine: %s", exc)
            self.problem = ApiError(503, lookbook_status(exc)[1], str(exc))
        except Exception:
            log.exception("cannot open the engine")
            self.problem = ApiError(503, "unavailable", "the engine failed to load; the server log has the details")

    async def watch(self) -> None:
        """Switch to each newer complete build, for the life of the server."""
        from ..pipeline import store_for

        store, seen = store_for(self.settings), None
        while True:
            await asyncio.sleep(self.poll_s)
            current = await anyio.to_thread.run_sync(store.build_id)
            if self.engine is None and self.problem is None:
                continue  # the first load is still running: a newer build is taken once it is done
            if await anyio.to_thread.run_sync(store.build_running):
                seen = None  # a build half-way is not opened (it would be refused, after loading its data)
                continue
            served = self.engine.build_id if self.engine is not None else None
            if current == served or current != seen or current == self._tried:
                seen = current  # a build id counts once it stays put for a poll
                continue
            self._tried = current
            await self._switch()

    async def _switch(self) -> None:
        try:
            new = await anyio.to_thread.run_sync(self.open_warm)
        except LookbookError as exc:
            log.warning("a newer build is not servable yet (%s); still serving the current one", exc)
            return
        except Exception:
            log.exception("a newer build failed to load; still serving the current one")
            return
        old, self.engine, self.problem = self.engine, new, None
        log.info("switched from build %s to build %s", old.build_info() if old else None, new.build_info())
        if old is not None:
            asyncio.get_running_loop().call_later(RELEASE_AFTER_S, old.close)

    def require(self):
        if self.engine is not None:
            return self.engine
        raise self.problem or ApiError(503, "loading", "the engine is still loading; retry in a few seconds")

    def article_columns(self, engine):
        """(article id → row index, {column: numpy array}) of the summary columns recommendations show, made
        once per engine: taking a dozen values from Arrow-backed pandas columns one by one costs milliseconds."""
        if self._article_columns is None or self._article_columns[0] is not engine:
            import pandas as pd

            articles = engine.catalog.articles
            self._article_columns = (engine, (
                pd.Index(articles["article_id"].to_numpy(dtype=str)),
                {c: articles[c].to_numpy(dtype=bool if c == "has_image" else object) for c in ARTICLE_FIELDS},
            ))
        return self._article_columns[1]

    async def run(self, fn, /, *args, **kwargs):
        """fn(*args, **kwargs) in the bounded pool (at most one call per core at a time)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self._limiter)


def create_app(settings: Settings | None = None, *, engine=None, api_key: str | None = None,
               cors_origins: list[str] | None = None, threads: int | None = None) -> FastAPI:
    """The API over `settings`' engine (opened at start), or over an already opened `engine`.

    `api_key`: when set, every /v1 call must send it in the X-API-Key header. `cors_origins`: browser
    origins allowed to call the API (none by default). `threads`: the pool size (default: the cores).
    """
    holder = EngineHolder(settings or (engine.settings if engine is not None else Settings()), engine, threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tasks = [asyncio.create_task(holder.watch())]
        if holder.engine is None:
            tasks.append(asyncio.create_task(holder.load()))
        yield
        for task in tasks:
            task.cancel()

    app = FastAPI(title="Lookbook API", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Fashion search and recommendations over one H&M-format catalogue.")
    app.state.engine = holder
    app.state.api_key = api_key
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=MAX_REQUEST_BYTES, api_key=api_key)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=[API_KEY_HEADER])

    @app.get("/health", response_model=schemas.Health, tags=["service"])
    async def health():
        """The process answers (the engine may still be loading); HEAD too, for load balancers."""
        return {"status": "ok"}

    app.head("/health", include_in_schema=False)(health)

    @app.get("/ready", response_model=schemas.Ready, responses={503: ERRORS[503]}, tags=["service"])
    async def ready():
        """200 once every part a request can touch is loaded and warm, with the build served and any
        fallback in use; 503 with the reason (loading, not built) before."""
        engine = holder.require()
        return {"status": "ready", **engine.build_info(), "fallbacks": [public(f) for f in engine.fallbacks]}

    app.include_router(router)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs():
        """Every endpoint with its parameters, from the OpenAPI schema, in one page that needs nothing from
        the network (Swagger UI loads from a CDN: a blank page on offline deployments)."""
        return api_reference(app.openapi())

    return app


def api_reference(schema: dict) -> str:
    """The OpenAPI schema as a plain HTML page: per endpoint its method, path, summary and parameters."""
    rows = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            params = ", ".join(f"{p['name']} ({p['in']})" for p in operation.get("parameters", []))
            body = operation.get("requestBody", {}).get("content", {})
            if body:
                params = ", ".join(filter(None, [params, "body: " + " or ".join(body)]))
            summary = html.escape(operation.get("description") or operation.get("summary") or "")
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{summary}</td><td>{html.escape(params)}</td></tr>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Lookbook API</title>"
            "<style>body{font-family:sans-serif;margin:2rem}td{padding:.3rem .6rem;vertical-align:top;"
            "border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>{html.escape(schema['info']['title'])}</h1><p>{html.escape(schema['info'].get('description', ''))} "
            "The machine-readable schema: <a href='openapi.json'>openapi.json</a>.</p>"
            "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th></tr>"
            + "".join(rows) + "</table></body></html>")


class BodyLimit:
    """Before any body byte is read: 401 for a /v1 call without the server's API key; then 413 for bodies
    over the limit (`MAX_JSON_BYTES` for JSON, which is parsed as a whole), at once from Content-Length,
    else as soon as the streamed bytes pass it (the app's own answer to the cut-off body is replaced)."""

    def __init__(self, app, limit: int, api_key: str | None = None):
        self.app, self.upload_limit, self.api_key = app, limit, api_key

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.api_key and scope["path"].startswith("/v1/") and not _key_matches(headers, self.api_key):
            return await unauthorized(headers)(scope, receive, send)
        json_body = headers.get(b"content-type", b"").split(b";")[0].strip().lower() == b"application/json"
        limit = MAX_JSON_BYTES if json_body else self.upload_limit
        size = f"{limit // 1024} KiB for JSON" if json_body else f"{limit / 1e6:.0f} MB"
        too_large = error_response(413, "too_large", f"the request is larger than the limit of {size}")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await too_large(scope, receive, send)
        received, exceeded, answered = 0, False, False

        async def counting_receive():
            nonlocal received, exceeded
            try:  # a client that stops sending holds a connection and a pool slot: not for long
                message = await asyncio.wait_for(receive(), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise RequestTimedOut() from None
            received += len(message.get("body", b""))
            if received > limit:
                exceeded = True
                raise RequestTooLarge()
            return message

        async def guarded_send(message):
            nonlocal answered
            if not exceeded:
                answered = True
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except RequestTooLarge:
            pass
        except RequestTimedOut:
            if not answered:
                message = f"the request body did not arrive within {BODY_TIMEOUT_S:g} s"
                await error_response(408, "timeout", message)(scope, receive, send)
            return
        if exceeded and not answered:
            await too_large(scope, receive, send)


def _key_matches(headers: dict, api_key: str) -> bool:
    given = headers.get(API_KEY_HEADER.lower().encode())
    return given is not None and hmac.compare_digest(given, api_key.encode())


def unauthorized(headers: dict):
    what = "a wrong" if API_KEY_HEADER.lower().encode() in headers else "no"
    return error_response(401, "unauthorized", f"{what} API key: send it in the {API_KEY_HEADER} header",
                          headers={"WWW-Authenticate": API_KEY_HEADER})
