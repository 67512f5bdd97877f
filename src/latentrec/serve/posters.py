"""Posters: TMDb images cached on disk when a key is configured, a generated card otherwise.

* With ``TMDB_API_KEY`` set and a ``tmdb_id`` in the model's item metadata (from
  MovieLens ``links.csv``), the poster is looked up once through the TMDb API,
  downloaded, and kept in the cache directory as ``<tmdb_id>.jpg``. The file
  name is built from the integer id stored in the model, never from a request.
* Otherwise - no key, no id, no network, any error - a clean SVG card is
  generated: title, year and genres over a gradient in the colour of the first
  genre. The page looks finished offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import escape

#: genre -> (top colour, bottom colour) of the generated card
GENRE_COLOURS = {
    "Action": ("#b3261e", "#5c1410"), "Adventure": ("#c2620a", "#5e2f05"),
    "Animation": ("#1f7a8c", "#0b3a44"), "Children": ("#3c8d2f", "#1b4415"),
    "Comedy": ("#d19a00", "#6b4f00"), "Crime": ("#37474f", "#11181b"),
    "Documentary": ("#5d6d7e", "#273038"), "Drama": ("#6a3d9a", "#2e1944"),
    "Fantasy": ("#8e24aa", "#3d0f49"), "Film-Noir": ("#424242", "#0d0d0d"),
    "Horror": ("#7f0000", "#1a0000"), "IMAX": ("#00695c", "#00302a"),
    "Musical": ("#c2185b", "#5a0b2a"), "Mystery": ("#283593", "#0f1440"),
    "Romance": ("#d81b60", "#64092b"), "Sci-Fi": ("#0277bd", "#012f4d"),
    "Thriller": ("#4e342e", "#1c1210"), "War": ("#556b2f", "#232c13"),
    "Western": ("#8d6e63", "#3e2f29"),
}
_OTHER = ("#455a64", "#1c262b")
TMDB_API = "https://api.themoviedb.org/3/movie/{id}"
TMDB_IMAGE = "https://image.tmdb.org/t/p/w342{path}"
MAX_POSTER_BYTES = 2 << 20


#: the most telling genre colours the card (MovieLens lists genres alphabetically)
GENRE_PRIORITY = ["Animation", "Horror", "Sci-Fi", "Documentary", "Western", "War", "Musical", "Film-Noir",
                  "Crime", "Thriller", "Mystery", "Fantasy", "Romance", "Comedy", "Action", "Adventure",
                  "Children", "Drama", "IMAX"]


def colours(genres: list[str], title: str) -> tuple[str, str]:
    """The card colours of the most telling genre; a stable colour from the title otherwise."""
    for g in sorted(genres, key=lambda g: GENRE_PRIORITY.index(g) if g in GENRE_PRIORITY else len(GENRE_PRIORITY)):
        if g in GENRE_COLOURS:
            return GENRE_COLOURS[g]
    hue = int(hashlib.sha1(title.encode("utf-8")).hexdigest()[:4], 16) % 360
    return (f"hsl({hue},45%,38%)", f"hsl({hue},50%,14%)") if title else _OTHER


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(w) > width:
            w = w[:width - 1] + "…"
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:width - 1].rstrip() + "…"
    return lines


def generated_svg(name: str, year: int | None, genres: list[str]) -> str:
    """A 2:3 SVG poster card: the title in large type, the year and genres below."""
    top, bottom = colours(genres, name)
    lines = _wrap(name, 14, 5)
    size = 30 if max((len(x) for x in lines), default=0) <= 10 else 25
    y0 = 150 - (len(lines) - 1) * size * 0.6
    title = "".join(f'<text x="24" y="{y0 + k * size * 1.2:.0f}" font-size="{size}" font-weight="700">'
                    f"{escape(line)}</text>" for k, line in enumerate(lines))
    genre_text = escape(" · ".join(genres[:3]))
    year_text = escape(str(year)) if year else ""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 450" width="300" height="450" role="img">'
        f"<title>{escape(name)}{' (' + year_text + ')' if year_text else ''}</title>"
        '<defs><linearGradient id="g" x1="0" y1="0" x2="0.4" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/></linearGradient></defs>'
        '<rect width="300" height="450" fill="url(#g)"/>'
        '<circle cx="262" cy="40" r="120" fill="#fff" fill-opacity="0.06"/>'
        '<rect x="24" y="40" width="44" height="5" rx="2" fill="#fff" fill-opacity="0.7"/>'
        '<g fill="#fff" font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif">'
        f"{title}"
        f'<text x="24" y="392" font-size="22" fill-opacity="0.9">{year_text}</text>'
        f'<text x="24" y="420" font-size="15" fill-opacity="0.75">{genre_text}</text>'
        "</g></svg>"
    )


def _http_get(url: str, timeout: float) -> bytes:
    """GET ``url`` (https only) and return at most :data:`MAX_POSTER_BYTES` bytes."""
    if not url.startswith("https://"):
        raise ValueError("only https URLs are fetched")
    req = urllib.request.Request(url, headers={"User-Agent": "latentrec-serve"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - fixed https hosts
        data = resp.read(MAX_POSTER_BYTES + 1)
    if len(data) > MAX_POSTER_BYTES:
        raise ValueError("poster too large")
    return data


def default_cache_dir() -> Path:
    """``$LATENTREC_POSTER_CACHE``, else ``$XDG_CACHE_HOME/latentrec/posters`` (``~/.cache/...``)."""
    env = os.environ.get("LATENTREC_POSTER_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "latentrec" / "posters"


class PosterStore:
    """TMDb posters cached on disk; ``get(tmdb_id)`` returns JPEG bytes or None.

    Parameters
    ----------
    api_key : str or None
        The TMDb v3 API key; None disables every network access.
    cache_dir : path, optional
        Where posters are kept (:func:`default_cache_dir` by default).
    fetch : callable ``(url, timeout) -> bytes``, optional
        The HTTP GET used (tests pass a fake; nothing else touches the network).
    timeout : float
        Seconds allowed per request.
    """

    def __init__(self, api_key: str | None, cache_dir=None, *, fetch: Callable[[str, float], bytes] | None = None,
                 timeout: float = 4.0):
        self.api_key = api_key or None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.fetch = fetch or _http_get
        self.timeout = timeout
        self._failed: set[int] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, cache_dir=None) -> "PosterStore":
        return cls(os.environ.get("TMDB_API_KEY"), cache_dir)

    @property
    def enabled(self) -> bool:
        return self.api_key is not None

    def _path(self, tmdb_id: int) -> Path:
        return self.cache_dir / f"{int(tmdb_id)}.jpg"

    def get(self, tmdb_id: int | None) -> bytes | None:
        """The poster of a TMDb movie id: from the cache, else fetched once; None when unavailable."""
        if tmdb_id is None or int(tmdb_id) <= 0:
            return None
        tmdb_id = int(tmdb_id)
        path = self._path(tmdb_id)
        try:
            return path.read_bytes()
        except OSError:
            pass
        if not self.enabled or tmdb_id in self._failed:
            return None
        try:
            query = urllib.parse.urlencode({"api_key": self.api_key})
            meta = json.loads(self.fetch(f"{TMDB_API.format(id=tmdb_id)}?{query}", self.timeout))
            poster_path = meta.get("poster_path") if isinstance(meta, dict) else None
            if not isinstance(poster_path, str) or not poster_path.startswith("/") or ".." in poster_path:
                raise ValueError("no poster")
            data = self.fetch(TMDB_IMAGE.format(path=urllib.parse.quote(poster_path)), self.timeout)
            if not data.startswith(b"\xff\xd8"):
                raise ValueError("not a JPEG")
        except Exception:  # noqa: BLE001 - any failure falls back to the generated card
            with self._lock:
                self._failed.add(tmdb_id)
            return None
        self._write(path, data)
        return data

    def _write(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".poster.", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs a refetch
