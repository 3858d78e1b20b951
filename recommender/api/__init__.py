"""The HTTP API: `create_app(settings)` (FastAPI) and `serve(...)` (uvicorn); see README "HTTP API"."""
from .app import create_app
from .server import serve

__all__ = ["create_app", "serve"]
