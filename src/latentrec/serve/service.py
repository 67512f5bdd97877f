"""The model behind the web service: id parsing, title search, item cards, history.

Nothing here imports FastAPI, so the logic is testable and reusable on its own.
Every model call goes through one lock and runs on ``threads`` threads (one by
default): a single user's top-N gains nothing from a parallel region, and on a
busy 2-core machine waking a second OpenMP thread for every request costs 20-80
ms of waiting (measured: 0.7 ms on one thread vs 25-80 ms on two for one
60k-item top-N while other processes kept the cores busy). Thread limits are set
once: BLAS is held to one thread for the whole process when the service starts
(:meth:`ModelService.start`), and each worker thread sets its numba thread count
(a per-thread setting) the first time it calls the model. The caller's model is
never modified: a different ``n_threads`` is set on a shallow copy.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import threading
import time
import unicodedata
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from ..errors import DataError, ModelError, UnknownIdError, clip, show

_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_ARTICLE = re.compile(r"^(.*?), (The|A|An|Les|Le|La|L'|Il|Das|Der|Die|El|Los|Las)( \(.*\))?$")
_TOKEN = re.compile(r"[^\w]+", re.UNICODE)
_INT_ID = re.compile(r"^[+-]?\d{1,19}$")
#: longest id accepted from a request (strings longer than this cannot be a model's id here)
MAX_ID_LENGTH = 200


def normalize(text: str) -> str:
    """Lower-case, accent-free, punctuation-free text with single spaces (for search)."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(t for t in _TOKEN.split(text) if t)


def display_title(title: str) -> str:
    """``"Shawshank Redemption, The (1994)"`` -> ``"The Shawshank Redemption"``."""
    name = _YEAR.sub("", str(title)).strip()
    m = _ARTICLE.match(name)
    if m:
        sep = "" if m.group(2).endswith("'") else " "
        name = f"{m.group(2)}{sep}{m.group(1)}{m.group(3) or ''}"
    return name


def parse_id(raw, ids: np.ndarray, what: str = "item"):
    """Convert a request's id (path string or JSON value) to the vocabulary's dtype.

    Integer vocabularies accept integers and strings of decimal digits; string
    vocabularies accept strings (and integers, compared as their decimal text).
    Anything else raises :class:`UnknownIdError` - the caller turns it into a 404.
    """
    kind = ids.dtype.kind
    if isinstance(raw, bool) or raw is None:
        raise UnknownIdError(f"{what} {show(raw)} is not known to the model")
    if kind in "iu":
        if isinstance(raw, (int, np.integer)):
            value = int(raw)
        elif isinstance(raw, str) and _INT_ID.match(raw.strip()):
            value = int(raw.strip())
        else:
            raise UnknownIdError(f"{what} {clip(str(raw))} is not known to the model "
                                 "(this model's ids are integers)")
        info = np.iinfo(ids.dtype)
        if not info.min <= value <= info.max:
            raise UnknownIdError(f"{what} {value} is not known to the model")
        return ids.dtype.type(value)
    if isinstance(raw, (int, np.integer)):
        raw = str(int(raw))
    if not isinstance(raw, str) or len(raw) > MAX_ID_LENGTH:
        raise UnknownIdError(f"{what} {clip(str(raw))} is not known to the model")
    return raw


def url_id(value) -> str:
    """An id as one URL path segment: every reserved character percent-encoded (``a/b`` -> ``a%2Fb``),
    and the dot segments ``.`` / ``..`` too, so no client or proxy resolves them away."""
    text = quote(str(value), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


def _json_id(value):
    return int(value) if isinstance(value, (int, np.integer)) else str(value)


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _column(meta: pd.DataFrame | None, name: str, index: np.ndarray) -> np.ndarray | None:
    """Column ``name`` of the metadata aligned to the vocabulary (object array), or None."""
    if meta is None or name not in meta.columns:
        return None
    try:
        col = meta[name][~meta.index.duplicated()].reindex(index)
    except (TypeError, ValueError):
        return None
    return col.astype(object).where(col.notna(), None).to_numpy()


class ModelService:
    """A loaded model plus the lookups the API needs, built once at start-up.

    Parameters
    ----------
    model : Recommender
        A fitted latentrec model.
    source : str or Path, optional
        Where the model was loaded from (shown by ``/api/health``).
    threads : int, default 1
        Numba threads each model call may use (BLAS always runs one). A model
        with a different ``n_threads`` is served through a shallow copy set to
        this value; the model passed in is not modified.
    """

    def __init__(self, model, source=None, *, threads: int = 1):
        model._check_fitted()
        if getattr(model, "seen_", None) is None:  # (a distributed SparkALS collects it here, as before)
            raise ModelError(f"{source or 'the model'} was saved without its training matrix (save(seen=False)); "
                             "the web service shows each user's history and leaves it out of their "
                             "recommendations, so serve a model saved with it")
        self.threads = int(threads)
        if self.threads < 1:
            raise DataError(f"threads must be an integer >= 1, got {threads!r}")
        if "n_threads" in model.get_params(deep=False) and model.get_params(deep=False)["n_threads"] != self.threads:
            model = copy.copy(model)  # shares the fitted arrays; the caller's object keeps its setting
            model.n_threads = self.threads
        self.model = model
        self._thread_state = threading.local()
        self._blas_limit = None
        self.source = str(source) if source is not None else None
        self.lock = threading.Lock()
        self._timing = threading.local()
        self.item_ids = np.asarray(model.items_.ids)
        self.user_ids = np.asarray(model.users_.ids)
        n = len(self.item_ids)
        try:
            self._items_sorted = bool(n < 2 or np.all(self.item_ids[:-1] < self.item_ids[1:]))
        except TypeError:
            self._items_sorted = False
        meta = getattr(model, "item_metadata_", None)
        if meta is not None and not isinstance(meta, pd.DataFrame):
            meta = None
        if meta is not None and meta.index.dtype.kind != self.item_ids.dtype.kind:
            try:  # metadata written with string ids for an integer vocabulary (or the reverse)
                meta = meta.set_axis(pd.Index(meta.index).astype(self.item_ids.dtype))
            except (TypeError, ValueError):
                meta = None
        titles = _column(meta, "title", self.item_ids)
        raw_titles = [t if isinstance(t, str) and t else f"Item {_json_id(i)}"
                      for t, i in zip(titles if titles is not None else [None] * n, self.item_ids)]
        self.titles = np.array(raw_titles, dtype=object)
        self.names = [display_title(t) for t in raw_titles]
        years = _column(meta, "year", self.item_ids)
        self.years = [None] * n
        for k, t in enumerate(raw_titles):
            y = years[k] if years is not None else None
            if y is None:
                m = _YEAR.search(t)
                y = m.group(1) if m else None
            try:
                self.years[k] = int(float(y)) if y is not None else None
            except (TypeError, ValueError):
                self.years[k] = None
        genres = _column(meta, "genres", self.item_ids)
        self.genres = [[g for g in str(v).split("|") if g and g != "(no genres listed)"] if v is not None else []
                       for v in (genres if genres is not None else [None] * n)]
        self.imdb = _column(meta, "imdb_id", self.item_ids)
        self.tmdb = _column(meta, "tmdb_id", self.item_ids)
        self.popularity = np.asarray(getattr(model, "item_popularity_", np.zeros(n)), dtype=np.int64)
        self._search_text = [normalize(f"{name} {t}") for name, t in zip(self.names, raw_titles)]
        self._search_name = [normalize(name) for name in self.names]
        self._popular = np.argsort(-self.popularity, kind="stable")
        seen = model.seen_.tocsr()
        self.seen = seen
        self.user_counts = np.diff(seen.indptr)

    # ------------------------------------------------------------------ lookups
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def item_code(self, raw) -> int:
        """The code of an item id from a request; :class:`UnknownIdError` when absent."""
        value = parse_id(raw, self.item_ids, "item")
        try:
            return self.model.items_.code(value)
        except UnknownIdError:
            raise UnknownIdError(f"item {clip(value)} is not known to the model") from None

    def user_code(self, raw) -> int:
        """The code of a user id from a request; :class:`UnknownIdError` when absent."""
        value = parse_id(raw, self.user_ids, "user")
        try:
            return self.model.users_.code(value)
        except UnknownIdError:
            raise UnknownIdError(f"user {clip(value)} is not known to the model") from None

    def tmdb_id(self, code: int) -> int | None:
        if self.tmdb is None or self.tmdb[code] is None:
            return None
        try:
            value = int(float(self.tmdb[code]))
        except (TypeError, ValueError):
            return None
        return value if value > 0 else None

    def card(self, code: int, score=None) -> dict:
        """The JSON description of the item with this code."""
        item_id = _json_id(self.item_ids[code])
        out = {"id": item_id, "title": self.titles[code], "name": self.names[code], "year": self.years[code],
               "genres": self.genres[code], "popularity": int(self.popularity[code]),
               "poster_url": f"/api/items/{url_id(item_id)}/poster"}
        if self.imdb is not None and self.imdb[code] is not None:
            out["imdb_id"] = str(self.imdb[code])
        tmdb = self.tmdb_id(code)
        if tmdb is not None:
            out["tmdb_id"] = tmdb
        if score is not None:
            out["score"] = _finite(score)
        return out

    def search(self, query: str, limit: int = 20) -> list[int]:
        """Codes of items whose title holds every token of ``query``; best first.

        Ranking, independent of word order: the title's words are exactly the
        query's, then titles holding every query word as a whole word, then as
        the start of a word, then anywhere; ties by popularity. An empty query
        gives the most popular items.
        """
        q = normalize(query)
        if not q:
            return [int(c) for c in self._popular[:limit]]
        tokens = q.split()
        hits = [k for k, text in enumerate(self._search_text) if all(t in text for t in tokens)]
        if not hits:
            return []
        hits = np.asarray(hits)
        wanted = sorted(tokens)
        rank = np.empty(len(hits), dtype=np.int64)
        for j, k in enumerate(hits):
            words = self._search_name[k].split()
            if sorted(words) == wanted:
                rank[j] = 0
            elif all(t in words for t in tokens):
                rank[j] = 1
            elif all(any(w.startswith(t) for w in words) for t in tokens):
                rank[j] = 2
            else:
                rank[j] = 3
        order = np.lexsort((-self.popularity[hits], rank))
        return [int(c) for c in hits[order[:limit]]]

    # ------------------------------------------------------------------ model calls
    def start(self) -> None:
        """Set the process-wide thread limits once: BLAS on one thread for the life of the service.

        Called by :func:`load_service`; idempotent. Without it a model call would raise
        and restore the process-wide BLAS limit on every request.
        """
        if self._blas_limit is None:
            import scipy.linalg  # noqa: F401 - load SciPy's BLAS before threadpoolctl scans
            from threadpoolctl import threadpool_limits

            self._blas_limit = threadpool_limits(limits=1, user_api="blas")

    def _set_thread_numba(self) -> None:
        """numba's thread count is per thread: set it the first time a worker thread calls the model."""
        if getattr(self._thread_state, "numba_threads", None) != self.threads:
            import numba

            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
            self._thread_state.numba_threads = self.threads

    @contextlib.contextmanager
    def _calling(self):
        """Hold the model lock; numba on ``threads`` threads (BLAS held to one by :meth:`start`)."""
        with self.lock:
            self._set_thread_numba()
            t0 = time.perf_counter()
            try:
                yield
            finally:
                self._timing.model_ms = (time.perf_counter() - t0) * 1e3

    def last_model_ms(self) -> float | None:
        """Milliseconds of this thread's last model call (for the ``Server-Timing`` header)."""
        return getattr(self._timing, "model_ms", None)

    def _codes_of(self, ids) -> np.ndarray:
        """Codes of item ids the model returned (a binary search when the vocabulary is sorted)."""
        ids = np.asarray(ids)
        if self._items_sorted and ids.dtype.kind == self.item_ids.dtype.kind:
            codes = np.searchsorted(self.item_ids, ids)
            if np.all(codes < len(self.item_ids)) and np.array_equal(self.item_ids[codes], ids):
                return codes
        return self.model.items_.codes(ids, missing="raise", what="item")

    def similar(self, code: int, n: int) -> list[dict]:
        with self._calling():
            ids, scores = self.model.similar_items(self.item_ids[code], n=n)
        return [self.card(c, s) for c, s in zip(self._codes_of(ids), scores)]

    def recommend(self, ucode: int, n: int, exclude_seen: bool) -> list[dict]:
        with self._calling():
            ids, scores = self.model.recommend(self.user_ids[ucode], n=n, exclude_seen=exclude_seen)
        return [self.card(c, s) for c, s in zip(self._codes_of(ids), scores) if math.isfinite(s)]

    def history(self, ucode: int, limit: int) -> tuple[int, list[dict]]:
        """(number of training interactions, the ``limit`` highest-valued ones as cards)."""
        start, end = self.seen.indptr[ucode], self.seen.indptr[ucode + 1]
        codes = self.seen.indices[start:end]
        values = self.seen.data[start:end]
        order = np.lexsort((-self.popularity[codes], -values))[:limit]
        out = []
        for k in order:
            card = self.card(int(codes[k]))
            card["rating"] = _finite(values[k])
            out.append(card)
        return int(end - start), out

    def fold_in(self, raw_items: list, ratings: list[float], n: int, exclude_seen: bool) -> list[dict]:
        """Recommendations for a visitor who rated ``raw_items`` (no retraining)."""
        codes = []
        for raw in raw_items:
            codes.append(self.item_code(raw))
        if len(set(codes)) != len(codes):
            raise DataError("each item may be rated once")
        w = np.asarray(ratings, dtype=np.float32)
        scale = getattr(self.model, "rating_scale_", None)
        if scale is not None and getattr(self.model, "task", "explicit") == "explicit":
            lo, hi = scale
            bad = np.flatnonzero((w < lo) | (w > hi))
            if len(bad):
                raise DataError(f"rating {float(w[bad[0]]):g} of item {clip(raw_items[bad[0]])} is outside the "
                                f"model's rating scale [{lo:g}, {hi:g}]")
        with self._calling():
            ids, scores = self.model.recommend_for_interactions(self.item_ids[codes], w, n=n,
                                                                exclude_seen=exclude_seen)
        return [self.card(c, s) for c, s in zip(self._codes_of(ids), scores) if math.isfinite(s)]

    def warm_up(self) -> None:
        """Run each model call once so numba compiles/loads its kernels before the first request."""
        if self.n_items == 0 or self.n_users == 0:
            return
        self.recommend(0, 1, True)
        if self.n_items > 1:
            self.similar(int(self._popular[0]), 1)
        self.fold_in([self.item_ids[int(self._popular[0])]], [self._mid_rating()], 1, True)

    def _mid_rating(self) -> float:
        scale = getattr(self.model, "rating_scale_", None)
        return float(sum(scale) / 2) if scale else 1.0

    def info(self) -> dict:
        m = self.model
        scale = getattr(m, "rating_scale_", None)
        return {"status": "ok", "model": type(m).__name__, "task": getattr(m, "task", "explicit"),
                "n_users": self.n_users, "n_items": self.n_items, "n_interactions": int(self.seen.nnz),
                "rating_scale": list(scale) if scale else None,
                "has_metadata": self.titles is not None and getattr(m, "item_metadata_", None) is not None,
                "source": Path(self.source).name if self.source else None}
