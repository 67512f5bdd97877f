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

from .topn import _heap_drain, _heap_offer

COSINE, PEARSON, SCALED_DOT = 0, 1, 2


@njit(inline="always")
def _accumulate(acc, touched, nt, i, indptr, indices, data, t_indptr, t_indices, t_data, mode):
    # acc[j] = (freq, Σab, Σa², Σb², Σa, Σb), as many fields as the mode needs
    for p in range(indptr[i], indptr[i + 1]):
        ctx = indices[p]
        a = data[p]
        if mode == SCALED_DOT:
            for q in range(t_indptr[ctx], t_indptr[ctx + 1]):
                j = t_indices[q]
                if acc[j, 0] == 0:
                    touched[nt] = j
                    nt += 1
                acc[j, 0] += 1
                acc[j, 1] += a * t_data[q]
        elif mode == COSINE:
            aa = a * a
            for q in range(t_indptr[ctx], t_indptr[ctx + 1]):
                j = t_indices[q]
                b = t_data[q]
                if acc[j, 0] == 0:
                    touched[nt] = j
                    nt += 1
                acc[j, 0] += 1
                acc[j, 1] += a * b
                acc[j, 2] += aa
                acc[j, 3] += b * b
        else:
            aa = a * a
            for q in range(t_indptr[ctx], t_indptr[ctx + 1]):
                j = t_indices[q]
                b = t_data[q]
                if acc[j, 0] == 0:
                    touched[nt] = j
                    nt += 1
                acc[j, 0] += 1
                acc[j, 1] += a * b
                acc[j, 2] += aa
                acc[j, 3] += b * b
                acc[j, 4] += a
                acc[j, 5] += b
    return nt


@njit(inline="always")
def _kth_largest(values, scratch, m, k):
    """The k-th largest of values[:m] (1 <= k <= m), by quickselect on a scratch copy."""
    for r in range(m):
        scratch[r] = values[r]
    target = m - k  # position in ascending order
    lo, hi = 0, m - 1
    while lo < hi:
        mid = (lo + hi) // 2
        a, b, c = scratch[lo], scratch[mid], scratch[hi]
        pivot = max(min(a, b), min(max(a, b), c))  # median of three
        i, j = lo, hi
        while i <= j:
            while scratch[i] < pivot:
                i += 1
            while scratch[j] > pivot:
                j -= 1
            if i <= j:
                scratch[i], scratch[j] = scratch[j], scratch[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break
    return scratch[target]


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
        Row r's neighbours are out_idx[r, :out_len[r]], sorted by decreasing similarity
        (ties by increasing code).
    """
    n = len(indptr) - 1
    chunk = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * chunk
        stop = min(n, start + chunk)
        if start >= stop:
            continue
        # (freq, Σab[, Σa², Σb²[, Σa, Σb]]): narrow rows keep large catalogues in cache
        width = 2 if mode == SCALED_DOT else (4 if mode == COSINE else 6)
        acc = np.zeros((n, width), dtype=np.float32)
        touched = np.empty(n, dtype=np.int32)
        # few kept per row: a min-heap of the best so far (worst at the root) rejects most
        # candidates with one comparison; many kept: collect, quickselect, sort the kept
        use_heap = max_keep <= 64
        hs = np.empty(max_keep, dtype=np.float32)
        hc = np.empty(max_keep, dtype=np.int32)
        cand_j = np.empty(n if not use_heap else 1, dtype=np.int32)
        cand_s = np.empty(n if not use_heap else 1, dtype=np.float32)
        scratch = np.empty(n if not use_heap else 1, dtype=np.float32)
        for i in range(start, stop):
            nt = _accumulate(acc, touched, 0, i, indptr, indices, data, t_indptr, t_indices, t_data, mode)
            size = 0
            m = 0
            for t in range(nt):
                j = touched[t]
                f = acc[j, 0]
                s = np.float32(0.0)
                if j != i and f >= min_support:
                    if mode == COSINE:
                        den = acc[j, 2] * acc[j, 3]
                        if den > 0:
                            s = acc[j, 1] / np.sqrt(den)
                    elif mode == PEARSON:
                        vi = f * acc[j, 2] - acc[j, 4] * acc[j, 4]
                        vj = f * acc[j, 3] - acc[j, 5] * acc[j, 5]
                        if vi > 0 and vj > 0:
                            s = (f * acc[j, 1] - acc[j, 4] * acc[j, 5]) / np.sqrt(vi * vj)
                    else:
                        s = acc[j, 1] * scale[i] * scale[j]
                    if shrinkage > 0:
                        s *= f / (f + shrinkage)
                for f_ in range(width):
                    acc[j, f_] = 0
                if s > 0:
                    if not use_heap:
                        cand_j[m] = j
                        cand_s[m] = s
                        m += 1
                    else:
                        size = _heap_offer(hs, hc, size, max_keep, s, j)
            if use_heap:
                out_len[i] = size
                _heap_drain(hs, hc, size, out_sim[i], out_idx[i])
                continue
            kept = _select_top(cand_j, cand_s, scratch, m, max_keep)
            # order the kept ones: similarity descending, code ascending on ties, in one
            # integer sort (the bits of a positive float32 order like the float)
            bits = cand_s[:kept].view(np.int32)
            keys = np.empty(kept, dtype=np.int64)
            for r in range(kept):
                keys[r] = (np.int64(0x7F800000 - bits[r]) << 32) | np.int64(cand_j[r])
            keys.sort()
            sorted_bits = np.empty(kept, dtype=np.int32)
            for r in range(kept):
                out_idx[i, r] = np.int32(keys[r] & 0xFFFFFFFF)
                sorted_bits[r] = np.int32(0x7F800000 - (keys[r] >> 32))
            out_sim[i, :kept] = sorted_bits.view(np.float32)
            out_len[i] = kept


@njit(inline="always")
def _select_top(cand_j, cand_s, scratch, m, k):
    """Move the k largest (ties to the lower code) of cand_*[:m] to the front; return how many."""
    if m <= k:
        return m
    thr = _kth_largest(cand_s, scratch, m, k)
    w = 0
    for r in range(m):  # strictly above the threshold first
        if cand_s[r] > thr:
            cand_j[w], cand_j[r] = cand_j[r], cand_j[w]
            cand_s[w], cand_s[r] = cand_s[r], cand_s[w]
            w += 1
    # then the tied values, lowest codes first
    n_tied = 0
    for r in range(w, m):
        if cand_s[r] == thr:
            cand_j[w + n_tied], cand_j[r] = cand_j[r], cand_j[w + n_tied]
            cand_s[w + n_tied], cand_s[r] = cand_s[r], cand_s[w + n_tied]
            n_tied += 1
    if w + n_tied > k:
        tied = np.sort(cand_j[w:w + n_tied])
        for r in range(n_tied):
            cand_j[w + r] = tied[r]
    return k


@njit(parallel=True, fastmath=True, cache=True)
def neighborhood_predict(order, bounds, targets, contexts, offsets, s_indptr, s_indices, s_data,
                         c_indptr, c_indices, c_data, n_entities, max_row, k, min_k, den_reg, n_chunks,
                         out, out_count):
    """Neighbourhood estimate for each (target, context) pair.

    For item-item: target = item i, context = user u, ``s_*`` the similarity
    rows (item i's stored neighbours j) and ``c_*`` the CSR of residuals e_uj
    (users x items, indices sorted). The ``k`` most similar neighbours of i
    that u rated (ties to the lower code) give ``offset + Σ s·e / (Σ s + den_reg)``;
    with fewer than ``min_k`` of them the estimate is ``offset`` alone.
    ``out_count`` receives how many neighbours were used.

    Pairs are processed grouped by target (``order`` sorts them, ``bounds`` are
    the group starts): a target's similarity row is scattered once into a dense
    per-thread array, then each pair costs one pass over the context's row.
    """
    n_groups = len(bounds) - 1
    chunk = (n_groups + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        g0 = c * chunk
        g1 = min(n_groups, g0 + chunk)
        if g0 >= g1:
            continue
        dense = np.zeros(n_entities, dtype=np.float32)
        buf_s = np.empty(max_row, dtype=np.float32)
        buf_e = np.empty(max_row, dtype=np.float32)
        scratch = np.empty(max_row, dtype=np.float32)
        for g in range(g0, g1):
            t = targets[order[bounds[g]]]
            for q in range(s_indptr[t], s_indptr[t + 1]):
                dense[s_indices[q]] = s_data[q]
            for pp in range(bounds[g], bounds[g + 1]):
                p = order[pp]
                cx = contexts[p]
                m = 0
                for r in range(c_indptr[cx], c_indptr[cx + 1]):
                    s = dense[c_indices[r]]
                    if s > 0:
                        buf_s[m] = s
                        buf_e[m] = c_data[r]
                        m += 1
                num = np.float32(0.0)
                den = np.float32(0.0)
                if m <= k:
                    for r in range(m):
                        num += buf_s[r] * buf_e[r]
                        den += buf_s[r]
                    cnt = m
                else:
                    thr = _kth_largest(buf_s, scratch, m, k)
                    n_above = 0
                    for r in range(m):
                        if buf_s[r] > thr:
                            n_above += 1
                    need_tied = k - n_above
                    for r in range(m):  # contexts' rows are sorted: ties go to the lower code
                        s = buf_s[r]
                        if s > thr or (s == thr and need_tied > 0):
                            if s == thr:
                                need_tied -= 1
                            num += s * buf_e[r]
                            den += s
                    cnt = k
                est = offsets[p]
                if cnt >= min_k and cnt > 0 and den > 0:
                    est += num / (den + den_reg)
                out[p] = est
                out_count[p] = cnt
            for q in range(s_indptr[t], s_indptr[t + 1]):
                dense[s_indices[q]] = 0


def predict_pairs(targets, contexts, offsets, similarity, context, k, min_k, den_reg=0.0):
    """Run :func:`neighborhood_predict` on CSR ``similarity`` and ``context``; (estimates, counts)."""
    targets = np.ascontiguousarray(targets, dtype=np.int32)
    contexts = np.ascontiguousarray(contexts, dtype=np.int32)
    n = len(targets)
    out = np.empty(n, dtype=np.float32)
    count = np.zeros(n, dtype=np.int32)
    if n == 0:
        return out, count
    order = np.argsort(targets, kind="stable").astype(np.int64)
    st = targets[order]
    bounds = np.r_[0, np.flatnonzero(st[1:] != st[:-1]) + 1, n].astype(np.int64)
    max_row = int(np.diff(context.indptr).max(initial=0)) + 1
    n_chunks = int(min(len(bounds) - 1, 256))
    neighborhood_predict(order, bounds, targets, contexts, np.ascontiguousarray(offsets, dtype=np.float32),
                         similarity.indptr.astype(np.int64), similarity.indices.astype(np.int32),
                         similarity.data.astype(np.float32, copy=False),
                         context.indptr.astype(np.int64), context.indices.astype(np.int32),
                         context.data.astype(np.float32, copy=False), similarity.shape[1], max_row,
                         int(k), int(min_k), np.float32(den_reg), n_chunks, out, count)
    return out, count


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
