"""Splits that keep train and test honest.

Every splitter takes :class:`~latentrec.data.interactions.Interactions` and returns
Interactions built with :meth:`Interactions.subset`, so they share the parent's
vocabularies (codes line up across the parts). Guarantees, each tested in
tests/test_split.py (docs/protocols.md lists them):

* the parts are disjoint as sets of rows and their union is the input: every row
  lands in exactly one part, nothing is dropped or duplicated;
* the same ``random_state`` (int or ``np.random.Generator``) gives the same split;
  global NumPy random state is never used;
* counts are exact, not probabilistic: a fraction ``f`` of ``n`` rows is
  ``round(f * n)`` rows (NumPy rounding, half to even);
* users and items that end up only in a test part (cold start) are kept there,
  counted by :func:`split_report` (``Split.report()``), never silently removed.

Two-part splitters return a :class:`Split` (a named tuple ``(train, test)``, so
``train, test = random_split(data)`` works).
"""

from __future__ import annotations

import numbers
from typing import Iterator, NamedTuple

import numpy as np
import pandas as pd

from ._util import check_random_state
from .data.interactions import Interactions
from .errors import DataError


class Split(NamedTuple):
    """A train/test pair of Interactions sharing the parent's vocabularies."""

    train: Interactions
    test: Interactions

    def report(self) -> dict:
        """Row counts and cold-start counts of this split (see :func:`split_report`)."""
        return split_report(self.train, self.test)


class TrainValTest(NamedTuple):
    """Train, validation and test parts of :func:`train_val_test_split`."""

    train: Interactions
    val: Interactions
    test: Interactions

    def report(self) -> dict:
        """Cold-start counts of validation and of test, both relative to train."""
        return {"val": split_report(self.train, self.val), "test": split_report(self.train, self.test)}


class StrongSplit(NamedTuple):
    """Strong-generalisation split (:func:`strong_generalization_split`).

    ``train`` holds every row of the users not held out; ``fold_in`` and ``test``
    hold the held-out users' rows (given to the model at prediction time, and
    scored, respectively).
    """

    train: Interactions
    fold_in: Interactions
    test: Interactions

    def report(self) -> dict:
        """Counts of the three parts; held-out users are cold for ``train`` by design."""
        out = split_report(self.train, self.test)
        out["fold_in_rows"] = len(self.fold_in)
        out["heldout_users"] = int(np.unique(self.test.user_codes).size)
        return out


# ---------------------------------------------------------------- validation helpers
def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise DataError(f"{name} must be a fraction in (0, 1), got {value!r}")
    return float(value)


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise DataError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_interactions(data) -> Interactions:
    if not isinstance(data, Interactions):
        raise DataError(f"splitters take latentrec Interactions, got {type(data).__name__}")
    return data


def _timestamps(data: Interactions, splitter: str) -> np.ndarray:
    if data.timestamps is None:
        raise DataError(f"{splitter} needs timestamps, and these interactions ({data.name or 'unnamed'}) "
                        "have none; load them with a timestamp column")
    return data.timestamps


def _parts(data: Interactions, test_mask: np.ndarray) -> Split:
    return Split(data.subset(~test_mask), data.subset(test_mask))


def _rank_within_user(user_codes: np.ndarray, order: np.ndarray, n_users: int) -> np.ndarray:
    """Rank of each row among its user's rows in the order ``order`` (a user-major sort)."""
    counts = np.bincount(user_codes, minlength=n_users)
    starts = np.cumsum(counts) - counts
    rank = np.empty(len(user_codes), dtype=np.int64)
    rank[order] = np.arange(len(user_codes)) - starts[user_codes[order]]
    return rank


def _per_user_test_mask(data: Interactions, n_test_per_user: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Test mask taking the first ``n_test_per_user[u]`` rows of each user in increasing ``key``."""
    order = np.lexsort((key, data.user_codes))
    rank = _rank_within_user(data.user_codes, order, data.n_users)
    return rank < n_test_per_user[data.user_codes]


# ---------------------------------------------------------------- reports
def split_report(train: Interactions, test: Interactions) -> dict:
    """Row counts and the cold-start users/items of ``test`` relative to ``train``.

    Returns
    -------
    dict
        ``train_rows``, ``test_rows``, ``test_users`` / ``test_items`` (distinct in
        test), ``cold_users`` / ``cold_items`` (distinct test ids with no train row),
        ``cold_user_rows`` / ``cold_item_rows`` (test rows whose user / item is cold).
    """
    if train.users is test.users and train.items is test.items:
        tu, ti = test.user_codes, test.item_codes
        known_u = np.bincount(train.user_codes, minlength=train.n_users) > 0
        known_i = np.bincount(train.item_codes, minlength=train.n_items) > 0
        cold_u_row = ~known_u[tu]
        cold_i_row = ~known_i[ti]
    else:  # different vocabularies: compare by id
        tu, ti = test.user_codes, test.item_codes
        cold_u_row = ~pd.Index(test.users.take(tu)).isin(train.users.take(np.unique(train.user_codes)))
        cold_i_row = ~pd.Index(test.items.take(ti)).isin(train.items.take(np.unique(train.item_codes)))
        cold_u_row, cold_i_row = np.asarray(cold_u_row), np.asarray(cold_i_row)
    return {
        "train_rows": len(train),
        "test_rows": len(test),
        "test_users": int(np.unique(tu).size),
        "test_items": int(np.unique(ti).size),
        "cold_users": int(np.unique(tu[cold_u_row]).size),
        "cold_items": int(np.unique(ti[cold_i_row]).size),
        "cold_user_rows": int(cold_u_row.sum()),
        "cold_item_rows": int(cold_i_row.sum()),
    }


# ---------------------------------------------------------------- row-level splits
def random_split(data: Interactions, test_size: float = 0.2, *, random_state=None) -> Split:
    """Random holdout of exactly ``round(test_size * n)`` rows.

    Parameters
    ----------
    data : Interactions
    test_size : float in (0, 1), default 0.2
    random_state : int, Generator or None

    Returns
    -------
    Split
        ``(train, test)``; test holds a uniformly random subset of that many rows.
    """
    data = _check_interactions(data)
    test_size = _check_fraction("test_size", test_size)
    rng = check_random_state(random_state)
    n = len(data)
    test_mask = np.zeros(n, dtype=bool)
    test_mask[rng.permutation(n)[: int(round(test_size * n))]] = True
    return _parts(data, test_mask)


def mask_split(data: Interactions, mask) -> Split:
    """Train = the rows where ``mask`` is True, test = the rest (a protocol given as a mask)."""
    data = _check_interactions(data)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (len(data),):
        raise DataError(f"mask must be a boolean array of shape ({len(data)},), "
                        f"got dtype {mask.dtype} and shape {mask.shape}")
    return _parts(data, ~mask)


def kfold(data: Interactions, n_splits: int = 5, *, random_state=None) -> Iterator[Split]:
    """K-fold cross-validation over rows.

    The rows are shuffled once (by ``random_state``) and cut into ``n_splits``
    folds whose sizes differ by at most one (``np.array_split``); fold ``f`` is the
    test set of the ``f``-th split. Every row is in exactly one test fold.

    Yields
    ------
    Split
        ``(train, test)`` for each fold in turn.
    """
    data = _check_interactions(data)
    n_splits = _check_int("n_splits", n_splits, 2)
    if n_splits > len(data):
        raise DataError(f"n_splits={n_splits} is larger than the number of rows ({len(data)})")
    folds = np.array_split(check_random_state(random_state).permutation(len(data)), n_splits)

    def gen():
        for fold in folds:
            test_mask = np.zeros(len(data), dtype=bool)
            test_mask[fold] = True
            yield _parts(data, test_mask)

    return gen()


def train_val_test_split(data: Interactions, val_size: float = 0.1, test_size: float = 0.2, *,
                         random_state=None) -> TrainValTest:
    """Random three-way split: exactly ``round(val_size * n)`` validation and
    ``round(test_size * n)`` test rows, the rest train.
    """
    data = _check_interactions(data)
    val_size = _check_fraction("val_size", val_size)
    test_size = _check_fraction("test_size", test_size)
    if val_size + test_size >= 1.0:
        raise DataError(f"val_size + test_size must be < 1, got {val_size} + {test_size}")
    n = len(data)
    n_test, n_val = int(round(test_size * n)), int(round(val_size * n))
    perm = check_random_state(random_state).permutation(n)
    part = np.zeros(n, dtype=np.int8)  # 0 train, 1 val, 2 test
    part[perm[:n_test]] = 2
    part[perm[n_test:n_test + n_val]] = 1
    return TrainValTest(data.subset(part == 0), data.subset(part == 1), data.subset(part == 2))


# ---------------------------------------------------------------- per-user splits
def leave_k_out(data: Interactions, k: int = 1, *, random_state=None) -> Split:
    """Per-user leave-k-out: ``k`` random rows of every user with more than ``k`` rows go to test.

    Users with ``k`` rows or fewer stay entirely in train, so every test user keeps
    at least one training row.
    """
    data = _check_interactions(data)
    k = _check_int("k", k, 1)
    counts = np.bincount(data.user_codes, minlength=data.n_users)
    n_test = np.where(counts > k, k, 0)
    key = check_random_state(random_state).permutation(len(data))
    return _parts(data, _per_user_test_mask(data, n_test, key))


def user_holdout(data: Interactions, test_size: float = 0.2, min_interactions: int = 10, *,
                 random_state=None) -> Split:
    """Per-user fraction: each user with at least ``min_interactions`` rows gives
    ``clip(round(test_size * n_u), 1, n_u - 1)`` random rows to test; users with
    fewer rows stay entirely in train.

    Every eligible user thus has at least one test row and at least one train row.
    ``min_interactions`` must be >= 2.
    """
    data = _check_interactions(data)
    test_size = _check_fraction("test_size", test_size)
    min_interactions = _check_int("min_interactions", min_interactions, 2)
    counts = np.bincount(data.user_codes, minlength=data.n_users)
    n_test = np.clip(np.round(test_size * counts), 1, np.maximum(counts - 1, 1)).astype(np.int64)
    n_test[counts < min_interactions] = 0
    key = check_random_state(random_state).permutation(len(data))
    return _parts(data, _per_user_test_mask(data, n_test, key))


def leave_last_out(data: Interactions, n: int = 1) -> Split:
    """Per-user temporal holdout: the last ``n`` rows by timestamp of every user with
    more than ``n`` rows go to test (users with ``n`` rows or fewer stay in train).

    Ties in timestamp are broken by row order (a later row counts as later), so the
    split is deterministic and every test row of a user is not earlier than any of
    that user's training rows.
    """
    data = _check_interactions(data)
    n = _check_int("n", n, 1)
    ts = _timestamps(data, "leave_last_out")
    counts = np.bincount(data.user_codes, minlength=data.n_users)
    n_test = np.where(counts > n, n, 0)
    order = np.lexsort((-np.arange(len(data)), -ts, data.user_codes))  # newest first within user
    rank = _rank_within_user(data.user_codes, order, data.n_users)
    return _parts(data, rank < n_test[data.user_codes])


def temporal_split(data: Interactions, test_size: float = 0.2, *, at=None) -> Split:
    """Global temporal cut.

    With ``at``, test holds the rows with ``timestamp >= at`` and train the rows
    before it. ``at`` is a number of seconds since the epoch (int or float, the unit
    of ``Interactions.timestamps``), or a date: a ``datetime``, ``numpy.datetime64``,
    ``pandas.Timestamp`` or an ISO string (a naive date is read as UTC). Otherwise
    test holds the latest ``round(test_size * n)`` rows (``test_size`` a fraction;
    ties in timestamp broken by row order), so ``max(train timestamps) <= min(test timestamps)``.
    """
    data = _check_interactions(data)
    ts = _timestamps(data, "temporal_split")
    if at is not None:
        return _parts(data, ts >= _cut_seconds(at))
    test_size = _check_fraction("test_size", test_size)
    n_test = int(round(test_size * len(data)))
    order = np.lexsort((np.arange(len(data)), ts))
    test_mask = np.zeros(len(data), dtype=bool)
    test_mask[order[len(data) - n_test:]] = True
    return _parts(data, test_mask)


def _cut_seconds(at) -> float:
    """A temporal cut as seconds since the epoch (see :func:`temporal_split`)."""
    if isinstance(at, bool):
        raise DataError(f"at must be seconds since the epoch or a date, got {at!r}")
    if isinstance(at, numbers.Real):  # a float is seconds too, never nanoseconds
        if not np.isfinite(at):
            raise DataError(f"at must be a finite number of seconds since the epoch, got {at!r}")
        return float(at)
    try:
        stamp = pd.Timestamp(at)
    except (TypeError, ValueError) as exc:
        raise DataError(f"at must be seconds since the epoch or a date, got {at!r}") from exc
    if stamp is pd.NaT:
        raise DataError(f"at must be seconds since the epoch or a date, got {at!r}")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.timestamp()


def strong_generalization_split(data: Interactions, test_users: float | int = 0.2, test_size: float = 0.2, *,
                                min_interactions: int = 2, random_state=None) -> StrongSplit:
    """Held-out users, evaluated by folding them in from part of their rows.

    Among users with at least ``min_interactions`` rows, ``test_users`` of them (a
    fraction: ``round(test_users * n_eligible)`` users; or an integer count) are held
    out at random. Each held-out user's rows are split at random into ``test``
    (``clip(round(test_size * n_u), 1, n_u - 1)`` rows, scored) and ``fold_in`` (the
    rest, e.g. 80%, given to the model at prediction time). ``train`` holds every row
    of the other users. The three parts partition the input.
    """
    data = _check_interactions(data)
    test_size = _check_fraction("test_size", test_size)
    min_interactions = _check_int("min_interactions", min_interactions, 2)
    rng = check_random_state(random_state)
    counts = np.bincount(data.user_codes, minlength=data.n_users)
    eligible = np.flatnonzero(counts >= min_interactions)
    if isinstance(test_users, numbers.Integral) and not isinstance(test_users, bool):
        n_out = _check_int("test_users", test_users, 1)
        if n_out > len(eligible):
            raise DataError(f"test_users={n_out} but only {len(eligible)} users have >= "
                            f"{min_interactions} interactions")
    else:
        n_out = int(round(_check_fraction("test_users", test_users) * len(eligible)))
    heldout = np.zeros(data.n_users, dtype=bool)
    heldout[rng.permutation(eligible)[:n_out]] = True
    n_test = np.where(heldout, np.clip(np.round(test_size * counts), 1, np.maximum(counts - 1, 1)), 0)
    test_mask = _per_user_test_mask(data, n_test.astype(np.int64), rng.permutation(len(data)))
    out_rows = heldout[data.user_codes]
    return StrongSplit(data.subset(~out_rows), data.subset(out_rows & ~test_mask), data.subset(test_mask))
