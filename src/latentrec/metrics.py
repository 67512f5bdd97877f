"""Rating and ranking metrics: pure functions on arrays, vectorised over users.

Rating metrics compare ``y_true`` and ``y_pred`` element-wise. Ranking metrics
take the top-k item codes recommended to a batch of users and the CSR matrix of
those users' held-out (relevant) items, and average per-user values over the
users that have at least one relevant item. Definitions (docs/protocols.md):
for a user u with relevant set R_u (|R_u| > 0) and list L_u = (l_1, ..., l_k),
``rel_j = 1`` when ``l_j`` is in R_u, and ``hits = sum_j rel_j``:

* precision@k     = hits / k                     (padding counts as a miss)
* recall@k        = hits / |R_u|                 (the usual denominator)
* recall_capped@k = hits / min(|R_u|, k)         (reaches 1 when |R_u| > k)
* ndcg@k          = DCG / IDCG, DCG = sum_j rel_j / log2(j + 1),
                    IDCG = sum_{j=1}^{min(|R_u|, k)} 1 / log2(j + 1)  (binary relevance)
* map@k           = (1 / min(|R_u|, k)) * sum_j rel_j * precision@j
* hit_rate@k      = 1 if hits > 0 else 0
* mrr@k           = 1 / (first j with rel_j = 1), 0 if none in the top k
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .errors import DataError

#: the metrics :func:`ranking_metrics` returns by default (and their order)
DEFAULT_RANKING = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
#: every metric :func:`ranking_metrics` can compute
RANKING_METRICS = ("precision", "recall", "recall_capped", "ndcg", "map", "hit_rate", "mrr")


# ---------------------------------------------------------------- rating metrics
def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise DataError(f"y_true has {t.size} values but y_pred has {p.size}; they must match one to one")
    if t.size == 0:
        raise DataError("cannot compute an error metric on no values (y_true and y_pred are empty)")
    return t, p


def mse(y_true, y_pred) -> float:
    """Mean squared error, ``mean((y - ŷ)^2)``. NaN in the inputs gives NaN."""
    t, p = _pair(y_true, y_pred)
    d = t - p
    return float(np.mean(d * d))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, ``sqrt(mean((y - ŷ)^2))``. NaN in the inputs gives NaN."""
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error, ``mean(|y - ŷ|)``. NaN in the inputs gives NaN."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination, ``1 - sum((y - ŷ)^2) / sum((y - mean(y))^2)``.

    As in scikit-learn's ``r2_score``: when ``y_true`` is constant the result is 1.0
    for a perfect prediction and 0.0 otherwise.
    """
    t, p = _pair(y_true, y_pred)
    ss_res = float(np.sum((t - p) ** 2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


# ---------------------------------------------------------------- ranking metrics
def _check_ranking(recommended, truth, k) -> tuple[np.ndarray, sp.csr_matrix]:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be an integer >= 1, got {k!r}")
    rec = np.asarray(recommended)
    if rec.ndim != 2 or (rec.size and rec.dtype.kind not in "iu"):
        raise DataError("recommended must be a 2-d integer array of item codes (users x positions, -1 = "
                        f"padding), got dtype {rec.dtype} and shape {rec.shape}")
    if not sp.issparse(truth):
        raise DataError(f"truth must be a scipy sparse matrix (users x items), got {type(truth).__name__}")
    truth = truth.tocsr()
    if truth.shape[0] != rec.shape[0]:
        raise DataError(f"recommended has {rec.shape[0]} rows (users) but truth has {truth.shape[0]}; "
                        "row r of one must be the same user as row r of the other")
    if rec.size and rec.max() >= truth.shape[1]:
        raise DataError(f"recommended holds item code {int(rec.max())} but truth has only {truth.shape[1]} items")
    return rec[:, :k].astype(np.int64, copy=False), truth


def _hits(rec: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean (n_users, k): is rec[r, j] a stored non-zero of truth row r?

    All (row, item) queries are answered in one compiled call (scipy's CSR
    element sampling: a binary search inside each row when indices are sorted),
    no Python loop per user. A repeated item in a list counts only at its first
    position (checked only when a list has a repeat, which is rare).
    """
    m, k = rec.shape
    hits = np.zeros((m, k), dtype=bool)
    if m == 0 or k == 0 or truth.nnz == 0:
        return hits
    if not truth.has_sorted_indices:
        truth = truth.sorted_indices()
    valid = rec >= 0
    if not valid.any():
        return hits
    rows = np.broadcast_to(np.arange(m, dtype=np.int64)[:, None], (m, k))[valid]
    hits[valid] = np.asarray(truth[rows, rec[valid]]).ravel() != 0
    if k > 1:
        srt = np.sort(rec, axis=1)
        if np.any((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)):
            order = np.argsort(rec, axis=1, kind="stable")
            srt = np.take_along_axis(rec, order, axis=1)
            dup = np.zeros((m, k), dtype=bool)
            np.put_along_axis(dup, order[:, 1:], srt[:, 1:] == srt[:, :-1], axis=1)
            hits &= ~dup
    return hits


def ranking_metrics(recommended: np.ndarray, truth: sp.spmatrix, k: int = 10, *,
                    metrics=DEFAULT_RANKING, per_user: bool = False) -> dict:
    """Top-k ranking metrics, averaged per user.

    Parameters
    ----------
    recommended : int array of shape (n_users, >= k)
        Item codes in rank order; ``-1`` pads short lists. Only the first ``k``
        columns are used; fewer than ``k`` columns count as padding. A repeated
        item counts only at its first position.
    truth : sparse matrix of shape (n_users, n_items)
        The relevant (held-out) items of the same users: row ``r`` of ``truth``
        is the user of row ``r`` of ``recommended``; every stored non-zero is relevant.
    k : int, default 10
    metrics : sequence of str
        Any of :data:`RANKING_METRICS` (definitions in the module docstring);
        default :data:`DEFAULT_RANKING`.
    per_user : bool, default False
        Return per-user arrays (for error bars) instead of means.

    Returns
    -------
    dict
        ``{name: mean over users}`` over the users with at least one relevant item
        (NaN when there is none). With ``per_user=True``: ``{name: array}`` plus
        ``"users"``, the row indices those arrays refer to.
    """
    unknown = [name for name in metrics if name not in RANKING_METRICS]
    if unknown:
        raise DataError(f"unknown ranking metric(s) {unknown}; choose from {RANKING_METRICS}")
    rec, truth = _check_ranking(recommended, truth, k)
    if rec.shape[1] < k:
        rec = np.hstack([rec, np.full((rec.shape[0], k - rec.shape[1]), -1, dtype=np.int64)])
    hits = _hits(rec, truth)
    n_rel = np.diff(truth.indptr) if truth.nnz == 0 or np.all(truth.data != 0) else \
        np.bincount(truth.nonzero()[0], minlength=truth.shape[0])
    users = np.flatnonzero(n_rel > 0)
    hits, n_rel = hits[users], n_rel[users].astype(np.float64)
    n_hits = hits.sum(axis=1)
    capped = np.minimum(n_rel, k)
    positions = np.arange(1, k + 1)
    out = {}
    for name in metrics:
        if name == "precision":
            val = n_hits / k
        elif name == "recall":
            val = n_hits / n_rel
        elif name == "recall_capped":
            val = n_hits / capped
        elif name == "ndcg":
            disc = 1.0 / np.log2(positions + 1)
            ideal = np.cumsum(disc)[capped.astype(np.int64) - 1]
            val = (hits * disc).sum(axis=1) / ideal
        elif name == "map":
            prec_at = np.cumsum(hits, axis=1) / positions
            val = (prec_at * hits).sum(axis=1) / capped
        elif name == "hit_rate":
            val = (n_hits > 0).astype(np.float64)
        else:  # mrr
            first = hits.argmax(axis=1) + 1
            val = np.where(n_hits > 0, 1.0 / first, 0.0)
        out[name] = np.asarray(val, dtype=np.float64)
    if per_user:
        out["users"] = users
        return out
    return {name: float(v.mean()) if len(v) else float("nan") for name, v in out.items()}


def coverage(recommended: np.ndarray, n_items: int, k: int | None = None) -> float:
    """Catalogue coverage: the fraction of the ``n_items`` items recommended to at
    least one user in the top ``k`` (all columns when ``k`` is None); ``-1`` is padding.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise DataError(f"n_items must be an integer >= 1, got {n_items!r}")
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise DataError(f"recommended must be 2-d (users x positions), got shape {rec.shape}")
    if k is not None:
        rec = rec[:, :k]
    items = rec[rec >= 0]
    if items.size and items.max() >= n_items:
        raise DataError(f"recommended holds item code {int(items.max())} but n_items is {n_items}")
    return float(np.count_nonzero(np.bincount(items.astype(np.int64), minlength=n_items)) / n_items)
