"""Vocabulary: the two-way map between a user's own ids and internal int32 codes."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ..errors import DataError, UnknownIdError, show


def _check_uniform(uniques: np.ndarray, codes: np.ndarray, what: str) -> None:
    """Ids must be all integers or all strings: a mix is ambiguous ("1" vs 1).

    Checks the distinct ids only; the message names the first row of each kind.
    """
    if uniques.dtype != object or len(uniques) == 0:
        return
    kinds = ["int" if isinstance(v, (int, np.integer)) else type(v).__name__ for v in uniques]
    first: dict[str, int] = {}
    for k, kind in enumerate(kinds):
        first.setdefault(kind, k)
    if len(first) > 1:
        where = ", ".join(f"{kind} at row {int(np.flatnonzero(codes == k)[0])}" for kind, k in first.items())
        raise DataError(f"{what} ids are of mixed types ({where}); ids must be all integers or all strings")


class Vocabulary:
    """A sorted, immutable list of ids with vectorised lookup both ways.

    ``vocab.ids[code]`` is the id of a code; ``vocab.codes(ids)`` the codes of ids
    (``-1`` for an id not in the vocabulary when ``missing="ignore"``).
    Ids are integers or strings (any hashable works in memory; only integers
    and strings can be saved).
    """

    __slots__ = ("ids", "_index")

    def __init__(self, ids):
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise DataError(f"a vocabulary needs a 1-d array of ids, got shape {ids.shape}")
        index = pd.Index(ids)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise DataError(f"vocabulary ids must be unique; {show(dup)} appears more than once")
        self.ids = ids
        self._index = index

    @property
    def nbytes(self) -> int:
        """Bytes held by the ids, counting the string objects of an object array (not just its pointers)."""
        if self.ids.dtype == object:
            return self.ids.nbytes + sum(sys.getsizeof(x) for x in self.ids)
        return self.ids.nbytes

    @classmethod
    def factorize(cls, values, what: str = "user") -> tuple["Vocabulary", np.ndarray]:
        """Build the vocabulary of ``values`` (sorted) and return it with their int32 codes."""
        values = np.asarray(values)
        if values.dtype.kind == "f":
            if not np.all(np.isfinite(values)):
                bad = int(np.flatnonzero(~np.isfinite(values))[0])
                raise DataError(f"{what} id at row {bad} is missing (NaN)")
            if np.any(values != np.round(values)):
                bad = int(np.flatnonzero(values != np.round(values))[0])
                raise DataError(f"{what} id at row {bad} is {show(values[bad])}; ids must be integers or strings")
            values = values.astype(np.int64)
        if values.dtype == object and len(values) and pd.isna(values).any():
            bad = int(np.flatnonzero(pd.isna(values))[0])
            raise DataError(f"{what} id at row {bad} is missing")
        # hash first (works on any mix of types), check and sort only the distinct ids
        codes, uniques = pd.factorize(values, sort=False)
        uniques = np.asarray(uniques)
        _check_uniform(uniques, codes, what)
        try:
            order = np.argsort(uniques, kind="stable")
        except TypeError as exc:
            raise DataError(f"{what} ids cannot be ordered: {exc}") from exc
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        uniques = uniques[order]
        codes = rank[codes]
        if len(uniques) >= 2**31 - 1:
            raise DataError(f"more than 2**31-1 distinct {what} ids do not fit int32 codes")
        return cls(np.asarray(uniques)), codes.astype(np.int32, copy=False)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item) -> bool:
        return item in self._index

    def __iter__(self):
        return iter(self.ids)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and len(self) == len(other) and bool(np.all(self.ids == other.ids))

    __hash__ = None  # mutable-looking container semantics

    def __repr__(self) -> str:
        head = ", ".join(map(repr, self.ids[:3]))
        return f"Vocabulary({len(self)} ids: {head}{', ...' if len(self) > 3 else ''})"

    def code(self, id_) -> int:
        """The code of one id; :class:`UnknownIdError` when absent."""
        try:
            loc = self._index.get_loc(id_)
        except (KeyError, TypeError):
            raise UnknownIdError(f"id {show(id_)} is not known") from None
        return int(loc)

    def codes(self, ids, missing: str = "raise", what: str = "id") -> np.ndarray:
        """Codes of many ids as int32; unknown ids raise or become -1 (``missing="ignore"``)."""
        ids = np.asarray(ids)
        if ids.ndim == 0:
            ids = ids.reshape(1)
        if len(ids) == 0:
            return np.empty(0, dtype=np.int32)
        if len(ids) == 1 and ids.dtype.kind != "f":  # one id (a request): a hash lookup, no indexer
            try:
                code = int(self._index.get_loc(ids[0]))  # ids are unique: always one position
            except (KeyError, TypeError):
                code = -1
            if missing == "raise" and code < 0:
                raise UnknownIdError(f"{what} {show(ids[0])} is not known to the model (1 unknown of 1)")
            return np.array([code], dtype=np.int32)
        if ids.dtype.kind == "f" and self.ids.dtype.kind in "iu":
            ok = np.isfinite(ids) & (ids == np.round(ids))
            ids = np.where(ok, ids, -(2**62)).astype(np.int64)
        try:
            codes = self._index.get_indexer(ids)
        except TypeError:
            codes = np.array([self._index.get_loc(i) if i in self._index else -1 for i in ids])
        codes = codes.astype(np.int32, copy=False)
        if missing == "raise" and np.any(codes < 0):
            bad = ids[np.flatnonzero(codes < 0)[0]]
            n_bad = int(np.sum(codes < 0))
            raise UnknownIdError(f"{what} {show(bad)} is not known to the model ({n_bad} unknown of {len(ids)})")
        return codes

    def take(self, codes) -> np.ndarray:
        """Ids of codes."""
        return self.ids[np.asarray(codes)]

    def subset(self, codes) -> "Vocabulary":
        """A new vocabulary holding the ids at ``codes`` (in that order)."""
        return Vocabulary(self.ids[np.asarray(codes)])
