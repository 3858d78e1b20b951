"""Every failure of an HTTP call as one JSON body, `{"error": {"code": …, "message": …}}`, with its status.

User-caused problems keep their specific message (minus any server path); anything else is logged in
full on the server and answered with a generic 500, so no client ever sees a traceback or a path.
"""
from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ArtifactError, DataError, InputError, LookbookError, ModelError

log = logging.getLogger("recommender.api")

# Absolute POSIX paths of two or more components (e.g. in "run … --data /srv/hm" or "(/srv/hm/articles.csv)").
_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"`()\[\]{}<>,;]+/)+([^\s/'\"`()\[\]{}<>,;]*)")
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                 413: "too_large", 415: "unsupported_media_type", 422: "validation", 503: "unavailable"}


class ApiError(Exception):
    """A problem the API itself diagnoses (unknown id, missing key, too many bytes, not ready)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def public(message: str) -> str:
    """The message without server paths: an absolute path becomes its last component."""
    return _PATH.sub(lambda m: m.group(1) or "…", message)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": public(message)}}, status_code=status, headers=headers)


def lookbook_status(exc: LookbookError) -> tuple[int, str]:
    if isinstance(exc, InputError):
        return 400, "bad_input"
    if isinstance(exc, ArtifactError):
        return 503, "not_built"
    if isinstance(exc, ModelError):
        return 503, "model_unavailable"
    if isinstance(exc, DataError):
        return 503, "data_error"
    return 400, "bad_input"


def _validation_message(exc: RequestValidationError) -> str:
    """'query k: Input should be less than or equal to 100; …' (never the submitted value itself)."""
    parts = []
    for error in exc.errors()[:5]:
        where = " ".join(str(part) for part in error.get("loc", ()))
        message = error.get("msg", "invalid")
        if "Expected UploadFile" in message:  # FastAPI's own wording for a plain form value
            message = "must be a file upload (multipart/form-data), not a text field"
        parts.append(f"{where}: {message}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(LookbookError)
    async def on_lookbook_error(request: Request, exc: LookbookError):
        status, code = lookbook_status(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(status, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        return error_response(422, "validation", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception):  # Starlette re-raises it after, so uvicorn logs it
        return error_response(500, "internal", "internal error; the server log has the details")
