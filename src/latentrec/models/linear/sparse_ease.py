"""SparseEASE: a sparse approximate EASE for catalogues too large for dense item x item matrices.

EASE (Steck 2019) is, column by column, a ridge regression of item j on every other
item: B_.j = argmin |x_j - X b|^2 + lambda |b|^2 with b_j = 0, in closed form from
P = (X^T X + lambda I)^-1 as B = I - P dMat(1 / diag(P)). That needs dense
n_items^2 matrices (up to 16 n_items^2 bytes). Two sparse approximations, NumPy,
SciPy and numba only; docs/implicit.md has the equations and the measurements:

0. Both start from the scaled Gram A = S (G + lambda I) S, G = X^T X,
   S = dMat(1 / sqrt(diag(G) + lambda)) (unit diagonal), built in blocks of
   ``block_size`` items (a dense block x n_items array at a time), of which each
   item keeps its ``gram_neighbors`` largest off-diagonal entries.

1a. ``solver="neighborhood"`` (default): column j of B is that ridge regression
    restricted to the ``n_neighbors`` items N_j of largest A_ij (the feature
    selection of fsSLIM, Ning & Karypis 2011, with EASE's L2 objective instead of
    SLIM's elastic net): b = (G_NN + lambda I)^-1 G_Nj, zero outside N_j, so
    diag(B) = 0 by construction. Entries of A between two neighbours come from
    the stored ones; a pair neither item stored lies in [0, m], m the smaller of
    the two items' smallest stored entries, and is set to m/2 with m/2 added to
    both diagonals (the error is then diagonally dominant: the local system stays
    positive definite). With every pair stored and every co-occurring item kept it
    is EASE restricted to co-occurring items (tested).

1b. ``solver="ldl"`` follows SANSA (Spisak, Bartyzal & Tomas, "Scalable Approximate
    NonSymmetric Autoencoder for Collaborative Filtering", RecSys 2023): every
    dropped entry a_ij of A is added to a_ii and a_jj (diagonal compensation, Ajiz &
    Jennings 1984) so A stays positive definite; then
2.  an incomplete L D L^T of A in ascending-degree order (a static minimum-degree
    ordering, standing in for SANSA's COLAMD), left-looking, each column of L
    keeping its ``gram_neighbors`` largest entries above ``drop_tolerance``,
    dropped entries compensated on the diagonal the same way (no pivot breaks down);
3.  Z = D^-1/2 L^-1 by forward substitution with the same dropping (SANSA uses
    minimal-residual iterations), P ~ S Z^T Z S, EASE's normalisation in blocks of
    columns each keeping its ``n_neighbors`` largest |B_ij|. SANSA keeps B factored;
    here it is materialised sparse. The compensated diagonal regularises heavily
    when most of the Gram is dropped, which costs accuracy (docs/implicit.md).

Either way B is a sparse CSR scored by the shared x_u B of :class:`ItemWeightsModel`,
memory is O(n_items (gram_neighbors + n_neighbors) + block_size n_items) instead of
EASE's 16 n_items^2 bytes, estimated before fitting (:func:`sparse_ease_memory_gb`);
``max_memory_gb`` refuses a fit that would exceed it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from ..._util import kernel_threads
from ...errors import ModelError
from ..base import Interval, ItemWeightsModel, Options
from .._feedback import to_training
from ..kernels import sparse_ease as kern
from ..kernels.topn import topn_masked


def _solve_systems(part):
    """Solutions of a stack of small positive definite systems (least squares for any singular one)."""
    subs, rhs = part
    try:
        return np.linalg.solve(subs, rhs[:, :, None])[..., 0]
    except np.linalg.LinAlgError:
        return np.stack([np.linalg.lstsq(a, r, rcond=None)[0] for a, r in zip(subs, rhs)])


def sparse_ease_memory_gb(n_items: int, gram_neighbors: int = 400, n_neighbors: int = 200, block_size: int = 512,
                          n_threads: int = 2, solver: str = "neighborhood") -> float:
    """Estimated peak memory (GiB) of a SparseEASE fit on ``n_items`` items besides the training data and
    its CSC copy. Both solvers: the dense float32 block x n_items Gram rows and each item's selected
    neighbours (int32 + float32). ``"neighborhood"``: the 64 MB of local systems, the solutions and B's
    triplets. ``"ldl"``: the compensated Gram A (with a
    reordered copy), the factor L and the inverse Z (int32 + float64 each) and B's triplets."""
    n = float(n_items)
    big = min(max(gram_neighbors, n_neighbors) if solver == "neighborhood" else gram_neighbors,
              max(n_items - 1, 1))
    k = min(n_neighbors, max(n_items - 1, 1))
    blocks = 2 * min(block_size, n_items) * n * 4 + n * big * 8
    if solver == "neighborhood":
        rest = (64 << 20) + n * k * 4 + 2 * n * k * 16
    else:
        rest = 4 * min(n * (2 * big + 1), n * n) * 12 + 2 * n * big * 12 + 3 * n_threads * n * 8 + 2 * n * k * 16
    return (blocks + rest) / 2**30


class SparseEASE(ItemWeightsModel):
    """Sparse approximate EASE for catalogues whose dense item x item matrices do not fit.

    Parameters
    ----------
    solver : {"neighborhood", "ldl"}, default "neighborhood"
        ``"neighborhood"``: column j of B is EASE's ridge regression of item j on
        its ``n_neighbors`` nearest items only (module docstring, 1a).
        ``"ldl"``: SANSA's route, an incomplete L D L^T of the sparsified Gram and a
        sparse inverse of L (1b-3); less accurate here (docs/implicit.md).
    regularization : float, default 250
        lambda added to the diagonal of the item Gram matrix X^T X (EASE's lambda).
    gram_neighbors : int, default 400
        Largest off-diagonal entries of the scaled Gram matrix kept per item
        (``"neighborhood"``: at least ``n_neighbors``; the systems read entries
        between neighbours from them. ``"ldl"``: the dropped ones move to the
        diagonal; also the entries kept per column of L and of its inverse).
    n_neighbors : int, default 200
        Entries of each column of B: the items that may predict item j
        (``"ldl"``: the largest |B_ij|).
    drop_tolerance : float, default 1e-4
        ``"ldl"`` only: entries of L below ``drop_tolerance`` sqrt(D_j), and of
        L's inverse below ``drop_tolerance`` times its diagonal, are dropped.
    block_size : int, default 512
        Items whose Gram rows (and ``"ldl"``: columns of B) are computed at once
        (dense block x n_items float32 arrays).
    max_memory_gb : float, default 16
        Refuse to fit (:class:`ModelError`) when :func:`sparse_ease_memory_gb` exceeds it.
    n_threads : int, default 0
        Threads of the numba kernels (0: all numba may use).

    The defaults were chosen on the validation splits carved from the training parts
    of ml-100k and ml-latest-small (docs/implicit.md, "SparseEASE").

    Attributes
    ----------
    item_weights_ : float32 CSR (n_items, n_items)
        B, at most ``n_neighbors`` entries per column, zero diagonal.
    fit_info_ : dict
        Entries per item of the intermediate matrices and seconds of each step.
    """

    _persisted_sparse = {"item_weights_": ("items", "items")}
    _persisted_state = {"fit_info_": (lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, (int, float)) for k, x in v.items()), "a dict of numbers")}
    _constraints = {
        "solver": Options("neighborhood", "ldl"),
        "regularization": Interval(float, 0, None, closed="neither"),
        "gram_neighbors": Interval(int, 1, None),
        "n_neighbors": Interval(int, 1, None),
        "drop_tolerance": Interval(float, 0, 1),
        "block_size": Interval(int, 1, None),
        "max_memory_gb": Interval(float, 0, None, closed="neither"),
        "n_threads": Interval(int, 0, None),
    }

    def __init__(self, *, solver: str = "neighborhood", regularization: float = 250.0, gram_neighbors: int = 400,
                 n_neighbors: int = 200, drop_tolerance: float = 1e-4, block_size: int = 512,
                 max_memory_gb: float = 16.0, n_threads: int = 0):
        self.solver = solver
        self.regularization = regularization
        self.gram_neighbors = gram_neighbors
        self.n_neighbors = n_neighbors
        self.drop_tolerance = drop_tolerance
        self.block_size = block_size
        self.max_memory_gb = max_memory_gb
        self.n_threads = n_threads

    # ------------------------------------------------------------ fit
    def _fit(self, data, eval_data):
        from ..._util import resolve_threads

        n = data.n_items
        need = sparse_ease_memory_gb(n, self.gram_neighbors, self.n_neighbors, self.block_size,
                                     resolve_threads(self.n_threads), self.solver)
        if need > self.max_memory_gb:
            raise ModelError(f"SparseEASE would need about {need:.1f} GiB for {n:,} items, more than "
                             f"max_memory_gb={self.max_memory_gb:g}; lower gram_neighbors, n_neighbors or "
                             f"block_size")
        X = to_training(data).astype(np.float32)
        X.sort_indices()
        t0 = time.perf_counter()
        if self.solver == "neighborhood":
            self.item_weights_ = self._fit_neighbourhood(X, n)
            self.fit_info_ = {"weight_entries_per_item": self.item_weights_.nnz / max(n, 1),
                              **self.__dict__.pop("_timings", {})}
            return
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

    def _neighbours(self, X: sp.csr_matrix, s: np.ndarray, k: int):
        """Each item's ``k`` largest off-diagonal entries of the scaled Gram S X^T X S, from dense blocks of
        ``block_size`` rows: (codes (n, k) int32, -1 padded, in decreasing order; values (n, k) float32)."""
        n = X.shape[1]
        Xc = X.tocsc()
        Xc.sort_indices()
        s32 = s.astype(np.float32)
        b = int(min(self.block_size, n))
        out = np.empty((b, n), dtype=np.float32)
        codes = np.full((n, k), -1, dtype=np.int32)
        vals = np.zeros((n, k), dtype=np.float32)
        with kernel_threads(self.n_threads):
            for start in range(0, n, b):
                stop = min(start + b, n)
                blk = out[: stop - start]
                kern.gram_rows(Xc.indptr, Xc.indices, Xc.data, X.indptr, X.indices, X.data, start, stop, blk)
                blk *= s32[None, :]
                blk *= s32[start:stop, None]
                blk[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never its own neighbour
                c, v = topn_masked(blk, k)
                bad = (c < 0) | ~(v > 0)  # no co-occurrence: not a neighbour
                c[bad] = -1
                v[bad] = 0.0
                codes[start:stop] = c
                vals[start:stop] = v
        return codes, vals

    @staticmethod
    def _union(codes: np.ndarray, vals: np.ndarray, n: int) -> sp.csr_matrix:
        """The symmetric sparse matrix holding every selected entry on both sides (G is symmetric)."""
        keep = codes >= 0
        rows = np.repeat(np.arange(n, dtype=np.int32), codes.shape[1]).reshape(codes.shape)[keep]
        t = sp.csr_matrix((vals[keep].astype(np.float64), (rows, codes[keep])), shape=(n, n))
        u = t.maximum(t.T).tocsr()
        u.sort_indices()
        return u

    def _scale(self, X: sp.csr_matrix) -> np.ndarray:
        g = np.asarray(X.multiply(X).sum(axis=0), dtype=np.float64).ravel()
        return 1.0 / np.sqrt(g + float(self.regularization))

    def _scaled_gram(self, X: sp.csr_matrix) -> tuple[sp.csc_matrix, np.ndarray]:
        """A = S (G + lambda I) S sparsified to ``gram_neighbors`` per item with diagonal compensation;
        returns (A as float64 CSC, the scale s = diag(S))."""
        n = X.shape[1]
        s = self._scale(X)
        if n < 2:
            return sp.csc_matrix(np.ones((n, n))), s
        g = 1.0 / s**2 - float(self.regularization)
        # full off-diagonal row sums of S G S: S X^T X s - s^2 g (nonnegative weights: all entries >= 0)
        full = s * np.asarray(X.T @ (X @ s), dtype=np.float64).ravel() - s * s * g
        codes, vals = self._neighbours(X, s, int(min(self.gram_neighbors, n - 1)))
        off = self._union(codes, vals, n).tocsc()
        del codes, vals
        kept = np.asarray(off.sum(axis=0)).ravel()
        comp = np.maximum(full - kept, 0.0)  # dropped mass of each item's column
        a = (off + sp.diags(1.0 + comp, format="csc")).tocsc()
        a.sort_indices()
        return a, s

    def _fit_neighbourhood(self, X: sp.csr_matrix, n: int) -> sp.csr_matrix:
        """Column j of B: EASE's ridge regression of item j on its ``n_neighbors`` nearest items only,
        b = (G_NN + lambda I)^-1 G_Nj, from the stored entries of the scaled Gram (a pair of neighbours that
        neither stored: half its bound, compensated on the diagonal, :func:`~latentrec.models.kernels.sparse_ease.local_systems`); zero diagonal
        by construction."""
        s = self._scale(X)
        if n < 2:
            return sp.csr_matrix((n, n), dtype=np.float32)
        big = int(min(max(self.gram_neighbors, self.n_neighbors), n - 1))
        k = int(min(self.n_neighbors, big))
        t0 = time.perf_counter()
        codes, vals = self._neighbours(X, s, big)
        self._timings = {"gram_s": time.perf_counter() - t0}
        # the smallest entry each item stored (0 when it stored all its co-occurrences)
        tau = np.where(codes[:, -1] >= 0, vals[:, -1], 0.0).astype(np.float64)
        b = int(max(1, min(self.block_size, n, (64 << 20) // (8 * k * k))))  # systems of a block: <= 64 MB
        subs = np.empty((b, k, k), dtype=np.float64)
        rhs = np.empty((b, k), dtype=np.float64)
        out = np.zeros((n, k), dtype=np.float32)
        t_solve = time.perf_counter()
        with kernel_threads(self.n_threads) as threads, ThreadPoolExecutor(max(threads, 1)) as pool:
            for start in range(0, n, b):
                stop = min(start + b, n)
                m = stop - start
                kern.local_systems(codes, vals, k, tau, start, stop, subs[:m], rhs[:m], threads)
                cuts = np.linspace(0, m, threads + 1).astype(np.int64)
                parts = [(subs[lo:hi], rhs[lo:hi]) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]
                if len(parts) > 1:  # LAPACK releases the GIL: one slice of the block per thread
                    out[start:stop] = np.concatenate(list(pool.map(_solve_systems, parts)))
                else:
                    out[start:stop] = _solve_systems(parts[0])
        self._timings["solve_s"] = time.perf_counter() - t_solve
        codes = codes[:, :k]
        keep = codes >= 0
        j = np.repeat(np.arange(n, dtype=np.int64), k).reshape(n, k)[keep]
        i = codes[keep].astype(np.int64)
        w = sp.csr_matrix(((out[keep] * s[i] / s[j]).astype(np.float32), (i, j)), shape=(n, n), dtype=np.float32)
        w.eliminate_zeros()
        w.sort_indices()
        return w

    def _factorize(self, a: sp.csc_matrix):
        """Incomplete L D L^T of A in ascending-degree order; returns (order, L rows, L values, counts, D)."""
        n = a.shape[0]
        order = np.argsort(np.diff(a.indptr), kind="stable")  # static minimum degree: sparse items first
        ap = a[order][:, order].tocsc()
        ap.sort_indices()
        k = int(min(self.gram_neighbors, max(n - 1, 1)))
        l_rows, l_vals, l_cnt, d = kern.ldl_incomplete(ap.indptr.astype(np.int64), ap.indices.astype(np.int64),
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
            z_rows, z_vals, z_cnt = kern.inverse_columns(l_rows, l_vals, l_cnt, d, m, float(self.drop_tolerance),
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
                kern.gram_rows(z.indptr, z.indices, z.data, zr.indptr, zr.indices, zr.data, start, stop, blk)
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
