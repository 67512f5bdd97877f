"""Helpers shared by the benchmark scripts (explicit.py, implicit_feedback.py, neural.py, ...).

Everything here is plain, dependency-light glue: load a MovieLens release from the
data home, iterate folds / the canonical u1..u5 splits, time a call, measure peak
memory and print a markdown table. The benchmarks call the same public functions
a notebook user calls; nothing here is part of the library.

Data home: ``$LATENTREC_DATA_HOME``, else ``/work/shared/datasets`` (or the
``shared/datasets`` folder beside the checkout). Files are never copied into the repo.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

import latentrec as lr
from latentrec.data.interactions import Interactions

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


# ---------------------------------------------------------------- data
def data_home() -> Path:
    """``$LATENTREC_DATA_HOME``, else ../shared/datasets beside the checkout, else /work/shared/datasets."""
    env = os.environ.get("LATENTREC_DATA_HOME")
    if env:
        return Path(env)
    return _SHARED if _SHARED.is_dir() else Path("/work/shared/datasets")


def load_ml(name: str = "ml-100k") -> Interactions:
    """Load a MovieLens release (``ml-100k``, ``ml-latest-small``, ``ml-latest-small-2016`` ...).

    Uses :func:`latentrec.data.movielens.load_movielens` from the data home (never
    downloads); falls back to reading ``u.data`` / ``ratings.csv`` with pandas.
    """
    home = data_home()
    folder = home / name
    try:
        from latentrec.data.movielens import load_movielens
    except ImportError:  # pragma: no cover - very old checkout
        load_movielens = None
    if load_movielens is not None:
        try:
            return load_movielens(name, data_home=home, download=False)
        except Exception:  # e.g. a folder name that is not in the catalogue
            if folder.is_dir():
                return load_movielens(path=folder)
            raise
    if (folder / "u.data").is_file():
        df = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
        scale = (1.0, 5.0)
    elif (folder / "ratings.csv").is_file():
        df = pd.read_csv(folder / "ratings.csv").rename(columns={"userId": "user", "movieId": "item"})
        scale = (0.5, 5.0)
    else:
        raise FileNotFoundError(f"{folder} holds neither u.data nor ratings.csv; set LATENTREC_DATA_HOME")
    return Interactions.from_frame(df, timestamp="timestamp", rating_scale=scale, name=name)


def _pair_keys(users: np.ndarray, items: np.ndarray) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([np.asarray(users).astype(np.int64), np.asarray(items).astype(np.int64)])


def canonical_splits(name: str = "ml-100k", which: Sequence[str] = ("u1", "u2", "u3", "u4", "u5"),
                     data: Interactions | None = None) -> Iterator[tuple[str, Interactions, Interactions]]:
    """The canonical ml-100k splits: yields ``(label, train, test)`` for u1..u5 (or ua/ub).

    The test rows of ``<label>.test`` are located in the full data set, so train and
    test share its vocabularies (codes line up).
    """
    data = data if data is not None else load_ml(name)
    folder = data_home() / name
    keys = _pair_keys(data.users.take(data.user_codes), data.items.take(data.item_codes))
    for label in which:
        test = pd.read_csv(folder / f"{label}.test", sep="\t", names=["user", "item", "rating", "timestamp"])
        mask = keys.isin(_pair_keys(test["user"].to_numpy(), test["item"].to_numpy()))
        if int(mask.sum()) != len(test):
            raise ValueError(f"{label}.test: {len(test)} rows but {int(mask.sum())} found in {name}")
        yield label, data.subset(~mask), data.subset(mask)


def kfold_splits(data: Interactions, k: int = 5, seed: int = 0) -> Iterator[tuple[str, Interactions, Interactions]]:
    """``k``-fold over rows (``latentrec.split.kfold`` with ``random_state=seed``): yields ``(label, train, test)``."""
    try:
        from latentrec.split import kfold
    except ImportError:  # pragma: no cover
        kfold = None
    if kfold is not None:
        for f, (train, test) in enumerate(kfold(data, k, random_state=seed)):
            yield f"fold{f + 1}", train, test
        return
    folds = np.array_split(np.random.default_rng(seed).permutation(len(data)), k)  # pragma: no cover
    for f, fold in enumerate(folds):  # pragma: no cover
        mask = np.zeros(len(data), dtype=bool)
        mask[fold] = True
        yield f"fold{f + 1}", data.subset(~mask), data.subset(mask)


def holdout_split(data: Interactions, test_size: float = 0.2, seed: int = 0) -> Iterator[tuple[str, Interactions, Interactions]]:
    """One random row holdout (``latentrec.split.random_split``): yields ``("holdout", train, test)``."""
    from latentrec.split import random_split

    train, test = random_split(data, test_size, random_state=seed)
    yield "holdout", train, test


def protocol(dataset: str, name: str, *, quick: bool = False, seed: int = 0, data: Interactions | None = None):
    """Folds of a named protocol: ``"5fold"``, ``"u1-u5"`` (ml-100k canonical) or ``"80/20"``.

    With ``quick`` only the first fold is produced.
    """
    data = data if data is not None else load_ml(dataset)
    if name == "5fold":
        gen = kfold_splits(data, 5, seed)
    elif name == "u1-u5":
        gen = canonical_splits(dataset, data=data)
    elif name == "80/20":
        gen = holdout_split(data, 0.2, seed)
    else:
        raise ValueError(f"unknown protocol {name!r}; expected '5fold', 'u1-u5' or '80/20'")
    for n, fold in enumerate(gen):
        if quick and n >= 1:
            return
        yield fold


# ---------------------------------------------------------------- timing and memory
def timed(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    """``(fn(*args, **kwargs), seconds)`` measured with ``time.perf_counter``."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def median_time(fn: Callable, repeats: int = 3) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``fn()``."""
    return float(np.median([timed(fn)[1] for _ in range(repeats)]))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``resource.getrusage``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def traced_peak_mb(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    """``(fn(...), peak MiB of Python/NumPy allocations during the call)`` via tracemalloc.

    NumPy reports its buffers to tracemalloc; numba's parallel scratch space is not seen.
    """
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out = fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak / (1024 * 1024)


# ---------------------------------------------------------------- figures for the README (benchmarks/figures.py)
def figure(table: str, library: str, model: str, column: str, metric: str, value: float) -> dict:
    """One README figure: ``value`` of ``metric`` in ``table``, row (``library``, ``model``), ``column``."""
    return {"table": table, "library": library, "model": model, "column": column, "metric": metric,
            "value": float(value)}


def write_figures(path, name: str, figures: list[dict], command: str | None = None) -> None:
    """Merge the figure set ``name`` (measured by ``command``) into the JSON file ``path``, atomically."""
    import json

    path = Path(path)
    doc = json.loads(path.read_text()) if path.is_file() else {}
    doc[name] = {"command": command or "python " + " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                 "versions": {"latentrec": lr.__version__, "numpy": np.__version__}, "figures": figures}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def model_label(name: str) -> str:
    """The README's name of a registry model (its class name), else ``name`` itself."""
    try:
        return lr.registry.get(name).cls
    except lr.ModelError:
        return name


# ---------------------------------------------------------------- tables
def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return str(v)
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.4g}"
    return str(v)


def markdown(rows: Iterable[dict], columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of dict rows or of a DataFrame (missing cells are blank)."""
    rows = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    if columns is None:
        columns = list(dict.fromkeys(c for r in rows for c in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) if c in r and r[c] is not None else "" for c in columns) + " |")
    return "\n".join(lines)


def print_table(rows: Iterable[dict], columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print :func:`markdown` of ``rows`` (with an optional ``### title``), flushed."""
    if title:
        print(f"\n### {title}\n")
    print(markdown(rows, columns), flush=True)


def mean_rows(rows: list[dict], by: Sequence[str], values: Sequence[str]) -> list[dict]:
    """Mean of ``values`` over the rows sharing the ``by`` keys (keeps first-seen order)."""
    df = pd.DataFrame(rows)
    out = df.groupby(list(by), sort=False)[list(values)].mean().reset_index()
    out["folds"] = df.groupby(list(by), sort=False).size().to_numpy()
    return out.to_dict("records")


__all__ = ["data_home", "load_ml", "canonical_splits", "kfold_splits", "holdout_split", "protocol", "timed",
           "median_time", "peak_rss_mb", "traced_peak_mb", "markdown", "print_table", "mean_rows", "figure",
           "write_figures", "model_label", "lr"]
