"""Serve a saved model: a JSON API and a web page with posters (extra ``[serve]``).

    >>> from latentrec.serve import create_app, run
    >>> app = create_app("model/")          # an ASGI app (FastAPI)
    >>> run("model/", host="127.0.0.1", port=8000)   # blocks, serving with uvicorn

Importing this package loads nothing: FastAPI and uvicorn are imported, and the
model loaded, only when :func:`create_app` or :func:`run` is called. See
docs/serve.md for the endpoints and the poster configuration.
"""

from __future__ import annotations

import os

from ..errors import require

__all__ = ["create_app", "run", "server_config"]


def create_app(model_path, *, cors_origins=None, max_body_bytes: int = 64 * 1024, poster_cache=None,
               tmdb_api_key: str | None = None, warm_up: bool = True, threads: int = 1,
               max_in_flight: int = 256):
    """Build the FastAPI application serving the model saved at ``model_path``.

    Parameters
    ----------
    model_path : str or Path or Recommender
        A directory written by ``model.save(path)`` / ``latentrec train``; a fitted
        model object is served as it is.
    cors_origins : list of str, optional
        Origins allowed to call the API from a browser. CORS is off by default
        (the page is served by the same app and needs none).
    max_body_bytes : int, default 65536
        Larger request bodies are refused with 413.
    poster_cache : path, optional
        Directory of cached TMDb posters (default ``$LATENTREC_POSTER_CACHE`` or
        ``~/.cache/latentrec/posters``).
    tmdb_api_key : str, optional
        TMDb API key; defaults to ``$TMDB_API_KEY``. Without one, posters are
        generated cards and the app never touches the network.
    warm_up : bool, default True
        Run each model call once before serving, so the first request does not
        pay for loading the numba kernels.
    threads : int, default 1
        Threads per model call (numba; BLAS always one, set once at start).
        Model calls run in FastAPI's bounded worker pool, one at a time; one
        thread is fastest for single-user calls. The model is not modified.
    max_in_flight : int, default 256
        Requests handled at once; more are answered 503 with ``Retry-After``.
        Counts requests, not connections (idle connections cost nothing).

    Returns
    -------
    fastapi.FastAPI
    """
    require("fastapi", "serve", "latentrec.serve")
    from .app import build_app, load_service
    from .posters import PosterStore

    service = load_service(model_path, warm_up=warm_up, threads=threads)
    key = tmdb_api_key if tmdb_api_key is not None else os.environ.get("TMDB_API_KEY")
    posters = PosterStore(key, poster_cache)
    return build_app(service, posters, cors_origins=cors_origins, max_body_bytes=max_body_bytes,
                     max_in_flight=max_in_flight)


def run(model_path, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info", **app_options) -> None:
    """Serve the model at ``model_path`` with uvicorn on ``host:port`` until interrupted.

    ``app_options`` are passed to :func:`create_app` (``cors_origins``,
    ``max_body_bytes``, ``poster_cache``, ``tmdb_api_key``, ``threads``). Binds to the
    loopback interface by default; pass ``host="0.0.0.0"`` to listen on all.
    """
    uvicorn = require("uvicorn", "serve", "latentrec serve")
    port = int(port)
    if not 0 <= port <= 65535:
        from ..errors import DataError

        raise DataError(f"port must be 0-65535, got {port}")
    app = create_app(model_path, **app_options)
    uvicorn.Server(server_config(app, host, port, log_level=log_level)).run()


def server_config(app, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info"):
    """The uvicorn configuration :func:`run` serves ``app`` with.

    No connection limit (``limit_concurrency`` would count idle connections, so a
    client holding 64 idle sockets could lock everybody else out); requests in
    flight are capped by the app instead (``max_in_flight``). Idle keep-alive
    connections are closed after 5 s.
    """
    uvicorn = require("uvicorn", "serve", "latentrec serve")
    return uvicorn.Config(app, host=host, port=int(port), log_level=log_level, access_log=False,
                          server_header=False, timeout_keep_alive=5, limit_concurrency=None)
