"""Neighbourhood kernels: sparse top-k similarities and neighbourhood predictions.

Arrays in, arrays out; no package imports. Entities (items for item-item, users
for user-user) are the rows of a CSR matrix ``E`` (entities x context); its
transpose ``ET`` (context x entities, CSR) is passed alongside so that the
similarities of one entity to all others are accumulated from the entities
sharing a context with it, never forming an n x n dense matrix. Each thread
owns accumulators of length n_entities, reset through a list of touched
entries, so the cost is sum over contexts of deg(context)^2, not n^2.

Similarity modes (``mode``):

* 0 — cosine over the common support: Σ a·b / sqrt(Σ a² · Σ b²), sums over the
  contexts both entities have;
* 1 — Pearson over the common support (the values should be centred per
  entity beforehand; the formula is shift invariant, centring only keeps the
  float32 sums well conditioned);
* 2 — scaled dot product over the full vectors: Σ a·b · scale_i · scale_j
  (cosine when ``scale`` is 1/‖row‖, a plain dot product when it is 1).

Every similarity is multiplied by n / (n + shrinkage), n the common support,
pairs with n < min_support are dropped, and only positive similarities are
kept: at most ``max_keep`` per row, sorted by decreasing similarity.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

COSINE, PEARSON, SCALED_DOT = 0, 1, 2


@njit(parallel=True, fastmath=True, cache=True)
def similarity_topk(indptr, indices, data, t_indptr, t_indices, t_data, scale, mode, shrinkage,
                    min_support, max_keep, n_chunks, out_idx, out_sim, out_len):
    """Top-``max_keep`` positive similarities of every row of E (see the module docstring).

    Parameters
    ----------
    indptr, indices, data : CSR of E (n x m), float32 data
    t_indptr, t_indices, t_data : CSR of E transposed (m x n)
    scale : float32 (n,), used by mode 2 only
    out_idx : int32 (n, max_keep); out_sim : float32 (n, max_keep); out_len : int32 (n,)
        Row r's neighbours are out_idx[r, :out_len[r]], sorted by decreasing similarity.
    """
    n = len(indptr) - 1
    chunk = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * chunk
        stop = min(n, start + chunk)
        if start >= stop:
            continue
        freq = np.zeros(n, dtype=np.int32)
        prods = np.zeros(n, dtype=np.float32)
        sqi = np.zeros(n, dtype=np.float32)
        sqj = np.zeros(n, dtype=np.float32)
        si = np.zeros(n, dtype=np.float32)
        sj = np.zeros(n, dtype=np.float32)
        touched = np.empty(n, dtype=np.int32)
        cand_j = np.empty(n, dtype=np.int32)
        cand_s = np.empty(n, dtype=np.float32)
        for i in range(start, stop):
            nt = 0
            for p in range(indptr[i], indptr[i + 1]):
                ctx = indices[p]
                a = data[p]
                for q in range(t_indptr[ctx], t_indptr[ctx + 1]):
                    j = t_indices[q]
                    if j == i:
                        continue
                    b = t_data[q]
                    if freq[j] == 0:
                        touched[nt] = j
                        nt += 1
                    freq[j] += 1
                    prods[j] += a * b
                    if mode != SCALED_DOT:
                        sqi[j] += a * a
                        sqj[j] += b * b
                    if mode == PEARSON:
                        si[j] += a
                        sj[j] += b
            m = 0
            for t in range(nt):
                j = touched[t]
                f = freq[j]
                s = np.float32(0.0)
                if f >= min_support:
                    if mode == COSINE:
                        den = sqi[j] * sqj[j]
                        if den > 0:
                            s = prods[j] / np.sqrt(den)
                    elif mode == PEARSON:
                        ff = np.float32(f)
                        vi = ff * sqi[j] - si[j] * si[j]
                        vj = ff * sqj[j] - sj[j] * sj[j]
                        if vi > 0 and vj > 0:
                            s = (ff * prods[j] - si[j] * sj[j]) / np.sqrt(vi * vj)
                    else:
                        s = prods[j] * scale[i] * scale[j]
                    if shrinkage > 0:
                        s *= np.float32(f) / (np.float32(f) + shrinkage)
                if s > 0:
                    cand_j[m] = j
                    cand_s[m] = s
                    m += 1
                freq[j] = 0
                prods[j] = 0
                sqi[j] = 0
                sqj[j] = 0
                si[j] = 0
                sj[j] = 0
            # sort candidates by (similarity desc, code asc): deterministic whatever the touch order
            order = np.argsort(cand_j[:m], kind="mergesort")
            keys = -cand_s[:m][order]
            order2 = np.argsort(keys, kind="mergesort")
            kept = min(m, max_keep)
            for r in range(kept):
                pos = order[order2[r]]
                out_idx[i, r] = cand_j[pos]
                out_sim[i, r] = cand_s[pos]
            out_len[i] = kept


@njit(parallel=True, fastmath=True, cache=True)
def neighborhood_predict(targets, contexts, offsets, s_indptr, s_indices, s_data,
                         c_indptr, c_indices, c_data, k, min_k, den_reg, out, out_count):
    """Neighbourhood estimate for each (target, context) pair.

    For item-item: target = item i, context = user u, the similarity row of i
    lists its neighbours j by decreasing similarity, and ``c_*`` is the CSR of
    residuals e_uj (users x items, indices sorted). The first ``k`` neighbours
    of i that u rated give ``offset + Σ s·e / (Σ s + den_reg)``; with fewer than ``min_k``
    of them the estimate is ``offset`` alone. ``out_count`` receives how many
    neighbours were used.
    """
    for p in prange(len(targets)):
        t = targets[p]
        c = contexts[p]
        lo = c_indptr[c]
        hi = c_indptr[c + 1]
        row = c_indices[lo:hi]
        num = np.float32(0.0)
        den = np.float32(0.0)
        cnt = 0
        for q in range(s_indptr[t], s_indptr[t + 1]):
            if cnt >= k:
                break
            s = s_data[q]
            if s <= 0:
                continue
            nb = s_indices[q]
            pos = np.searchsorted(row, nb)
            if pos < hi - lo and row[pos] == nb:
                num += s * c_data[lo + pos]
                den += s
                cnt += 1
        est = offsets[p]
        if cnt >= min_k and cnt > 0 and den > 0:
            est += num / (den + den_reg)
        out[p] = est
        out_count[p] = cnt


def sparse_topk_similarity(rows, mode, *, shrinkage=0.0, min_support=1, max_keep=50, scale=None,
                           n_chunks=None):
    """Top-``max_keep`` positive similarities between the rows of a CSR matrix, as a CSR matrix.

    Parameters
    ----------
    rows : scipy CSR (n x m) with float32 values; entity vectors over contexts
    mode : int, one of COSINE, PEARSON, SCALED_DOT
    scale : float32 (n,), for SCALED_DOT (1/‖row‖ gives cosine); ones when None
    n_chunks : int, rows are cut into this many chunks shared among the threads

    Returns
    -------
    scipy.sparse.csr_matrix (n x n), float32; each row's entries are stored by
    decreasing similarity (column indices are therefore not sorted).
    """
    import scipy.sparse as sp

    rows = sp.csr_matrix(rows, dtype=np.float32)
    rows.sort_indices()
    n = rows.shape[0]
    cols = rows.T.tocsr()
    cols.sort_indices()
    if scale is None:
        scale = np.ones(n, dtype=np.float32)
    max_keep = int(max(1, min(max_keep, max(n - 1, 1))))
    if n_chunks is None:
        n_chunks = max(1, min(n, 64))
    out_idx = np.zeros((n, max_keep), dtype=np.int32)
    out_sim = np.zeros((n, max_keep), dtype=np.float32)
    out_len = np.zeros(n, dtype=np.int32)
    similarity_topk(rows.indptr.astype(np.int64), rows.indices.astype(np.int32), rows.data,
                    cols.indptr.astype(np.int64), cols.indices.astype(np.int32), cols.data,
                    np.ascontiguousarray(scale, dtype=np.float32), int(mode), np.float32(shrinkage),
                    int(min_support), max_keep, int(n_chunks), out_idx, out_sim, out_len)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(out_len, out=indptr[1:])
    keep = np.arange(max_keep)[None, :] < out_len[:, None]
    indptr = indptr.astype(np.int32) if indptr[-1] < 2**31 else indptr
    return sp.csr_matrix((out_sim[keep], out_idx[keep], indptr), shape=(n, n))
