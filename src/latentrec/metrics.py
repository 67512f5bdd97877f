"""Rating and ranking metrics, vectorised over users."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def ranking_metrics(recommended: np.ndarray, truth: sp.csr_matrix, k: int = 10) -> dict:
    """Mean per-user precision, recall, NDCG, MAP, hit rate and MRR at ``k``.

    ``recommended`` holds item codes (n_users, >= k), -1 for padding; ``truth`` is a
    CSR (n_users, n_items) of the held-out items of the same users (row r of one
    is row r of the other). Users with no held-out items are left out.
    """
    rec = np.asarray(recommended)[:, :k]
    truth = sp.csr_matrix(truth)
    n_rel = np.diff(truth.indptr)
    users = np.flatnonzero(n_rel > 0)
    rec = rec[users]
    t = truth[users]
    rows = np.repeat(np.arange(len(users)), rec.shape[1])
    cols = rec.ravel()
    valid = cols >= 0
    hits = np.zeros(rec.shape, dtype=bool)
    flat = np.zeros(len(cols), dtype=bool)
    flat[valid] = np.asarray(t[rows[valid], cols[valid]]).ravel() != 0
    hits = flat.reshape(rec.shape)
    nrel = n_rel[users].astype(np.float64)
    n_hits = hits.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, rec.shape[1] + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(nrel, rec.shape[1]).astype(int) - 1]
    prec_at = np.cumsum(hits, axis=1) / np.arange(1, rec.shape[1] + 1)
    ap = (prec_at * hits).sum(axis=1) / np.minimum(nrel, k)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)
    return {
        "precision": float(np.mean(n_hits / k)),
        "recall": float(np.mean(n_hits / nrel)),
        "ndcg": float(np.mean(dcg / ideal)),
        "map": float(np.mean(ap)),
        "hit_rate": float(np.mean(n_hits > 0)),
        "mrr": float(np.mean(1.0 / first)),
    }
