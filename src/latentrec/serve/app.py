"""The FastAPI application: JSON API + the static page, built by :func:`create_app`.

Imported only by :func:`latentrec.serve.create_app`, so ``import latentrec``
never needs FastAPI. Nothing is loaded at import time; every file the app
serves is read from the package at start-up and addressed by a fixed route -
no path or file name is ever taken from a request.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Optional, Union

from fastapi import Body, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..__about__ import __version__
from ..errors import DataError, ModelError, UnknownIdError
from .middleware import GuardMiddleware
from .posters import PosterStore, generated_svg
from .service import ModelService

Id = Union[int, str]
MAX_N = 1000
N = Annotated[int, Query(ge=1, le=MAX_N, description="how many items (1-1000)")]
_STATIC = {  # route -> (package file, media type)
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
    "/static/favicon.svg": ("favicon.svg", "image/svg+xml"),
    "/favicon.ico": ("favicon.svg", "image/svg+xml"),
}


class Item(BaseModel):
    id: Id
    title: str = Field(description="the title as in the data, e.g. 'Toy Story (1995)'")
    name: str = Field(description="the title for display, year removed, article in front")
    year: Optional[int] = None
    genres: list[str] = []
    popularity: int = Field(description="number of training interactions")
    poster_url: str
    imdb_id: Optional[str] = None
    tmdb_id: Optional[int] = None
    score: Optional[float] = None
    rating: Optional[float] = None


class ItemList(BaseModel):
    items: list[Item]


class Similar(BaseModel):
    item: Item
    similar: list[Item]


class Recommendations(BaseModel):
    user: Optional[Id] = None
    items: list[Item]
    score_kind: str = Field(description="what each item's score is: 'rating', the model's predicted rating on "
                                        "its rating scale (clipped to it); 'score', a ranking score whose only "
                                        "meaning is its order")


class History(BaseModel):
    user: Id
    count: int = Field(description="number of the user's training interactions")
    items: list[Item]


class UserList(BaseModel):
    count: int
    users: list[dict]


class Rated(BaseModel):
    item: Union[StrictInt, StrictStr] = Field(description="an item id of the model (integer or string)")
    rating: float = Field(allow_inf_nan=False, description="a rating on the model's scale (a weight for implicit models)")


class VisitorRequest(BaseModel):
    ratings: list[Rated] = Field(min_length=1, max_length=MAX_N)
    n: int = Field(10, ge=1, le=MAX_N)
    exclude_seen: bool = True


class Health(BaseModel):
    status: str
    version: str
    model: str
    task: str
    n_users: int
    n_items: int
    n_interactions: int
    rating_scale: Optional[list[float]] = None
    has_metadata: bool
    posters: str
    source: Optional[str] = None


def _json(payload, service: ModelService | None = None) -> Response:
    """Serialise a payload the service built (already plain JSON types) without revalidating it.

    ``response_model`` still documents the shape in the OpenAPI schema. With
    ``service``, the model call's time goes into a ``Server-Timing`` header.
    """
    headers = None
    if service is not None and service.last_model_ms() is not None:
        headers = {"server-timing": f"model;dur={service.last_model_ms():.2f}"}
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return Response(body, media_type="application/json", headers=headers)


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, "status": status, **extra}, status_code=status)


def _asset(name: str) -> bytes:
    return resources.files("latentrec.serve").joinpath("static", name).read_bytes()


def build_app(service: ModelService, posters: PosterStore, *, cors_origins=None,
              max_body_bytes: int = 64 * 1024, max_in_flight: int = 256) -> FastAPI:
    """The app around an already loaded :class:`ModelService` (see :func:`create_app`)."""
    # no /docs: the Swagger page loads its scripts from a CDN, which the offline,
    # CSP-locked service does not allow; /openapi.json is the schema
    app = FastAPI(title="latentrec", version=__version__, docs_url=None, redoc_url=None,
                  description="Recommendations from a saved latentrec model: search items, similar items, "
                              "top-N for a known user, and for a visitor from a few ratings (fold-in).")
    app.state.service = service
    app.state.posters = posters
    pages = {"/": (_asset("index.html"), "text/html; charset=utf-8")}
    pages.update({route: (_asset(name), media) for route, (name, media) in _STATIC.items()})

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, exc: UnknownIdError):
        return _error(404, str(exc))

    @app.exception_handler(DataError)
    async def bad_data(request: Request, exc: DataError):
        return _error(422, str(exc))

    @app.exception_handler(ModelError)
    async def model_error(request: Request, exc: ModelError):
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = jsonable_encoder(exc.errors(), exclude={"input", "url", "ctx"})
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}", detail=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    def page(route):
        body, media = pages[route]

        async def serve():
            return Response(body, media_type=media, headers={"cache-control": "no-cache"})
        return serve

    for route in pages:
        app.add_api_route(route, page(route), methods=["GET"], include_in_schema=False)

    # Every endpoint that calls the model, scans or downloads is a plain ``def``:
    # FastAPI runs it in the bounded worker pool (anyio's, 40 threads), so the
    # event loop - /api/health, the page and its static files - keeps answering
    # while a heavy request runs. Model calls still go one at a time through the
    # service's lock. Item ids are matched with a ``path`` converter so an id
    # holding "/" (sent as %2F) reaches its route.
    @app.get("/api/health", response_model=Health, tags=["meta"])
    async def health():
        """The loaded model and its size."""
        return _json({**service.info(), "version": __version__,
                      "posters": "tmdb" if posters.enabled else "generated"})

    @app.get("/api/items", response_model=ItemList, tags=["items"])
    def search_items(q: Annotated[str, Query(max_length=200, description="words of the title")] = "",
                     limit: Annotated[int, Query(ge=1, le=100)] = 20):
        """Items whose title holds every word of ``q`` (case- and accent-insensitive); most popular
        items when ``q`` is empty."""
        return _json({"items": [service.card(c) for c in service.search(q, limit)]})

    @app.get("/api/items/{item_id:path}/similar", response_model=Similar, tags=["items"])
    def similar_items(item_id: str, n: N = 10):
        """The ``n`` items most similar to this one (cosine in the latent space)."""
        code = service.item_code(item_id)
        return _json({"item": service.card(code), "similar": service.similar(code, n)}, service)

    @app.get("/api/items/{item_id:path}/poster", tags=["items"],
             responses={200: {"content": {"image/jpeg": {}, "image/svg+xml": {}}}})
    def poster(item_id: str):
        """The item's TMDb poster (cached) when configured, else a generated SVG card."""
        code = service.item_code(item_id)
        data = posters.get(service.tmdb_id(code))
        headers = {"cache-control": "public, max-age=86400"}
        if data is not None:
            return Response(data, media_type="image/jpeg", headers=headers)
        svg = generated_svg(service.names[code], service.years[code], service.genres[code])
        return Response(svg.encode("utf-8"), media_type="image/svg+xml", headers=headers)

    @app.get("/api/items/{item_id:path}", response_model=Item, tags=["items"])
    def get_item(item_id: str):
        """One item with its metadata."""
        return _json(service.card(service.item_code(item_id)))

    @app.get("/api/users", response_model=UserList, tags=["users"])
    async def list_users(offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=MAX_N)] = 50):
        """A page of the known user ids with their number of interactions."""
        ids = service.user_ids[offset:offset + limit]
        counts = service.user_counts[offset:offset + limit]
        return _json({"count": service.n_users,
                      "users": [{"id": u, "count": int(c)} for u, c in zip(ids.tolist(), counts)]})

    @app.get("/api/users/{user_id:path}/recommendations", response_model=Recommendations, tags=["users"])
    def recommend(user_id: str, n: N = 10, exclude_seen: bool = True):
        """Top-``n`` items for a known user (training items left out unless ``exclude_seen=false``)."""
        code = service.user_code(user_id)
        items = service.recommend(code, n, exclude_seen)
        return _json({"user": service.user_ids[code].item(), "items": items,
                      "score_kind": service.model.score_kind()}, service)

    @app.get("/api/users/{user_id:path}/history", response_model=History, tags=["users"])
    def history(user_id: str, limit: Annotated[int, Query(ge=1, le=MAX_N)] = 50):
        """The user's training interactions, highest rated first."""
        code = service.user_code(user_id)
        count, items = service.history(code, limit)
        return _json({"user": service.user_ids[code].item(), "count": count, "items": items})

    @app.post("/api/recommendations", response_model=Recommendations, tags=["visitors"])
    def visitor(request: Annotated[VisitorRequest, Body(examples=[{
            "ratings": [{"item": 1, "rating": 5}, {"item": 2, "rating": 3}], "n": 10}])]):
        """Top-``n`` for a visitor the model has never seen, from a few (item, rating) pairs.

        The visitor's factors are solved from the fitted item factors (fold-in); nothing is retrained
        or stored. ``score_kind`` says what the scores are (a rating model's are predicted ratings). Unknown items give 404; ratings outside the model's scale give 422.
        """
        items = [r.item for r in request.ratings]
        ratings = [r.rating for r in request.ratings]
        out = service.fold_in(items, ratings, request.n, request.exclude_seen)
        return _json({"user": None, "items": out, "score_kind": service.model.score_kind(fold_in=True)}, service)

    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["content-type"])
    app.add_middleware(GuardMiddleware, max_body_bytes=max_body_bytes, max_in_flight=max_in_flight)
    return app


def load_service(model_path, *, warm_up: bool = True, threads: int = 1) -> ModelService:
    """Load a saved model (or wrap a fitted one) into a :class:`ModelService`."""
    from ..persist import load_model

    if isinstance(model_path, (str, os.PathLike)):
        model = load_model(Path(model_path))
        service = ModelService(model, source=model_path, threads=threads)
    else:
        service = ModelService(model_path, threads=threads)
    service.start()
    if warm_up:
        service.warm_up()
    return service
