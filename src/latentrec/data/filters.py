"""Filters over :class:`Interactions`: k-core, rating-scale, duplicates.

Each filter returns a new, compacted Interactions (users and items left with no
rows are dropped from the vocabularies) and, with ``return_report=True``, a
:class:`FilterReport` saying what was removed, so nothing disappears unreported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from .interactions import Interactions


@dataclass(frozen=True)
class FilterReport:
    """What a filter removed.

    Attributes
    ----------
    rows_before, rows_after : int
    users_before, users_after, items_before, items_after : int
    rounds : int
        Passes until stable (k-core); 1 for single-pass filters.
    removed_users, removed_items : ndarray
        The ids (the user's own ids) that no longer occur.
    """

    filter: str
    rows_before: int
    rows_after: int
    users_before: int
    users_after: int
    items_before: int
    items_after: int
    rounds: int = 1
    removed_users: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    removed_items: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    @property
    def removed_rows(self) -> int:
        return self.rows_before - self.rows_after

    def __str__(self) -> str:
        return (f"{self.filter}: removed {self.removed_rows:,} of {self.rows_before:,} rows, "
                f"{self.users_before - self.users_after:,} of {self.users_before:,} users, "
                f"{self.items_before - self.items_after:,} of {self.items_before:,} items"
                + (f" ({self.rounds} rounds)" if self.rounds > 1 else ""))


def _report(name: str, before: Interactions, after: Interactions, keep_u: np.ndarray, keep_i: np.ndarray,
            rounds: int = 1) -> FilterReport:
    return FilterReport(name, len(before), len(after), before.n_users, after.n_users, before.n_items,
                        after.n_items, rounds, before.users.ids[~keep_u], before.items.ids[~keep_i])


def _finish(name, data, rows, rounds, return_report):
    out = data.subset(rows).compact()  # subset copies: the caller's object is never modified
    keep_u = np.bincount(data.user_codes[rows], minlength=data.n_users) > 0
    keep_i = np.bincount(data.item_codes[rows], minlength=data.n_items) > 0
    if return_report:
        return out, _report(name, data, out, keep_u, keep_i, rounds)
    return out


def _check_k(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def kcore(data: Interactions, k: int | None = None, *, user_k: int | None = None, item_k: int | None = None,
          return_report: bool = False):
    """Keep the largest sub-matrix where every user has >= ``user_k`` rows and every item >= ``item_k``.

    Removing a sparse user can push an item under its threshold and vice versa, so the
    counts are recomputed and the filter reapplied until nothing changes (the k-core is
    unique: it does not depend on the order of removals). Counts are rows, i.e. distinct
    (user, item) pairs once duplicates are resolved.

    Parameters
    ----------
    data : Interactions
    k : int, optional
        Threshold for both users and items; ``user_k`` / ``item_k`` override it per side.
    return_report : bool, default False
        Also return a :class:`FilterReport` (rows, users and items removed, and the rounds needed).

    Returns
    -------
    Interactions, or (Interactions, FilterReport)
        Compacted: users and items with no rows left are dropped from the vocabularies.
        May be empty when no k-core exists.
    """
    if k is None and user_k is None and item_k is None:
        raise DataError("kcore needs k (or user_k / item_k)")
    ku = _check_k(user_k if user_k is not None else (k if k is not None else 1), "user_k")
    ki = _check_k(item_k if item_k is not None else (k if k is not None else 1), "item_k")
    rows = np.ones(len(data), dtype=bool)
    rounds = 0
    while True:
        rounds += 1
        uc = np.bincount(data.user_codes[rows], minlength=data.n_users)
        ic = np.bincount(data.item_codes[rows], minlength=data.n_items)
        new = rows & (uc[data.user_codes] >= ku) & (ic[data.item_codes] >= ki)
        if np.array_equal(new, rows):
            break
        rows = new
    return _finish(f"kcore(user_k={ku}, item_k={ki})", data, rows, rounds, return_report)


def filter_rating_scale(data: Interactions, rating_scale: tuple[float, float], *, return_report: bool = False):
    """Keep the rows whose value lies in ``[low, high]`` and declare that scale on the result.

    For data read without a declared scale (readers reject out-of-scale values only when
    one is given); the report counts what fell outside.
    """
    lo, hi = float(rating_scale[0]), float(rating_scale[1])
    if not lo <= hi:
        raise DataError(f"rating_scale must be (low, high) with low <= high, got {rating_scale!r}")
    rows = (data.values >= lo) & (data.values <= hi)
    out = _finish(f"filter_rating_scale({lo:g}, {hi:g})", data, rows, 1, return_report)
    (out[0] if return_report else out).rating_scale = (lo, hi)
    return out


def deduplicate(data: Interactions, policy: str = "first", *, return_report: bool = False):
    """Resolve repeated (user, item) pairs: ``error``, ``first``, ``last``, ``mean`` or ``sum``.

    The same as :meth:`Interactions.deduplicate`, with the optional report.
    """
    out = data.deduplicate(policy)
    if not return_report:
        return out
    rep = FilterReport(f"deduplicate({policy})", len(data), len(out), data.n_users, out.n_users,
                       data.n_items, out.n_items)
    return out, rep
