"""Generic readers: delimited text (CSV/TSV/PSV) and Parquet files into :class:`Interactions`.

Every row of the file is either loaded or reported: a bad value raises
:class:`~latentrec.errors.DataError` naming the file, the line (1-based, counting
the header, as an editor shows it) or the column, and what was expected. Blank
lines are not rows and are skipped; line numbers assume no field holds a quoted
newline.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, clip, require
from .interactions import DUPLICATE_POLICIES, Interactions

SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".psv": "|"}
PARQUET_SUFFIXES = (".parquet", ".pq")
#: longest id (in characters) a reader accepts; longer fields are refused, never echoed whole
MAX_ID_LENGTH = 1024
_CANDIDATES = (",", "\t", "|", ";")
_INT_LIKE = r"[+-]?\d+"
_INT64 = np.iinfo(np.int64)
_FLOAT_EXACT = 2.0 ** 53  # float64 holds every integer up to this exactly
_F32_MAX = float(np.finfo(np.float32).max)


def _py(value):
    """A numpy scalar as the plain Python value, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value


class _Where:
    """Turns a 0-based data row into "line N" of the file (computed only when an error is raised)."""

    def __init__(self, path: Path, header: bool, encoding: str, text: bool, row_groups=None):
        self.path, self.header, self.encoding, self.text = path, header, encoding, text
        self.row_groups = row_groups  # Parquet: rows per row group
        self._lines: np.ndarray | None = None

    def __call__(self, row: int) -> str:
        if not self.text:
            if self.row_groups is not None and len(self.row_groups) > 0:
                group = int(np.searchsorted(np.cumsum(self.row_groups), row, side="right"))
                return f"row {row + 1} (row group {group + 1} of {len(self.row_groups)})"
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


def _int_ids(text: pd.Series, role: str, col: str, where: _Where) -> np.ndarray:
    """Integer-looking text ids as int64; an id beyond the int64 range is an error, never text."""
    big = np.flatnonzero(text.str.lstrip("+-").str.len().to_numpy() >= 19)
    for i in big:  # few: only 19+ digit ids need the exact check
        if not _INT64.min <= int(text.iloc[i]) <= _INT64.max:
            raise where.error(int(i), f"{role} id ({col}) {clip(text.iloc[i])} is outside the int64 range "
                                      f"[{_INT64.min}, {_INT64.max}]; pass id_type='str' to read ids as text")
    return text.astype(np.int64).to_numpy()


def _check_ids(series: pd.Series, role: str, where: _Where, id_type: str | None) -> np.ndarray:
    col = f"column {series.name!r}"
    missing = series.isna().to_numpy()
    if missing.any():
        raise where.error(int(np.flatnonzero(missing)[0]), f"{role} id ({col}) is missing; expected a value")
    kind = series.dtype.kind
    if kind == "O":
        nested = series.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray))).to_numpy(dtype=bool)
        if nested.any():
            i = int(np.flatnonzero(nested)[0])
            raise where.error(i, f"{role} id ({col}) is a list-like {type(series.iloc[i]).__name__} "
                                 f"{clip(str(series.iloc[i]))}; expected one integer or string per row")
    if kind == "f":
        vals = series.to_numpy(dtype=np.float64)
        frac = np.flatnonzero(vals != np.round(vals))
        if len(frac):
            raise where.error(int(frac[0]), f"{role} id ({col}) is {float(vals[frac[0]])!r}; expected an integer "
                                            "or a string (pass id_type='str' to read ids as text)")
        huge = np.flatnonzero(np.abs(vals) > _FLOAT_EXACT)
        if len(huge):
            raise where.error(int(huge[0]), f"{role} id ({col}) is {float(vals[huge[0]])!r}, beyond 2**53 where a "
                                            "floating-point column can no longer hold every integer exactly; "
                                            "write ids as integers or text (id_type='str')")
        if id_type != "str":
            return vals.astype(np.int64)
    if kind == "u" and len(series) and int(series.max()) > _INT64.max:
        i = int(np.argmax(series.to_numpy()))
        raise where.error(i, f"{role} id ({col}) {int(series.iloc[i])} is outside the int64 range; "
                             "pass id_type='str' to read ids as text")
    if id_type == "str":
        text = series.astype(np.int64).astype(str) if kind == "f" else series.astype(str)
        _check_length(text, role, col, where)
        return text.to_numpy(dtype=object)
    if kind in "iu":
        return series.to_numpy().astype(np.int64, copy=False)
    if kind == "b":
        raise DataError(f"{where.path}: {role} {col} holds booleans; expected integer or string ids")
    text = series.astype(str)
    _check_length(text, role, col, where)
    int_like = text.str.fullmatch(_INT_LIKE).to_numpy(dtype=bool)
    if int_like.all():
        return _int_ids(text, role, col, where)
    if id_type == "int":
        bad = int(np.flatnonzero(~int_like)[0])
        raise where.error(bad, f"{role} id ({col}) is {clip(text.iloc[bad])}; expected an integer (id_type='int')")
    if int_like.any():
        i, s = int(np.flatnonzero(int_like)[0]), int(np.flatnonzero(~int_like)[0])
        raise DataError(f"{where.path}: {role} ids ({col}) are of mixed types: integer {clip(text.iloc[i])} at "
                        f"{where(i)}, text {clip(text.iloc[s])} at {where(s)}; pass id_type='str' to read every id "
                        "as text or id_type='int' to require integers")
    return text.to_numpy(dtype=object)


def _check_length(text: pd.Series, role: str, col: str, where: _Where) -> None:
    lengths = text.str.len().to_numpy()
    if len(lengths) and lengths.max() > MAX_ID_LENGTH:
        i = int(np.argmax(lengths))
        raise where.error(i, f"{role} id ({col}) is {int(lengths[i]):,} characters long "
                             f"(starts {clip(text.iloc[i][:40])}); ids may have at most {MAX_ID_LENGTH} characters")


def _check_numbers(series: pd.Series, role: str, where: _Where, scale=None, integer: bool = False) -> np.ndarray:
    raw = series
    if series.dtype.kind == "O":
        nested = series.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray))).to_numpy(dtype=bool)
        if nested.any():
            i = int(np.flatnonzero(nested)[0])
            raise where.error(i, f"{role} is a list-like {type(series.iloc[i]).__name__} {clip(str(series.iloc[i]))}; "
                                 "expected one number per row")
    if series.dtype.kind == "b":
        raise DataError(f"{where.path}: {role} holds booleans; expected numbers")
    num = pd.to_numeric(raw, errors="coerce")
    bad = num.isna().to_numpy() & ~raw.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise where.error(i, f"{role} is {clip(raw.iloc[i])}; expected a number ({int(bad.sum())} such rows)")
    if num.dtype.kind == "u" and len(num) and int(num.max()) > _INT64.max:
        i = int(np.argmax(num.to_numpy()))
        raise where.error(i, f"{role} is {int(num.iloc[i])}, outside the int64 range")
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
        if num.dtype.kind in "iu":
            return num.to_numpy(dtype=np.int64)
        out = (vals < _INT64.min) | (vals >= 2.0 ** 63)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise where.error(i, f"{role} is {vals[i]:g}, outside the int64 range of whole seconds "
                                 f"({int(out.sum())} such rows)")
        return np.floor(vals).astype(np.int64)
    with np.errstate(over="ignore"):
        as32 = vals.astype(np.float32)
    big, tiny = np.isinf(as32), (vals != 0) & (as32 == 0)
    if big.any() or tiny.any():
        i = int(np.flatnonzero(big | tiny)[0])
        raise where.error(i, f"{role} is {vals[i]:g}, outside the float32 range values are stored in "
                             f"(magnitudes from 1.4e-45 to {_F32_MAX:.4g}) ({int((big | tiny).sum())} such rows)")
    return vals


def _check_timestamps(series: pd.Series, where: _Where) -> np.ndarray:
    role = f"timestamp (column {series.name!r})"
    if pd.api.types.is_datetime64_any_dtype(series):
        missing = series.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise where.error(i, f"{role} is missing (null); expected a date and time "
                                 f"({int(missing.sum())} such rows)")
        if getattr(series.dt, "tz", None) is not None:  # tz-aware: the same instant in UTC
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return (series.astype("datetime64[s]").astype("int64")).to_numpy()
    if series.dtype.kind in "iufb":
        return _check_numbers(series, role, where, integer=True)
    parsed = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
    if parsed.isna().all():  # not dates: report the first non-number
        return _check_numbers(series, role, where, integer=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        numeric = pd.to_numeric(series, errors="coerce").notna().to_numpy()
        if numeric[i]:
            d = int(np.flatnonzero(~bad)[0])
            raise DataError(f"{where.path}: {role} mixes ISO dates ({clip(series.iloc[d])} at {where(d)}) and "
                            f"numbers ({clip(series.iloc[i])} at {where(i)}); write every timestamp one way, "
                            "either seconds since the epoch or an ISO date")
        raise where.error(i, f"{role} is {clip(series.iloc[i])}; expected seconds since the epoch or an ISO date")
    return (parsed.astype("datetime64[s, UTC]").astype("int64")).to_numpy()


def _bad_byte(path: Path, encoding: str) -> tuple[int, int, int, str] | None:
    """(line, byte offset in the file, the byte, why) of the first byte ``encoding`` cannot decode."""
    offset = 0
    with open(path, "rb") as fh:
        for line, raw in enumerate(fh, 1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                return line, offset + exc.start, raw[exc.start], exc.reason
            except LookupError:
                return None
            offset += len(raw)
    return None


def _check_header(path: Path, sep, quotechar, escapechar, encoding) -> None:
    """A name given to two columns of the header is an error (pandas would rename one silently)."""
    try:
        names = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, quotechar=quotechar,
                            escapechar=escapechar, encoding=encoding, engine="c", keep_default_na=False,
                            skip_blank_lines=True).iloc[0].tolist()
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IndexError):
        return  # reported by the full read
    _check_unique(path, [str(n) for n in names], "the header")


def _check_unique(path: Path, names: list, where: str) -> None:
    seen: dict = {}
    for k, name in enumerate(names):
        if name in seen:
            raise DataError(f"{path}: column {clip(name)} appears twice in {where} (columns {seen[name] + 1} and "
                            f"{k + 1}); every column needs its own name")
        seen[name] = k


def _read_frame(path: Path, sep, header, quotechar, escapechar, encoding, usecols_dtype) -> pd.DataFrame:
    try:
        if header:
            _check_header(path, sep, quotechar, escapechar, encoding)
        return pd.read_csv(path, sep=sep, header=0 if header else None, quotechar=quotechar,
                           escapechar=escapechar, encoding=encoding, engine="c", on_bad_lines="error",
                           dtype=usecols_dtype or None)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} has no header and no rows; expected a header line and data rows") from None
    except pd.errors.ParserError as exc:
        msg = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        quote = re.search(r"EOF inside string starting at row (\d+)", msg)
        if quote:  # the C parser counts rows from 0 over every physical line
            raise DataError(f"{path}, line {int(quote.group(1)) + 1}: a quoted field ({quotechar!r}) opens here and is "
                            "never closed; close the quote or pass quotechar= another character") from None
        raise DataError(f"{path}: {msg[:200]} (separator {sep!r}); every line needs the same number of "
                        "fields") from None
    except UnicodeDecodeError as exc:
        bad = _bad_byte(path, encoding)
        where, why = ((f"line {bad[0]}, byte offset {bad[1]} of the file (byte 0x{bad[2]:02x})", bad[3])
                      if bad is not None else ("somewhere", exc.reason))
        raise DataError(f"{path}, {where}: cannot decode as {encoding} ({why}); "
                        "pass encoding= (e.g. 'latin-1')") from None


def _read_parquet(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The frame and the rows of each row group; a file that is not Parquet or holds unusable columns is a DataError."""
    pa = require("pyarrow", "parquet", "reading Parquet files")
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        groups = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path} is not a readable Parquet file ({clip(str(exc), 120)}); "
                        "expected a Parquet file, or a .csv/.tsv extension for text") from None
    _check_unique(path, list(schema.names), "the Parquet schema")
    try:
        table = pf.read()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: the Parquet data cannot be read ({clip(str(exc), 120)}); "
                        "the file is corrupt or truncated") from None
    return table.to_pandas(), groups


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
        df, where.row_groups = _read_parquet(path)
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
