"""Top-n selection over dense score blocks, with seen-item and item-subset masks.

One pass per row keeping a k-sized min-heap (no argpartition over the whole
row), rows in parallel. Ties break towards the lower item code, so results are
deterministic. Excluded items (seen, outside the allowed subset, or scored
-inf/NaN) never appear; rows with fewer than k candidates are padded with
code -1 and score -inf.

The kernels never write through an index they have not checked: a seen-items
row or column outside the score block is skipped (loaded models are validated
against their vocabularies in :mod:`latentrec.persist`; this is the second line).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# no fastmath here: the kernel relies on -inf and NaN comparisons


@njit(inline="always")
def _less(s_a, c_a, s_b, c_b):
    # heap order: smaller score first; at equal score the larger code counts as smaller
    return s_a < s_b or (s_a == s_b and c_a > c_b)


@njit(inline="always")
def _sift_down(hs, hc, size, pos):
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        smallest = left
        right = left + 1
        if right < size and _less(hs[right], hc[right], hs[left], hc[left]):
            smallest = right
        if _less(hs[smallest], hc[smallest], hs[pos], hc[pos]):
            hs[pos], hs[smallest] = hs[smallest], hs[pos]
            hc[pos], hc[smallest] = hc[smallest], hc[pos]
            pos = smallest
        else:
            return


@njit(inline="always")
def _sift_up(hs, hc, pos):
    while pos > 0:
        parent = (pos - 1) // 2
        if _less(hs[pos], hc[pos], hs[parent], hc[parent]):
            hs[pos], hs[parent] = hs[parent], hs[pos]
            hc[pos], hc[parent] = hc[parent], hc[pos]
            pos = parent
        else:
            return


@njit(inline="always")
def _heap_offer(hs, hc, size, k, v, j):
    """Offer (v, j) to the min-heap ``hs``/``hc`` of the ``k`` best so far; returns its new size."""
    if size < k:
        hs[size] = v
        hc[size] = j
        _sift_up(hs, hc, size)
        return size + 1
    if _less(hs[0], hc[0], v, j):
        hs[0] = v
        hc[0] = j
        _sift_down(hs, hc, size, 0)
    return size


@njit(inline="always")
def _heap_drain(hs, hc, size, out_s, out_c):
    """Empty the heap into ``out_s``/``out_c[:size]``, best first (pops ascending, writes from the back)."""
    for pos in range(size - 1, -1, -1):
        out_s[pos] = hs[0]
        out_c[pos] = hc[0]
        last = size - 1
        hs[0] = hs[last]
        hc[0] = hc[last]
        size = last
        _sift_down(hs, hc, size, 0)


@njit(inline="always")
def _row_topk(s, k, mask, use_mask, out_c, out_s):
    """One pass over a score row keeping a k-sized min-heap; results written sorted."""
    hs = np.empty(k, dtype=np.float32)
    hc = np.empty(k, dtype=np.int32)
    size = 0
    for j in range(s.shape[0]):
        v = s[j]
        if not (v > -np.inf):  # -inf (excluded) or NaN
            continue
        if use_mask and not mask[j]:
            continue
        size = _heap_offer(hs, hc, size, k, v, j)
    _heap_drain(hs, hc, size, out_s, out_c)


@njit(inline="always")
def _exclude(s, u, indptr, indices):
    """Set the scores of row ``u``'s seen items to -inf; indices outside the row (a corrupted
    matrix) are skipped, never written through."""
    if u < 0 or u >= indptr.shape[0] - 1:
        return
    n = s.shape[0]
    lo = max(indptr[u], 0)
    hi = min(indptr[u + 1], indices.shape[0])
    for p in range(lo, hi):
        j = indices[p]
        if j >= 0 and j < n:
            s[j] = -np.inf


@njit(parallel=True, cache=True)
def _topn_kernel(scores, k, rows, indptr, indices, use_seen, mask, use_mask, out_c, out_s):
    b, n = scores.shape
    for r in prange(b):
        s = scores[r]
        if use_seen:
            _exclude(s, rows[r], indptr, indices)
        _row_topk(s, k, mask, use_mask, out_c[r], out_s[r])


@njit(parallel=True, cache=True)
def _topn_factors_kernel(U, VT, item_add, use_item_add, row_add, use_row_add, k, rows, indptr, indices,
                         use_seen, mask, use_mask, block, out_c, out_s):
    b = U.shape[0]
    n_blocks = (b + block - 1) // block
    for blk in prange(n_blocks):
        lo = blk * block
        hi = min(b, lo + block)
        S = np.dot(U[lo:hi], VT)  # this thread's block of scores (BLAS, one thread)
        for r in range(hi - lo):
            s = S[r]
            if use_item_add:
                for j in range(s.shape[0]):
                    s[j] += item_add[j]
            if use_seen:
                _exclude(s, rows[lo + r], indptr, indices)
            _row_topk(s, k, mask, use_mask, out_c[lo + r], out_s[lo + r])
            if use_row_add:
                for pos in range(k):
                    out_s[lo + r, pos] += row_add[lo + r]


def topn_masked(scores, k, rows=None, seen=None, item_mask=None):
    """Top-``k`` codes and scores of each row of ``scores`` (modified in place when masking).

    Parameters
    ----------
    scores : float32 array (b, n_items), C-contiguous
    k : int
    rows : int32 array (b,), the row of ``seen`` for each score row (with ``seen``)
    seen : CSR matrix (n_users, n_items) or None; its items are excluded per row
    item_mask : bool array (n_items,) or None; only True items are candidates
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    b = scores.shape[0]
    out_c = np.full((b, k), -1, dtype=np.int32)
    out_s = np.full((b, k), -np.inf, dtype=np.float32)
    if k <= 0 or b == 0:
        return out_c, out_s
    empty_i = np.zeros(1, dtype=np.int32)
    if seen is not None:
        indptr = seen.indptr.astype(np.int64, copy=False)
        indices = seen.indices.astype(np.int32, copy=False)
        rows = np.asarray(rows, dtype=np.int64)
    else:
        indptr, indices, rows = np.zeros(1, np.int64), empty_i, np.zeros(1, np.int64)
    mask = _mask(item_mask, scores.shape[1])
    _topn_kernel(scores, int(k), rows, indptr, indices, seen is not None, mask, item_mask is not None,
                 out_c, out_s)
    return out_c, out_s


def _mask(item_mask, n_items: int) -> np.ndarray:
    if item_mask is None:
        return np.zeros(1, np.bool_)
    mask = np.asarray(item_mask, dtype=np.bool_)
    if mask.shape != (n_items,):
        raise ValueError(f"item_mask has shape {mask.shape}; expected ({n_items},)")
    return mask


def _seen_args(rows, seen):
    if seen is not None:
        return (np.asarray(rows, dtype=np.int64), seen.indptr.astype(np.int64, copy=False),
                seen.indices.astype(np.int32, copy=False))
    return np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, dtype=np.int32)


def topn_factors(user_vectors, item_vectors, k, rows=None, seen=None, item_mask=None, *, item_add=None,
                 row_add=None, block=128):
    """Top-``k`` of ``user_vectors @ item_vectors.T (+ item_add + row_add)`` without the full matrix.

    Each thread scores its own block of ``block`` users with one BLAS product
    (run it inside :func:`latentrec._util.kernel_threads` so BLAS uses one
    thread) and keeps a one-pass top-k per row, so the extra memory is
    ``n_threads * block * n_items`` floats whatever the number of users.

    Parameters
    ----------
    user_vectors : float32 array (b, f)
    item_vectors : float32 array (n_items, f)
    k : int
    rows, seen, item_mask : as in :func:`topn_masked`
    item_add : float32 array (n_items,), optional; added to every row's scores
    row_add : float32 array (b,), optional; added to a row's scores (does not change the order)
    block : int
        Users scored at once per thread.
    """
    U = np.ascontiguousarray(user_vectors, dtype=np.float32)
    V = np.ascontiguousarray(item_vectors, dtype=np.float32)
    b = U.shape[0]
    out_c = np.full((b, k), -1, dtype=np.int32)
    out_s = np.full((b, k), -np.inf, dtype=np.float32)
    if k <= 0 or b == 0:
        return out_c, out_s
    rows, indptr, indices = _seen_args(rows, seen)
    mask = _mask(item_mask, V.shape[0])
    if item_add is not None and len(item_add) != V.shape[0]:
        raise ValueError(f"item_add has {len(item_add)} values for {V.shape[0]} items")
    if U.shape[1] != V.shape[1]:
        raise ValueError(f"user vectors have {U.shape[1]} columns, item vectors {V.shape[1]}")
    ia = np.ascontiguousarray(item_add, dtype=np.float32) if item_add is not None else np.zeros(1, np.float32)
    ra = np.ascontiguousarray(row_add, dtype=np.float32) if row_add is not None else np.zeros(1, np.float32)
    _topn_factors_kernel(U, V.T, ia, item_add is not None, ra, row_add is not None, int(k), rows, indptr,
                         indices, seen is not None, mask, item_mask is not None, int(max(1, block)),
                         out_c, out_s)
    return out_c, out_s
