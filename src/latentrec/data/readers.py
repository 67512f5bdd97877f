"""Generic readers: delimited text (CSV/TSV/PSV) and Parquet files into :class:`Interactions`.

Every row of the file is either loaded or reported: a bad value raises
:class:`~latentrec.errors.DataError` naming the file, the line (1-based, counting
the header, as an editor shows it) or the column, and what was expected. Blank
lines are not rows and are skipped; line numbers assume no field holds a quoted
newline.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, require
from .interactions import DUPLICATE_POLICIES, Interactions

SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".psv": "|"}
PARQUET_SUFFIXES = (".parquet", ".pq")
_CANDIDATES = (",", "\t", "|", ";")
_INT_LIKE = r"[+-]?\d+"


def _py(value):
    """A numpy scalar as the plain Python value, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value


class _Where:
    """Turns a 0-based data row into "line N" of the file (computed only when an error is raised)."""

    def __init__(self, path: Path, header: bool, encoding: str, text: bool):
        self.path, self.header, self.encoding, self.text = path, header, encoding, text
        self._lines: np.ndarray | None = None

    def __call__(self, row: int) -> str:
        if not self.text:
            return f"row {row + 1}"
        if self._lines is None:
            with open(self.path, encoding=self.encoding, errors="replace", newline="") as fh:
                blank = np.fromiter((not ln.strip() for ln in fh), dtype=bool)
            numbers = np.flatnonzero(~blank) + 1
            self._lines = numbers[1:] if self.header else numbers
        return f"line {self._lines[row]}" if row < len(self._lines) else f"data row {row + 1}"

    def error(self, row: int, message: str) -> DataError:
        return DataError(f"{self.path}, {self(row)}: {message}")


def _sniff(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, errors="replace") as fh:
        first = fh.readline()
    counts = {s: first.count(s) for s in _CANDIDATES}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        raise DataError(f"{path}: cannot tell the separator from the extension {path.suffix!r} or the first line "
                        f"{first.rstrip()!r}; pass sep= (',', '\\t', '|', ...)")
    return best


def _resolve(df: pd.DataFrame, col, role: str, path: Path, required: bool = True):
    """The frame column for ``col`` (a name, or an int position); DataError listing what was found."""
    if col is None:
        return None
    if col in df.columns:
        return col
    if isinstance(col, (int, np.integer)) and 0 <= col < df.shape[1]:
        return df.columns[col]
    if not required:
        return None
    raise DataError(f"{path}: {role} column {col!r} not found; the columns found are {list(df.columns)}")


def _check_ids(series: pd.Series, role: str, where: _Where, id_type: str | None) -> np.ndarray:
    missing = series.isna().to_numpy()
    if missing.any():
        raise where.error(int(np.flatnonzero(missing)[0]), f"{role} id is missing; expected a value")
    if id_type == "str":
        return series.astype(str).to_numpy(dtype=object)
    kind = series.dtype.kind
    if kind == "f":
        vals = series.to_numpy()
        frac = np.flatnonzero(vals != np.round(vals))
        if len(frac):
            raise where.error(int(frac[0]), f"{role} id is {float(vals[frac[0]])!r}; expected an integer or a string "
                                            "(pass id_type='str' to read ids as text)")
        return vals.astype(np.int64)
    if kind in "iu":
        return series.to_numpy()
    text = series.astype(str)
    int_like = text.str.fullmatch(_INT_LIKE).to_numpy(dtype=bool)
    if id_type == "int" or (int_like.any() and not int_like.all()):
        if int_like.all():
            return text.astype(np.int64).to_numpy()
        if id_type == "int":
            bad = int(np.flatnonzero(~int_like)[0])
            raise where.error(bad, f"{role} id is {text.iloc[bad]!r}; expected an integer (id_type='int')")
        i, s = int(np.flatnonzero(int_like)[0]), int(np.flatnonzero(~int_like)[0])
        raise DataError(f"{where.path}: {role} ids are of mixed types: integer {text.iloc[i]!r} at {where(i)}, "
                        f"text {text.iloc[s]!r} at {where(s)}; pass id_type='str' to read every id as text "
                        "or id_type='int' to require integers")
    return text.to_numpy(dtype=object)


def _check_numbers(series: pd.Series, role: str, where: _Where, scale=None, integer: bool = False) -> np.ndarray:
    raw = series
    num = pd.to_numeric(raw, errors="coerce")
    bad = num.isna().to_numpy() & ~raw.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise where.error(i, f"{role} is {raw.iloc[i]!r}; expected a number ({int(bad.sum())} such rows)")
    vals = num.to_numpy(dtype=np.float64, na_value=np.nan)
    nan = np.isnan(vals)
    if nan.any():
        i = int(np.flatnonzero(nan)[0])
        raise where.error(i, f"{role} is missing or NaN; expected a number ({int(nan.sum())} such rows)")
    inf = np.isinf(vals)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise where.error(i, f"{role} is {float(vals[i])!r}; expected a finite number ({int(inf.sum())} such rows)")
    if scale is not None:
        lo, hi = scale
        out = (vals < lo) | (vals > hi)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise where.error(i, f"{role} is {vals[i]:g}, outside the declared rating scale [{lo:g}, {hi:g}] "
                                 f"({int(out.sum())} such rows)")
    if integer:
        return num.to_numpy(dtype=np.int64) if series.dtype.kind in "iu" else vals.astype(np.int64)
    return vals


def _check_timestamps(series: pd.Series, where: _Where) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series):
        return (series.astype("datetime64[s]").astype("int64")).to_numpy()
    if series.dtype.kind in "iuf":
        return _check_numbers(series, "timestamp", where, integer=True)
    parsed = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
    if parsed.isna().all():  # not dates: report the first non-number
        return _check_numbers(series, "timestamp", where, integer=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise where.error(i, f"timestamp is {series.iloc[i]!r}; expected seconds since the epoch or an ISO date")
    return (parsed.astype("datetime64[s, UTC]").astype("int64")).to_numpy()


def _read_frame(path: Path, sep, header, quotechar, escapechar, encoding, usecols_dtype) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=sep, header=0 if header else None, quotechar=quotechar,
                           escapechar=escapechar, encoding=encoding, engine="c", on_bad_lines="error",
                           dtype=usecols_dtype or None)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} has no header and no rows; expected a header line and data rows") from None
    except pd.errors.ParserError as exc:
        msg = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise DataError(f"{path}: {msg} (separator {sep!r}); every line needs the same number of fields") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: cannot decode as {encoding} ({exc.reason} at byte {exc.start}); "
                        "pass encoding= (e.g. 'latin-1')") from None


def read_interactions(path, *, user="user", item="item", rating="rating", timestamp=None, sep=None,
                      header: bool = True, quotechar: str = '"', escapechar: str | None = None,
                      rating_scale: tuple[float, float] | None = None, duplicates: str = "error",
                      implicit: bool = False, encoding: str = "utf-8", id_type: str | None = None,
                      name: str | None = None) -> Interactions:
    """Read a CSV, TSV, PSV or Parquet file of interactions.

    Parameters
    ----------
    path : str or path
        ``.csv`` (``,``), ``.tsv``/``.tab`` (tab), ``.psv`` (``|``), ``.parquet``/``.pq``; other
        extensions need ``sep`` (else it is guessed from the first line).
    user, item, rating, timestamp : str or int
        Column names (or 0-based positions, e.g. with ``header=False``). ``rating=None`` reads
        implicit feedback: weight 1 per row, a repeated pair counted (``duplicates="sum"``).
        With ``implicit=True`` a missing rating column also means weight 1.
    sep, header, quotechar, escapechar, encoding
        Passed to the pandas C parser. A ``|`` file whose fields contain ``\\|`` needs ``escapechar="\\\\"``.
    rating_scale : (low, high), optional
        Declared scale; a rating outside it is an error. Default: the observed range (explicit data).
    duplicates : {"error", "first", "last", "mean", "sum"}
        What to do with repeated (user, item) pairs.
    id_type : {None, "int", "str"}
        ``None``: integers when every id looks like one, text when none does, an error for a mix.
    name : str, optional
        Stored as ``Interactions.name`` (default: the file path).

    Raises
    ------
    DataError
        Naming the file and the line (1-based, header included) or the column, and what was expected.
    MissingDependencyError
        A Parquet file without pyarrow (install ``latentrec[parquet]``).
    """
    path = Path(os.fspath(path))
    if duplicates not in DUPLICATE_POLICIES:
        raise DataError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    if id_type not in (None, "int", "str"):
        raise DataError(f"id_type must be None, 'int' or 'str', got {id_type!r}")
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected a file of interactions")
    is_parquet = path.suffix.lower() in PARQUET_SUFFIXES
    where = _Where(path, header, encoding, text=not is_parquet)
    if is_parquet:
        require("pyarrow", "parquet", "reading Parquet files")
        df = pd.read_parquet(path)
    else:
        if path.stat().st_size == 0:
            raise DataError(f"{path} is empty; expected a header line and data rows")
        if sep is None:
            sep = SEPARATORS.get(path.suffix.lower()) or _sniff(path, encoding)
        str_cols = [c for c in (user, item) if c is not None] if id_type == "str" else []
        df = _read_frame(path, sep, header, quotechar, escapechar, encoding, dict.fromkeys(str_cols, str))
        if df.shape[1] == 1:
            head = str(df.columns[0]) if header else str(df.iloc[0, 0])
            guess = [s for s in _CANDIDATES if s != sep and s in head]
            hint = f"; is the separator {guess[0]!r}?" if guess else f"; expected {sep!r}-separated fields"
            raise DataError(f"{path}: only one column found (first line {head!r}) with separator {sep!r}{hint}")
    if len(df) == 0:
        raise DataError(f"{path} has a header (columns {list(df.columns)}) but no data rows")
    ucol = _resolve(df, user, "user", path)
    icol = _resolve(df, item, "item", path)
    rcol = _resolve(df, rating, "rating", path, required=not implicit)
    tcol = _resolve(df, timestamp, "timestamp", path)
    frame = pd.DataFrame({"user": _check_ids(df[ucol], "user", where, id_type),
                          "item": _check_ids(df[icol], "item", where, id_type)})
    if rcol is not None:
        frame["rating"] = _check_numbers(df[rcol], f"column {rcol!r}", where, rating_scale)
        if implicit and (frame["rating"] < 0).any():
            i = int(np.flatnonzero(frame["rating"].to_numpy() < 0)[0])
            raise where.error(i, f"weight {frame['rating'].iloc[i]:g} is negative; implicit weights must be >= 0")
    if tcol is not None:
        frame["timestamp"] = _check_timestamps(df[tcol], where)
    if duplicates == "error" and rcol is not None:
        dup = frame.duplicated(["user", "item"], keep=False).to_numpy()
        if dup.any():
            rows = np.flatnonzero(dup)
            first = rows[0]
            key = (_py(frame["user"].iloc[first]), _py(frame["item"].iloc[first]))
            same = rows[(frame["user"].to_numpy()[rows] == key[0]) & (frame["item"].to_numpy()[rows] == key[1])]
            raise DataError(f"{path}: (user {key[0]!r}, item {key[1]!r}) appears on {where(int(same[0]))} and "
                            f"{where(int(same[1]))} ({len(rows)} rows share a pair); pass duplicates= one of "
                            f"{', '.join(DUPLICATE_POLICIES[1:])}")
    return Interactions.from_frame(frame, rating="rating" if rcol is not None else None,
                                   timestamp="timestamp" if tcol is not None else None,
                                   rating_scale=rating_scale, duplicates=duplicates, implicit=implicit,
                                   name=name or str(path))
