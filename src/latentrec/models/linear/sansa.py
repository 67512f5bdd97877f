"""SANSA: a sparse approximate EASE for catalogues too large for dense item x item matrices.

Spisak, Bartyzal & Tomas, "Scalable Approximate NonSymmetric Autoencoder for
Collaborative Filtering" (RecSys 2023). EASE (Steck 2019) needs
P = (X^T X + lambda I)^-1 and sets B = I - P dMat(1 / diag(P)); SANSA replaces the
exact inverse by an incomplete L D L^T factorisation of the regularised Gram matrix
in a fill-reducing order, a sparse approximate inverse of L, and a sparse B. This
implementation uses NumPy, SciPy and numba only (no CHOLMOD); its steps, each an
approximation (docs/implicit.md has the equations):

1. Scaled, sparsified Gram. With S = dMat(1 / sqrt(diag(G) + lambda)), G = X^T X,
   the unit-diagonal A = S (G + lambda I) S is built in blocks of ``block_size``
   items (a dense block x n_items array at a time, never n_items^2), keeping the
   ``gram_neighbors`` largest off-diagonal entries of each item's column (union of
   both sides, so A stays symmetric). Every dropped entry a_ij >= 0 is added to
   a_ii and a_jj (diagonal compensation, Ajiz & Jennings 1984): the sparse matrix
   minus the exact one is a sum of a_ij (e_i - e_j)(e_i - e_j)^T, so A stays
   positive definite however few entries are kept.
2. Incomplete L D L^T of A in ascending-degree order (a static minimum-degree
   ordering, standing in for SANSA's COLAMD): left-looking, each column of L keeps
   its ``gram_neighbors`` largest entries above ``drop_tolerance``; dropped entries
   are compensated on the diagonal the same way, so no pivot breaks down.
3. Z = D^-1/2 L^-1 column by column by forward substitution with the same dropping
   (SANSA computes its sparse inverse of L by minimal-residual iterations), so that
   P ~ S Z^T Z S; then EASE's normalisation B_ij = -P_ij / P_jj, B_jj = 0, computed
   in blocks of columns of which each keeps its ``n_neighbors`` largest |B_ij|.
   SANSA keeps B factored (Z^T and Z dMat(-1/diag P)); here B is materialised sparse
   so scoring is the shared x_u B of :class:`ItemWeightsModel`.

Memory is O(n_items (gram_neighbors + n_neighbors) + block_size n_items) instead of
EASE's 20 n_items^2 bytes; it is estimated before fitting (:func:`sansa_memory_gb`)
and ``max_memory_gb`` refuses a fit that would exceed it.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from ..._util import kernel_threads
from ...errors import ModelError
from ..base import Interval
from ..ials._common import ItemWeightsModel, to_training
from ..kernels.topn import topn_masked


@njit(parallel=True, nogil=True, cache=True)
def _gram_rows(c_ptr, c_users, c_vals, r_ptr, r_items, r_vals, start, stop, out):  # pragma: no cover - numba
    """out[j - start, i] = sum_u x_uj x_ui for j in [start, stop): rows of X^T X from X's CSC and CSR."""
    for jj in prange(stop - start):
        j = start + jj
        row = out[jj]
        row[:] = 0.0
        for p in range(c_ptr[j], c_ptr[j + 1]):
            u = c_users[p]
            w = c_vals[p]
            for q in range(r_ptr[u], r_ptr[u + 1]):
                row[r_items[q]] += w * r_vals[q]


@njit(nogil=True, cache=True)
def _ldl_incomplete(a_ptr, a_rows, a_vals, n, p, tol):  # pragma: no cover - numba
    """Left-looking incomplete L D L^T of the symmetric positive definite CSC matrix A (rows >= j of column j
    are read): column j of L keeps its p largest |entries| of at least tol sqrt(D_j); every dropped entry
    s_ij of the Schur complement is added to D_j and to the future pivot i (Ajiz & Jennings), so pivots
    stay positive. Returns (L rows (n, p), L values (n, p), counts, D)."""
    l_rows = np.full((n, p), -1, dtype=np.int32)
    l_vals = np.zeros((n, p), dtype=np.float64)
    l_cnt = np.zeros(n, dtype=np.int32)
    d = np.zeros(n, dtype=np.float64)
    extra = np.zeros(n, dtype=np.float64)
    head = np.full(n, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    pos = np.zeros(n, dtype=np.int32)
    w = np.zeros(n, dtype=np.float64)
    seen = np.zeros(n, dtype=np.bool_)
    pattern = np.empty(n, dtype=np.int64)
    for j in range(n):
        m = 0
        for q in range(a_ptr[j], a_ptr[j + 1]):
            i = a_rows[q]
            if i >= j:
                if not seen[i]:
                    seen[i] = True
                    pattern[m] = i
                    m += 1
                w[i] += a_vals[q]
        if not seen[j]:
            seen[j] = True
            pattern[m] = j
            m += 1
        w[j] += extra[j]
        k = head[j]
        head[j] = -1
        while k != -1:
            k_next = nxt[k]
            pk = pos[k]
            f = l_vals[k, pk] * d[k]
            for t in range(pk, l_cnt[k]):
                i = l_rows[k, t]
                if not seen[i]:
                    seen[i] = True
                    pattern[m] = i
                    m += 1
                w[i] -= f * l_vals[k, t]
            pk += 1
            pos[k] = pk
            if pk < l_cnt[k]:
                r = l_rows[k, pk]
                nxt[k] = head[r]
                head[r] = k
            k = k_next
        # candidates: the off-diagonal pattern
        c = 0
        for t in range(m):
            if pattern[t] != j:
                pattern[c] = pattern[t]
                c += 1
        pivot = w[j]
        mags = np.empty(c, dtype=np.float64)
        for t in range(c):
            mags[t] = abs(w[pattern[t]])
        order = np.argsort(-mags, kind="mergesort")
        floor = tol * np.sqrt(max(pivot, 0.0))
        kept = 0
        for t in range(c):
            i = pattern[order[t]]
            v = mags[order[t]]
            if kept < p and v >= floor and v > 0.0:
                kept += 1
            else:
                pivot += v
                extra[i] += v
        if pivot <= 0.0:
            pivot = 1e-12  # not reached in exact arithmetic (A positive definite, compensated drops)
        d[j] = pivot
        rows = np.empty(kept, dtype=np.int64)
        kk = 0
        for t in range(c):
            i = pattern[order[t]]
            v = mags[order[t]]
            if kk < kept and v >= floor and v > 0.0:
                rows[kk] = i
                kk += 1
        rows.sort()
        for t in range(kept):
            l_rows[j, t] = rows[t]
            l_vals[j, t] = w[rows[t]] / pivot
        l_cnt[j] = kept
        if kept > 0:
            pos[j] = 0
            r = l_rows[j, 0]
            nxt[j] = head[r]
            head[r] = j
        for t in range(c):
            w[pattern[t]] = 0.0
            seen[pattern[t]] = False
        w[j] = 0.0
        seen[j] = False
    return l_rows, l_vals, l_cnt, d


@njit(parallel=True, nogil=True, cache=True)
def _inverse_columns(l_rows, l_vals, l_cnt, d, m, tol, n_chunks):  # pragma: no cover - numba
    """Columns of Z = D^-1/2 L^-1 (L unit lower triangular) by forward substitution on e_j, dropping
    entries with |Z_ij| < tol |Z_jj| (not propagated) and keeping the m largest |Z_ij| of each column."""
    n = len(d)
    z_rows = np.full((n, m), -1, dtype=np.int32)
    z_vals = np.zeros((n, m), dtype=np.float64)
    z_cnt = np.zeros(n, dtype=np.int32)
    rs = 1.0 / np.sqrt(d)
    for chunk in prange(n_chunks):
        w = np.zeros(n, dtype=np.float64)
        hit_rows = np.empty(n, dtype=np.int64)
        hit_vals = np.empty(n, dtype=np.float64)
        for j in range(chunk, n, n_chunks):
            w[j] = 1.0
            h = 0
            top = j
            for i in range(j, n):
                v = w[i]
                if v == 0.0:
                    if i > top:
                        break
                    continue
                w[i] = 0.0
                z = v * rs[i]
                if abs(z) < tol * rs[j]:
                    continue
                hit_rows[h] = i
                hit_vals[h] = z
                h += 1
                for t in range(l_cnt[i]):
                    r = l_rows[i, t]
                    w[r] -= v * l_vals[i, t]
                    if r > top:
                        top = r
            if h > m:
                order = np.argsort(-np.abs(hit_vals[:h]), kind="mergesort")[:m]
                order.sort()
                for t in range(m):
                    z_rows[j, t] = hit_rows[order[t]]
                    z_vals[j, t] = hit_vals[order[t]]
                z_cnt[j] = m
            else:
                for t in range(h):
                    z_rows[j, t] = hit_rows[t]
                    z_vals[j, t] = hit_vals[t]
                z_cnt[j] = h
    return z_rows, z_vals, z_cnt


def sansa_memory_gb(n_items: int, gram_neighbors: int = 100, n_neighbors: int = 200, block_size: int = 512,
                    n_threads: int = 2) -> float:
    """Estimated peak memory (GiB) of a SANSA fit on ``n_items`` items besides the training data and its
    CSC copy: the sparse Gram A (up to 2 ``gram_neighbors`` + 1 entries per item; selection, union and the
    reordered copy), the factor L and the inverse Z (``gram_neighbors`` int32 + float64 per item each),
    the dense float32 block x n_items arrays (two) and the triplets of B (two copies)."""
    n = float(n_items)
    k = min(gram_neighbors, max(n_items - 1, 1))
    a_nnz = min(n * (2 * k + 1), n * n)
    gram = 4 * a_nnz * 12
    factors = 2 * n * k * 12 + 3 * n_threads * n * 8
    blocks = 2 * min(block_size, n_items) * n * 4
    weights = 2 * n * min(n_neighbors, max(n_items - 1, 1)) * 16
    return (gram + factors + blocks + weights) / 2**30


class SANSA(ItemWeightsModel):
    """Sparse approximate EASE (SANSA-style): sparsified Gram, incomplete factorisation, sparse B.

    Parameters
    ----------
    regularization : float, default 250
        lambda added to the diagonal of the item Gram matrix X^T X (EASE's lambda).
    gram_neighbors : int, default 100
        Off-diagonal entries of the scaled Gram matrix kept per item (the largest;
        the dropped ones move to the diagonal, which keeps it positive definite).
    n_neighbors : int, default 200
        Entries kept per column of B (the largest |B_ij|: the items that predict j most).
        Also the entries kept per column of the factor L and of its inverse Z.
    drop_tolerance : float, default 1e-4
        Entries of L below ``drop_tolerance`` sqrt(D_j), and of Z below
        ``drop_tolerance`` Z_jj, are dropped (L's to the diagonal).
    block_size : int, default 512
        Items whose Gram rows and B columns are computed at once (dense
        block x n_items float32 arrays).
    max_memory_gb : float, default 16
        Refuse to fit (:class:`ModelError`) when :func:`sansa_memory_gb` exceeds it.
    n_threads : int, default 0
        Threads of the Gram kernel (0: all numba may use).

    The defaults were chosen on the validation splits carved from the training parts
    of ml-100k and ml-latest-small (docs/implicit.md, "SANSA").

    Attributes
    ----------
    item_weights_ : float32 CSR (n_items, n_items)
        B, at most ``n_neighbors`` entries per column, zero diagonal.
    fit_info_ : dict
        Sizes of the intermediate matrices (entries per item of A, of the factors and of B) and the
        seconds of each step (gram_s, factor_s, inverse_s).
    """

    _persisted_sparse = {"item_weights_": ("items", "items")}
    _persisted_state = {"fit_info_": (lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, (int, float)) for k, x in v.items()), "a dict of numbers")}
    _constraints = {
        "regularization": Interval(float, 0, None, closed="neither"),
        "gram_neighbors": Interval(int, 1, None),
        "n_neighbors": Interval(int, 1, None),
        "drop_tolerance": Interval(float, 0, 1),
        "block_size": Interval(int, 1, None),
        "max_memory_gb": Interval(float, 0, None, closed="neither"),
        "n_threads": Interval(int, 0, None),
    }

    def __init__(self, *, regularization: float = 250.0, gram_neighbors: int = 100, n_neighbors: int = 200,
                 drop_tolerance: float = 1e-4, block_size: int = 512,
                 max_memory_gb: float = 16.0, n_threads: int = 0):
        self.regularization = regularization
        self.gram_neighbors = gram_neighbors
        self.n_neighbors = n_neighbors
        self.drop_tolerance = drop_tolerance
        self.block_size = block_size
        self.max_memory_gb = max_memory_gb
        self.n_threads = n_threads

    # ------------------------------------------------------------ fit
    def _fit(self, data, eval_data):
        n = data.n_items
        from ..._util import resolve_threads

        need = sansa_memory_gb(n, self.gram_neighbors, self.n_neighbors, self.block_size,
                               resolve_threads(self.n_threads))
        if need > self.max_memory_gb:
            raise ModelError(f"SANSA would need about {need:.1f} GiB for {n:,} items, more than max_memory_gb="
                             f"{self.max_memory_gb:g}; lower gram_neighbors, n_neighbors or "
                             f"block_size")
        X = to_training(data).astype(np.float32)
        X.sort_indices()
        t0 = time.perf_counter()
        a, s = self._scaled_gram(X)
        t1 = time.perf_counter()
        factors = self._factorize(a)
        t2 = time.perf_counter()
        self.item_weights_, z_entries = self._weights(factors, s, n)
        self.fit_info_ = {"gram_entries_per_item": a.nnz / max(n, 1),
                          "factor_entries_per_item": float(factors[3].mean()) + 1.0,
                          "inverse_entries_per_item": z_entries,
                          "weight_entries_per_item": self.item_weights_.nnz / max(n, 1),
                          "gram_s": t1 - t0, "factor_s": t2 - t1, "inverse_s": time.perf_counter() - t2}

    def _scaled_gram(self, X: sp.csr_matrix) -> tuple[sp.csc_matrix, np.ndarray]:
        """A = S (G + lambda I) S sparsified to ``gram_neighbors`` per item with diagonal compensation;
        returns (A as float64 CSC, the scale s = diag(S))."""
        n = X.shape[1]
        lam = float(self.regularization)
        g = np.asarray(X.multiply(X).sum(axis=0), dtype=np.float64).ravel()
        s = 1.0 / np.sqrt(g + lam)
        # full off-diagonal row sums of S G S: S X^T X s - s^2 g (nonnegative weights: all entries >= 0)
        full = s * np.asarray(X.T @ (X @ s), dtype=np.float64).ravel() - s * s * g
        if n < 2:
            return sp.csc_matrix(np.ones((n, n))), s
        k = int(min(self.gram_neighbors, n - 1))
        Xc = X.tocsc()
        Xc.sort_indices()
        s32 = s.astype(np.float32)
        b = int(min(self.block_size, n))
        out = np.empty((b, n), dtype=np.float32)
        rows, cols, vals = [], [], []
        with kernel_threads(self.n_threads):
            for start in range(0, n, b):
                stop = min(start + b, n)
                blk = out[: stop - start]
                _gram_rows(Xc.indptr, Xc.indices, Xc.data, X.indptr, X.indices, X.data, start, stop, blk)
                blk *= s32[None, :]
                blk *= s32[start:stop, None]
                blk[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never its own neighbour
                c, v = topn_masked(blk, k)
                keep = (c >= 0) & (v > 0)
                rows.append(np.repeat(np.arange(start, stop, dtype=np.int32), k).reshape(-1, k)[keep])
                cols.append(c[keep].astype(np.int32))
                vals.append(v[keep])
        t = sp.csr_matrix((np.concatenate(vals).astype(np.float64), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n, n))
        del rows, cols, vals, out
        off = t.maximum(t.T).tocsc()  # union of both items' choices (G is symmetric)
        del t
        kept = np.asarray(off.sum(axis=0)).ravel()
        comp = np.maximum(full - kept, 0.0)  # dropped mass of each item's column
        a = (off + sp.diags(1.0 + comp, format="csc")).tocsc()
        a.sort_indices()
        return a, s

    def _factorize(self, a: sp.csc_matrix):
        """Incomplete L D L^T of A in ascending-degree order; returns (order, L rows, L values, counts, D)."""
        n = a.shape[0]
        order = np.argsort(np.diff(a.indptr), kind="stable")  # static minimum degree: sparse items first
        ap = a[order][:, order].tocsc()
        ap.sort_indices()
        k = int(min(self.gram_neighbors, max(n - 1, 1)))
        l_rows, l_vals, l_cnt, d = _ldl_incomplete(ap.indptr.astype(np.int64), ap.indices.astype(np.int64),
                                                   ap.data.astype(np.float64), n, k, float(self.drop_tolerance))
        return order, l_rows, l_vals, l_cnt, d

    def _weights(self, factors, s: np.ndarray, n: int) -> sp.csr_matrix:
        """Z = D^-1/2 L^-1 (sparse, by columns), P ~ S_o Z^T Z S_o in blocks of columns, EASE's zero-diagonal
        normalisation, the n_neighbors largest |B_ij| per column; returns B as float32 CSR in item codes."""
        order, l_rows, l_vals, l_cnt, d = factors
        if n < 2:
            return sp.csr_matrix((n, n), dtype=np.float32), float(n)
        m = int(min(self.gram_neighbors, n))
        with kernel_threads(self.n_threads) as threads:
            z_rows, z_vals, z_cnt = _inverse_columns(l_rows, l_vals, l_cnt, d, m, float(self.drop_tolerance),
                                                     threads)
        cols = np.repeat(np.arange(n, dtype=np.int32), m).reshape(n, m)
        keep = z_rows >= 0
        # column b of Z belongs to item order[b]: scale it by that item's s (P = S A^-1 S)
        z = sp.csc_matrix(((z_vals[keep] * s[order][cols[keep]]).astype(np.float32), (z_rows[keep], cols[keep])),
                          shape=(n, n))
        del z_rows, z_vals, cols, keep
        z.sort_indices()
        zr = z.tocsr()
        zr.sort_indices()
        diag = np.asarray(z.multiply(z).sum(axis=0), dtype=np.float64).ravel()  # diag(P), > 0 (Z_bb != 0)
        k = int(min(self.n_neighbors, n - 1))
        b = int(min(self.block_size, n))
        out = np.empty((b, n), dtype=np.float32)
        rows, cols_, vals = [], [], []
        with kernel_threads(self.n_threads):
            for start in range(0, n, b):
                stop = min(start + b, n)
                mm = stop - start
                blk = out[:mm]
                # row jj of blk: column start + jj of Z^T Z (in the factor's order)
                _gram_rows(z.indptr, z.indices, z.data, zr.indptr, zr.indices, zr.data, start, stop, blk)
                blk /= -diag[start:stop, None].astype(np.float32)
                blk[np.arange(mm), np.arange(start, stop)] = 0.0
                mag = np.abs(blk)
                mag[np.arange(mm), np.arange(start, stop)] = -np.inf
                c, _ = topn_masked(mag, k)
                del mag
                ok = c >= 0
                jj = np.repeat(np.arange(start, stop, dtype=np.int64), k).reshape(-1, k)[ok]
                ii = c[ok].astype(np.int64)
                vals.append(blk[jj - start, ii])
                rows.append(order[ii])
                cols_.append(order[jj])
        w = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols_))), shape=(n, n),
                          dtype=np.float32)
        w.eliminate_zeros()
        w.sort_indices()
        return w, float(z.nnz) / n

    def _item_similarity_block(self, i):
        # like EASE: B_ij, how much having i predicts j
        return np.asarray(self.item_weights_[i].todense(), dtype=np.float32)
