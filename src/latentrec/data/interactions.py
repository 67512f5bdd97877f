"""Interactions: id maps + int32 codes + float32 values (+ int64 timestamps).

The one in-memory form of ratings and implicit feedback. Splits keep the
vocabularies of their parent, so codes line up across train and test; a model
fitted on a split first drops ids that do not occur in it (:meth:`compact`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError, show
from .vocab import Vocabulary

DUPLICATE_POLICIES = ("error", "first", "last", "mean", "sum")


def _column_error(columns, wanted: str, role: str, source: str | None) -> DataError:
    where = f" in {source}" if source else ""
    return DataError(f"{role} column {wanted!r} not found{where}; columns are {list(columns)}")


def check_values(values: np.ndarray, *, what: str = "rating", source: str | None = None,
                 rating_scale: tuple[float, float] | None = None, row_offset: int = 0) -> np.ndarray:
    """Validate a rating/weight column: numeric, finite, inside the declared scale."""
    where = f"{source}: " if source else ""
    raw = values
    if raw.dtype == object or raw.dtype.kind in "USb":
        num = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy()
        bad = np.flatnonzero(pd.isna(num) & ~pd.isna(pd.Series(raw)).to_numpy())
        if len(bad):
            i = int(bad[0])
            raise DataError(f"{where}{what} at row {i + row_offset} is {show(raw[i])}; expected a number")
        raw = num
    out = np.asarray(raw, dtype=np.float64)
    nonfinite = np.flatnonzero(~np.isfinite(out))
    if len(nonfinite):
        i = int(nonfinite[0])
        raise DataError(f"{where}{what} at row {i + row_offset} is {show(out[i])}; expected a finite number "
                        f"({len(nonfinite)} such rows)")
    if rating_scale is not None and len(out):
        lo, hi = rating_scale
        outside = np.flatnonzero((out < lo) | (out > hi))
        if len(outside):
            i = int(outside[0])
            raise DataError(f"{where}{what} at row {i + row_offset} is {out[i]:g}, outside the declared "
                            f"rating scale [{lo:g}, {hi:g}] ({len(outside)} such rows)")
    return out.astype(np.float32)


@dataclass(eq=False)
class Interactions:
    """User–item interactions with their id maps.

    Attributes
    ----------
    users, items : Vocabulary
        The id maps (user's own ids <-> int32 codes).
    user_codes, item_codes : ndarray of int32
    values : ndarray of float32
        Ratings (explicit) or weights/counts (implicit).
    timestamps : ndarray of int64 or None
    rating_scale : (low, high) or None
        The declared scale; ``None`` for implicit feedback.
    item_metadata : DataFrame or None
        Indexed by item id; columns such as ``title``, ``year``, ``genres``, ``imdb_id``, ``tmdb_id``.
    name : str or None
        Where the data came from (dataset name or file path).
    """

    users: Vocabulary
    items: Vocabulary
    user_codes: np.ndarray
    item_codes: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray | None = None
    rating_scale: tuple[float, float] | None = None
    item_metadata: pd.DataFrame | None = None
    user_metadata: pd.DataFrame | None = None
    name: str | None = None
    _csr: sp.csr_matrix | None = field(default=None, repr=False)

    def __post_init__(self):
        self.user_codes = np.ascontiguousarray(self.user_codes, dtype=np.int32)
        self.item_codes = np.ascontiguousarray(self.item_codes, dtype=np.int32)
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        n = len(self.user_codes)
        if len(self.item_codes) != n or len(self.values) != n:
            raise DataError("user codes, item codes and values must have the same length "
                            f"({n}, {len(self.item_codes)}, {len(self.values)})")
        if self.timestamps is not None:
            self.timestamps = np.ascontiguousarray(self.timestamps, dtype=np.int64)
            if len(self.timestamps) != n:
                raise DataError(f"timestamps have length {len(self.timestamps)}, expected {n}")
        if self.rating_scale is not None:
            self.rating_scale = (float(self.rating_scale[0]), float(self.rating_scale[1]))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, user: str = "user", item: str = "item",
                   rating: str | None = "rating", timestamp: str | None = None,
                   rating_scale: tuple[float, float] | None = None, duplicates: str = "error",
                   item_metadata: pd.DataFrame | None = None, name: str | None = None,
                   implicit: bool = False) -> "Interactions":
        """Build from a DataFrame with named columns.

        ``rating=None`` (or ``implicit=True`` with no rating column) gives implicit
        feedback of weight 1 per row; repeated pairs are then summed into counts
        unless ``duplicates`` says otherwise. ``rating_scale`` defaults to the
        observed (min, max) for explicit data.
        """
        source = name
        for col, role in ((user, "user"), (item, "item")):
            if col not in df.columns:
                raise _column_error(df.columns, col, role, source)
        if rating is not None and rating not in df.columns:
            if implicit:
                rating = None
            else:
                raise _column_error(df.columns, rating, "rating", source)
        if timestamp is not None and timestamp not in df.columns:
            raise _column_error(df.columns, timestamp, "timestamp", source)
        if len(df) == 0:
            raise DataError(f"{source or 'the data'} has no rows")
        if rating is None:
            values = np.ones(len(df), dtype=np.float32)
            if duplicates == "error":
                duplicates = "sum"
        else:
            values = check_values(df[rating].to_numpy(), what=f"column {rating!r}", source=source,
                                  rating_scale=rating_scale)
        if implicit and rating is not None and np.any(values < 0):
            i = int(np.flatnonzero(values < 0)[0])
            raise DataError(f"{source + ': ' if source else ''}weight at row {i} is {values[i]:g}; "
                            "implicit feedback weights must be >= 0")
        ts = None
        if timestamp is not None:
            ts_col = df[timestamp]
            if pd.api.types.is_datetime64_any_dtype(ts_col):
                ts = ts_col.astype("int64").to_numpy() // 10**9
            else:
                ts_num = pd.to_numeric(ts_col, errors="coerce")
                if ts_num.isna().any():
                    i = int(np.flatnonzero(ts_num.isna().to_numpy())[0])
                    raise DataError(f"{source + ': ' if source else ''}timestamp at row {i} is "
                                    f"{show(ts_col.iloc[i])}; expected seconds since the epoch")
                ts = ts_num.to_numpy().astype(np.int64)
        users, ucodes = Vocabulary.factorize(df[user].to_numpy(), what="user")
        items, icodes = Vocabulary.factorize(df[item].to_numpy(), what="item")
        if rating_scale is None and not implicit and rating is not None:
            rating_scale = (float(values.min()), float(values.max()))
        out = cls(users, items, ucodes, icodes, values, ts, rating_scale=rating_scale,
                  item_metadata=item_metadata, name=name)
        return out.deduplicate(duplicates)

    @classmethod
    def from_arrays(cls, users, items, values=None, timestamps=None, **kwargs) -> "Interactions":
        """Build from parallel arrays of user ids, item ids and (optional) values."""
        df = pd.DataFrame({"user": np.asarray(users), "item": np.asarray(items)})
        rating = None
        if values is not None:
            df["rating"] = np.asarray(values)
            rating = "rating"
        ts = None
        if timestamps is not None:
            df["timestamp"] = np.asarray(timestamps)
            ts = "timestamp"
        kwargs.setdefault("implicit", values is None)
        return cls.from_frame(df, rating=rating, timestamp=ts, **kwargs)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def nnz(self) -> int:
        return len(self.values)

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """``(n_users, n_items)``, the shape of :meth:`to_csr`."""
        return (self.n_users, self.n_items)

    @property
    def shape(self) -> tuple[int]:
        """``(len(self),)``: an Interactions is a sequence of rows, which scikit-learn splits into
        folds by ``shape[0]`` and indexes like an array (the user-item shape is :attr:`matrix_shape`)."""
        return (len(self),)

    def __getitem__(self, rows) -> "Interactions":
        """The rows at ``rows`` (an index array, a boolean mask or a slice), vocabularies kept:
        what scikit-learn's ``GridSearchCV`` and ``cross_val_score`` use to cut folds."""
        if isinstance(rows, tuple) and len(rows) == 2 and rows[1] is Ellipsis:
            rows = rows[0]  # data[rows, ...], as scikit-learn writes it
        if isinstance(rows, (int, np.integer)):
            raise DataError(f"index an Interactions with an array of row positions, a boolean mask or a slice "
                            f"(one row is data[[{int(rows)}]]); got the single number {int(rows)}")
        return self.subset(np.arange(len(self))[rows] if isinstance(rows, slice) else rows)

    @property
    def density(self) -> float:
        cells = self.n_users * self.n_items
        return len(self) / cells if cells else 0.0

    @property
    def is_implicit(self) -> bool:
        return self.rating_scale is None

    @property
    def nbytes(self) -> int:
        n = self.user_codes.nbytes + self.item_codes.nbytes + self.values.nbytes
        if self.timestamps is not None:
            n += self.timestamps.nbytes
        return n + self.users.nbytes + self.items.nbytes

    def __repr__(self) -> str:
        kind = "implicit" if self.is_implicit else f"ratings {self.rating_scale}"
        return (f"Interactions({self.name or 'unnamed'}: {len(self):,} rows, {self.n_users:,} users, "
                f"{self.n_items:,} items, {kind})")

    def to_csr(self) -> sp.csr_matrix:
        """The users x items matrix of values (CSR, float32, rows sorted by item). Cached."""
        if self._csr is None:
            m = sp.csr_matrix((self.values, (self.user_codes, self.item_codes)),
                              shape=self.matrix_shape, dtype=np.float32)
            m.sum_duplicates()
            m.sort_indices()
            self._csr = m
        return self._csr

    def to_frame(self, ids: bool = True) -> pd.DataFrame:
        """A DataFrame of (user, item, rating[, timestamp]) in the user's ids (or codes)."""
        data = {
            "user": self.users.take(self.user_codes) if ids else self.user_codes,
            "item": self.items.take(self.item_codes) if ids else self.item_codes,
            "rating": self.values,
        }
        if self.timestamps is not None:
            data["timestamp"] = self.timestamps
        return pd.DataFrame(data)

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.user_codes, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.item_codes, minlength=self.n_items)

    def describe(self) -> dict:
        """Counts, density, rating distribution and activity quantiles."""
        uc, ic = self.user_counts(), self.item_counts()
        out = {
            "name": self.name,
            "rows": len(self),
            "users": self.n_users,
            "items": self.n_items,
            "density": self.density,
            "kind": "implicit" if self.is_implicit else "explicit",
            "rating_scale": self.rating_scale,
            "ratings_per_user": _spread(uc),
            "ratings_per_item": _spread(ic),
            "mean": float(self.values.mean()) if len(self) else float("nan"),
        }
        if not self.is_implicit:
            vals, counts = np.unique(self.values, return_counts=True)
            out["histogram"] = {float(v): int(c) for v, c in zip(vals, counts)}
        if self.timestamps is not None and len(self):
            out["time_range"] = (int(self.timestamps.min()), int(self.timestamps.max()))
        return out

    def checksum(self) -> str:
        """sha256 over ids, codes and values: identifies the exact training data."""
        h = hashlib.sha256()
        for arr in (self.user_codes, self.item_codes, self.values):
            h.update(np.ascontiguousarray(arr).tobytes())
        for vocab in (self.users, self.items):
            ids = vocab.ids
            h.update(ids.astype(str).astype("U").tobytes() if ids.dtype == object else ids.tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ derived sets
    def subset(self, rows) -> "Interactions":
        """The rows selected by a boolean mask or an index array; vocabularies kept as they are."""
        rows = np.asarray(rows)
        return replace(
            self,
            user_codes=self.user_codes[rows],
            item_codes=self.item_codes[rows],
            values=self.values[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
            _csr=None,
        )

    def compact(self) -> "Interactions":
        """Drop users and items with no rows (re-coding the rest); a no-op when none are unused."""
        used_u = np.bincount(self.user_codes, minlength=self.n_users) > 0
        used_i = np.bincount(self.item_codes, minlength=self.n_items) > 0
        if used_u.all() and used_i.all():
            return self
        umap = np.cumsum(used_u, dtype=np.int64) - 1
        imap = np.cumsum(used_i, dtype=np.int64) - 1
        meta = self.item_metadata
        return replace(
            self,
            users=self.users.subset(np.flatnonzero(used_u)),
            items=self.items.subset(np.flatnonzero(used_i)),
            user_codes=umap[self.user_codes].astype(np.int32),
            item_codes=imap[self.item_codes].astype(np.int32),
            item_metadata=meta,
            _csr=None,
        )

    def recode(self, users: Vocabulary, items: Vocabulary) -> tuple["Interactions", np.ndarray]:
        """Re-express these rows in another pair of vocabularies (a fitted model's).

        Returns the rows whose user and item are both known, and the boolean mask
        of those rows in ``self`` (so callers can count and report the rest).
        """
        uc = users.codes(self.users.take(self.user_codes), missing="ignore")
        ic = items.codes(self.items.take(self.item_codes), missing="ignore")
        known = (uc >= 0) & (ic >= 0)
        out = Interactions(users, items, uc[known], ic[known], self.values[known],
                           None if self.timestamps is None else self.timestamps[known],
                           rating_scale=self.rating_scale, item_metadata=self.item_metadata, name=self.name)
        return out, known

    def deduplicate(self, policy: str = "error") -> "Interactions":
        """Resolve repeated (user, item) pairs: ``error``, ``first``, ``last``, ``mean`` or ``sum``."""
        if policy not in DUPLICATE_POLICIES:
            raise DataError(f"duplicates policy must be one of {DUPLICATE_POLICIES}, got {policy!r}")
        key = self.user_codes.astype(np.int64) * max(self.n_items, 1) + self.item_codes
        order = np.argsort(key, kind="stable")
        sk = key[order]
        dup_mask = np.empty(len(sk), dtype=bool)
        if len(sk):
            dup_mask[0] = False
            dup_mask[1:] = sk[1:] == sk[:-1]
        if not dup_mask.any():
            return self
        if policy == "error":
            row = int(order[np.flatnonzero(dup_mask)[0]])
            u = self.users.ids[self.user_codes[row]]
            i = self.items.ids[self.item_codes[row]]
            raise DataError(f"{self.name + ': ' if self.name else ''}(user {show(u)}, item {show(i)}) appears more "
                            f"than once (row {row}; {int(dup_mask.sum())} repeated rows); choose a duplicates "
                            f"policy: {', '.join(DUPLICATE_POLICIES[1:])}")
        starts = np.flatnonzero(~dup_mask)
        if policy == "first":
            keep = order[starts]
            rows = np.sort(keep)
            return self.subset(rows)
        if policy == "last":
            ends = np.r_[starts[1:], len(sk)] - 1
            rows = np.sort(order[ends])
            return self.subset(rows)
        vals = self.values[order].astype(np.float64)
        sums = np.add.reduceat(vals, starts)
        if policy == "mean":
            sums = sums / np.diff(np.r_[starts, len(sk)])
        first_rows = order[starts]
        out = self.subset(first_rows)
        out.values = sums.astype(np.float32)
        if self.timestamps is not None:
            out.timestamps = np.maximum.reduceat(self.timestamps[order], starts)
        return out

    def to_implicit(self, threshold: float | None = None) -> "Interactions":
        """Implicit feedback from ratings: every rating (weight 1), or ratings >= ``threshold``."""
        rows = np.ones(len(self), dtype=bool) if threshold is None else self.values >= threshold
        out = self.subset(rows)
        out.values = np.ones(int(rows.sum()), dtype=np.float32)
        out.rating_scale = None
        return out


def _spread(counts: np.ndarray) -> dict:
    if len(counts) == 0:
        return {"min": 0, "median": 0.0, "max": 0}
    return {"min": int(counts.min()), "median": float(np.median(counts)), "max": int(counts.max())}


#: the columns an in-memory frame given to fit may have, by name (arrays: in this order)
FIT_COLUMNS = ("user", "item", "rating", "timestamp")
_IMPLICIT_MODELS = "implicit-als, bpr, ease, implicit-item-knn or popularity"


def _no_ratings(who: str | None) -> DataError:
    return DataError(f"{who or 'a rating model'} predicts ratings, but the data have no ratings (no 'rating' column, "
                     f"no y, or implicit-feedback Interactions); give the ratings, or use an implicit model "
                     f"({_IMPLICIT_MODELS}) for unrated interactions")


def as_interactions(X, y=None, *, implicit: bool = False, who: str | None = None) -> Interactions:
    """Coerce what a model's ``fit`` (or a measure) receives into :class:`Interactions`.

    Accepts Interactions; a DataFrame whose columns are named ``user``, ``item`` and
    optionally ``rating`` and ``timestamp`` (any other column is an error: select
    the columns you mean); or an array of 2 to 4 columns in the documented order
    (user, item[, rating[, timestamp]]). ``y`` gives the ratings (or weights). No
    column is guessed: a rating model (``implicit=False``) given data with no ratings
    raises :class:`DataError` naming the implicit models (``who`` names the caller).
    """
    if isinstance(X, Interactions):
        if y is not None:
            return replace(X, values=np.asarray(y, dtype=np.float32), _csr=None)
        if not implicit and X.is_implicit:
            raise _no_ratings(who)
        return X
    if sp.issparse(X):
        return _from_sparse(X, y, implicit, who)
    if isinstance(X, pd.DataFrame):
        cols = list(X.columns)
        missing = [c for c in ("user", "item") if c not in cols]
        if missing:
            raise DataError(f"the data need columns named 'user' and 'item' (and 'rating' for rating models); got "
                            f"columns {cols}: rename yours, e.g. df.rename(columns={{'userId': 'user', 'movieId': "
                            f"'item'}}), or read files with latentrec.read_interactions(path, user=..., item=...)")
        extra = [c for c in cols if c not in FIT_COLUMNS]
        if extra:
            raise DataError(f"the data have column(s) {extra} that are not read; the columns read are "
                            f"{', '.join(FIT_COLUMNS)}: select the ones you mean (df[['user', 'item', 'rating']])")
        frame = X[[c for c in FIT_COLUMNS if c in cols]]
    else:
        arr = np.asarray(X)
        if arr.ndim != 2 or not 2 <= arr.shape[1] <= 4:
            got = f"a value of type {type(X).__name__}" if arr.ndim == 0 else f"an array of shape {arr.shape}"
            raise DataError("X must be Interactions, a DataFrame with user/item[/rating/timestamp] columns, a "
                            "scipy.sparse user-item matrix or an array of 2 to 4 columns (user, item[, rating"
                            f"[, timestamp]]); got {got}")
        frame = pd.DataFrame({name: arr[:, j] for j, name in enumerate(FIT_COLUMNS[:arr.shape[1]])})
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(frame):
            raise DataError(f"y has {len(y) if y.ndim else 0} values for {len(frame)} rows of X; it must be 1-d, "
                            "one rating (or weight) per row")
        frame = frame.assign(rating=y)
    timestamp = "timestamp" if "timestamp" in frame.columns else None
    if "rating" not in frame.columns:
        if not implicit:
            raise _no_ratings(who)
        return Interactions.from_frame(frame, rating=None, timestamp=timestamp, implicit=True, duplicates="sum")
    return Interactions.from_frame(frame, timestamp=timestamp, implicit=implicit, rating_scale=None,
                                   duplicates="sum" if implicit else "error")


def _from_sparse(X, y, implicit: bool, who: str | None) -> Interactions:
    """A scipy.sparse user-item matrix: row i is user i, column j item j, each stored entry one
    interaction whose value is the rating (rating models) or the weight (implicit models)."""
    if y is not None:
        raise DataError("a sparse user-item matrix carries its values; give no y")
    if X.ndim != 2:
        raise DataError(f"a sparse user-item matrix must be 2-d (users x items); got shape {X.shape}")
    coo = sp.coo_matrix(X)  # a copy: the caller's matrix is not touched
    coo.sum_duplicates()
    if not implicit and coo.nnz == 0:
        raise _no_ratings(who)
    return Interactions.from_arrays(coo.row.astype(np.int64), coo.col.astype(np.int64),
                                    coo.data.astype(np.float32), implicit=implicit,
                                    **({"duplicates": "sum"} if implicit else {}))
