"""SANSA: a sparse approximate EASE for catalogues too large for dense item x item matrices.

Spisak, Bartyzal & Tomas, "Scalable Approximate NonSymmetric Autoencoder for
Collaborative Filtering" (RecSys 2023). EASE (Steck 2019) needs
P = (X^T X + lambda I)^-1 and sets B = I - P dMat(1 / diag(P)); SANSA replaces the
exact inverse by a sparse factorisation of the regularised Gram matrix in a
fill-reducing order, an approximate inverse of that factorisation and a sparse B.
This implementation uses NumPy, SciPy and numba only (no CHOLMOD); its steps, each
an approximation (docs/implicit.md has the equations):

1. Scaled, sparsified Gram. With S = dMat(1 / sqrt(diag(G) + lambda)), G = X^T X,
   the unit-diagonal A = S (G + lambda I) S is built in blocks of ``block_size``
   items (a dense block x n_items array at a time, never n_items^2), keeping the
   ``gram_neighbors`` largest off-diagonal entries of each item's column (union of
   both sides, so A stays symmetric). Every dropped entry a_ij >= 0 is added to
   a_ii and a_jj (the diagonal compensation of Ajiz & Jennings 1984): the sparse
   matrix minus the exact one is a sum of a_ij (e_i - e_j)(e_i - e_j)^T, so A stays
   positive definite, however few entries are kept.
2. Incomplete factorisation Pr A Pc ~ L U by SuperLU's threshold ILU (SciPy
   ``spilu``, minimum-degree ordering of A^T + A, ``drop_tolerance``,
   ``fill_factor``), standing in for SANSA's incomplete LDL^T with COLAMD.
3. Columns of P ~ S (L U)^-1 S by triangular solves on blocks of unit vectors, then
   EASE's normalisation B_ij = -P_ij / P_jj, B_jj = 0, and each column of B keeps
   its ``n_neighbors`` largest |B_ij| (SANSA keeps a factored sparse inverse and
   prunes globally; here B is materialised sparse so scoring is the shared
   x_u B of :class:`ItemWeightsModel`).

Peak memory is O(n_items (gram_neighbors fill_factor + n_neighbors) + block_size
n_items) instead of EASE's 20 n_items^2 bytes; it is estimated before fitting
(:func:`sansa_memory_gb`) and ``max_memory_gb`` refuses a fit that would exceed it.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
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


def sansa_memory_gb(n_items: int, gram_neighbors: int = 100, fill_factor: float = 10.0, n_neighbors: int = 200,
                    block_size: int = 512) -> float:
    """Estimated peak memory (GiB) of a SANSA fit on ``n_items`` items, besides the training data: the
    symmetrised sparse Gram (up to 2 ``gram_neighbors`` entries per item, built with a copy), the
    incomplete factors (at most ``fill_factor`` times A's entries, SuperLU's bound), the float64
    solve blocks (block_size x n_items, three of them) and the sparse B being assembled (two copies)."""
    n = float(n_items)
    k = min(gram_neighbors, max(n_items - 1, 1))
    a_nnz = min(n * (2 * k + 1), n * n)
    gram = 3 * a_nnz * 12  # COO triplets of the selection, its transpose-union, CSC
    factors = min(fill_factor * a_nnz, n * n) * 12
    blocks = 3 * min(block_size, n_items) * n * 8
    weights = 2 * n * min(n_neighbors, max(n_items - 1, 1)) * 12
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
    drop_tolerance : float, default 1e-4
        SuperLU ILU drop tolerance (entries of the factors below it, relative to
        their column, are dropped).
    fill_factor : float, default 10
        Upper bound on the incomplete factors' entries, as a multiple of A's.
    block_size : int, default 512
        Items whose Gram rows and inverse columns are computed at once (dense
        block x n_items float64 arrays).
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
        "fill_factor": Interval(float, 1, None),
        "block_size": Interval(int, 1, None),
        "max_memory_gb": Interval(float, 0, None, closed="neither"),
        "n_threads": Interval(int, 0, None),
    }

    def __init__(self, *, regularization: float = 250.0, gram_neighbors: int = 100, n_neighbors: int = 200,
                 drop_tolerance: float = 1e-4, fill_factor: float = 10.0, block_size: int = 512,
                 max_memory_gb: float = 16.0, n_threads: int = 0):
        self.regularization = regularization
        self.gram_neighbors = gram_neighbors
        self.n_neighbors = n_neighbors
        self.drop_tolerance = drop_tolerance
        self.fill_factor = fill_factor
        self.block_size = block_size
        self.max_memory_gb = max_memory_gb
        self.n_threads = n_threads

    # ------------------------------------------------------------ fit
    def _fit(self, data, eval_data):
        n = data.n_items
        need = sansa_memory_gb(n, self.gram_neighbors, self.fill_factor, self.n_neighbors, self.block_size)
        if need > self.max_memory_gb:
            raise ModelError(f"SANSA would need about {need:.1f} GiB for {n:,} items, more than max_memory_gb="
                             f"{self.max_memory_gb:g}; lower gram_neighbors, fill_factor, n_neighbors or "
                             f"block_size")
        X = to_training(data).astype(np.float32)
        X.sort_indices()
        t0 = time.perf_counter()
        a, s = self._scaled_gram(X)
        t1 = time.perf_counter()
        lu = self._factorize(a)
        t2 = time.perf_counter()
        self.item_weights_ = self._weights(lu, s, n)
        self.fit_info_ = {"gram_entries_per_item": a.nnz / max(n, 1),
                          "factor_entries_per_item": (lu.L.nnz + lu.U.nnz) / max(n, 1),
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
        """SuperLU threshold ILU of A in a minimum-degree order (no pivoting: A is positive definite)."""
        try:
            return spla.spilu(a, drop_tol=float(self.drop_tolerance), fill_factor=float(self.fill_factor),
                              permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                              options={"SymmetricMode": True})
        except RuntimeError as exc:  # singular factor: cannot happen for positive definite A without dropping
            raise ModelError(f"SANSA: the incomplete factorisation failed ({exc}); lower drop_tolerance or raise "
                             f"regularization") from None

    def _weights(self, lu, s: np.ndarray, n: int) -> sp.csr_matrix:
        """Columns of P ~ S (LU)^-1 S in blocks, EASE's zero-diagonal normalisation, top n_neighbors |B_ij|
        per column; returns B as float32 CSR."""
        if n < 2:
            return sp.csr_matrix((n, n), dtype=np.float32)
        k = int(min(self.n_neighbors, n - 1))
        b = int(min(self.block_size, n))
        rows, cols, vals = [], [], []
        for start in range(0, n, b):
            stop = min(start + b, n)
            m = stop - start
            unit = np.zeros((n, m), dtype=np.float64)
            unit[np.arange(start, stop), np.arange(m)] = 1.0
            p = lu.solve(unit)  # (n, m): columns of (LU)^-1
            del unit
            p *= s[:, None]
            p *= s[None, start:stop]
            blk = np.ascontiguousarray(p.T, dtype=np.float32)  # row jj: column j of P
            del p
            diag = blk[np.arange(m), np.arange(start, stop)].copy()
            if np.any(diag <= 0) or not np.all(np.isfinite(blk)):
                raise ModelError("SANSA: the approximate inverse has a non-positive diagonal; lower "
                                 "drop_tolerance or raise fill_factor")
            blk /= -diag[:, None]
            blk[np.arange(m), np.arange(start, stop)] = 0.0
            mag = np.abs(blk)
            mag[np.arange(m), np.arange(start, stop)] = -np.inf
            c, _ = topn_masked(mag, k)
            del mag
            keep = c >= 0
            j = np.repeat(np.arange(start, stop, dtype=np.int32), k).reshape(-1, k)[keep]
            i = c[keep].astype(np.int32)
            rows.append(i)
            cols.append(j)
            vals.append(blk[j - start, i])
        w = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n),
                          dtype=np.float32)
        w.eliminate_zeros()
        w.sort_indices()
        return w

    def _item_similarity_block(self, i):
        # like EASE: B_ij, how much having i predicts j
        return np.asarray(self.item_weights_[i].todense(), dtype=np.float32)
