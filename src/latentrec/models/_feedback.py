"""Helpers shared by the models that learn from implicit feedback (every family has some): weight
checks, confidences, the training matrix, and the row replacement of partial fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.interactions import Interactions, as_interactions
from ..data.vocab import Vocabulary
from ..errors import DataError


def check_weights(values: np.ndarray, where: str = "implicit feedback") -> None:
    """Weights must be finite and >= 0 (DataError naming the first bad row otherwise)."""
    values = np.asarray(values)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise DataError(f"{where}: weight at row {int(bad[0])} is {values[bad[0]]!r}; expected a finite "
                        f"number ({len(bad)} such rows)")
    neg = np.flatnonzero(values < 0)
    if len(neg):
        raise DataError(f"{where}: weight at row {int(neg[0])} is {float(values[neg[0]]):g}; implicit feedback "
                        f"weights must be >= 0 ({len(neg)} such rows)")


def confidence(d: np.ndarray, kind: str, alpha: float, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Per stored cell: (c - 1, c * p) with c = 1 + alpha d (linear) or 1 + alpha log(1 + d / epsilon)
    (log), and p = 1 when d > 0 else 0."""
    d = np.asarray(d, dtype=np.float64)
    extra = alpha * d if kind == "linear" else alpha * np.log1p(d / epsilon)
    acoef = extra.astype(np.float32)
    bcoef = np.where(d > 0, 1.0 + extra, 0.0).astype(np.float32)
    return acoef, bcoef


def append_ids(vocab: Vocabulary, ids: np.ndarray) -> tuple[Vocabulary, np.ndarray]:
    """Codes of ``ids`` in ``vocab``, appending the unknown ones (in first-seen order)."""
    ids = np.asarray(ids)
    codes = vocab.codes(ids, missing="ignore")
    new = pd.unique(ids[codes < 0]) if np.any(codes < 0) else ids[:0]
    if len(new) == 0:
        return vocab, codes
    if vocab.ids.dtype.kind in "iu" and np.asarray(new).dtype.kind not in "iu":
        raise DataError(f"new id {new[0]!r} is not an integer like the model's ids")
    merged = Vocabulary(np.concatenate([vocab.ids, np.asarray(new, dtype=vocab.ids.dtype
                                                              if vocab.ids.dtype.kind != "U" else object)]))
    return merged, merged.codes(ids, missing="raise")


def rows_for(ids, interactions, own: Vocabulary, other: Vocabulary, side: str):
    """The new rows of ``ids`` as (own ids, CSR over ``other`` codes, unknown count).

    ``interactions`` is a sparse matrix (len(ids) x len(other)) whose row r belongs to
    ``ids[r]`` and whose columns are the model's codes of the other side; or
    Interactions / a DataFrame of (user, item[, weight]) rows whose ``side`` ids are
    among ``ids``. Unknown ids of the other side are dropped and counted.
    """
    from .base import as_id_array

    ids = as_id_array(ids, f"{side}_ids")[0]
    if len(pd.unique(ids)) != len(ids):
        raise DataError(f"{side} ids given to partial_fit repeat")
    if sp.issparse(interactions):
        m = sp.csr_matrix(interactions, dtype=np.float32)
        if m.shape != (len(ids), len(other)):
            raise DataError(f"interactions has shape {m.shape}; expected ({len(ids)}, {len(other)}) — one row "
                            f"per {side} id and one column per known {'item' if side == 'user' else 'user'}")
        m.sum_duplicates()
        m.sort_indices()
        check_weights(m.data)
        return ids, m, 0
    data = as_interactions(interactions, implicit=True)
    check_weights(data.values)
    frame = data.to_frame()
    mine, theirs = ("user", "item") if side == "user" else ("item", "user")
    row = pd.Index(ids).get_indexer(frame[mine].to_numpy())
    if np.any(row < 0):
        bad = frame[mine].to_numpy()[np.flatnonzero(row < 0)[0]]
        raise DataError(f"interactions name {side} {bad!r}, which is not among the {side} ids given")
    col = other.codes(frame[theirs].to_numpy(), missing="ignore")
    keep = col >= 0
    m = sp.csr_matrix((frame["rating"].to_numpy(np.float32)[keep], (row[keep], col[keep])),
                      shape=(len(ids), len(other)), dtype=np.float32)
    m.sum_duplicates()
    m.sort_indices()
    return ids, m, int((~keep).sum())


def replace_rows(csr: sp.csr_matrix, codes: np.ndarray, rows: sp.csr_matrix, n_rows: int) -> sp.csr_matrix:
    """``csr`` grown to ``n_rows`` rows with rows ``codes`` replaced by ``rows``."""
    coo = csr.tocoo()
    keep = ~np.isin(coo.row, codes)
    new = rows.tocoo()
    out = sp.csr_matrix((np.r_[coo.data[keep], new.data],
                         (np.r_[coo.row[keep], codes[new.row]], np.r_[coo.col[keep], new.col])),
                        shape=(n_rows, csr.shape[1]), dtype=np.float32)
    out.sort_indices()
    return out


def to_training(data: Interactions) -> sp.csr_matrix:
    """The users x items CSR of a fit's data after checking its weights."""
    check_weights(data.values, data.name or "implicit feedback")
    return data.to_csr()
