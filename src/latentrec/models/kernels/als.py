"""Explicit ALS kernels: one half-sweep solves every row's factors and bias exactly.

For row u (a user in the user sweep, an item in the item sweep) with partners j
(the items it rated / the users who rated it), the unknowns are x = [p_u, b_u]
and the design vectors z_j = [q_j, 1]; the targets are t_j = r_uj - mu - b_j.
The row minimises

    sum_j (t_j - z_j . x)^2 + n_u (lambda |p_u|^2 + lambda_b b_u^2)

(count-weighted regularisation, "ALS-WR", Zhou et al. 2008, as Spark MLlib does),
so x = (Z^T Z + n_u diag(lambda.., lambda_b))^-1 Z^T t. The normal matrix is
accumulated in float32 — rank-one updates for short rows, and for rows of
``BLAS_MIN_ROW`` or more partners a BLAS product Z_b^T Z_b over blocks of
``BLOCK`` gathered partners (1.6-2.3x faster per sweep on 5M ratings at 20 and
64 factors) — then factorised by Cholesky in float64. Rows are processed in
parallel chunks of equal estimated cost (nnz).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: partners gathered per BLAS product, and the row length from which the product pays off
BLOCK = 1024
BLAS_MIN_ROW = 32


@njit(fastmath=True, cache=True)
def cholesky_solve(A, b):
    """Solve A x = b for a symmetric positive-definite float64 A (A is overwritten)."""
    n = A.shape[0]
    for j in range(n):
        s = A[j, j]
        for m in range(j):
            s -= A[j, m] * A[j, m]
        if s <= 0.0:
            s = 1e-12
        d = np.sqrt(s)
        A[j, j] = d
        for i in range(j + 1, n):
            s = A[i, j]
            for m in range(j):
                s -= A[i, m] * A[j, m]
            A[i, j] = s / d
    x = b.copy()
    for i in range(n):  # L y = b
        s = x[i]
        for m in range(i):
            s -= A[i, m] * x[m]
        x[i] = s / A[i, i]
    for i in range(n - 1, -1, -1):  # L^T x = y
        s = x[i]
        for m in range(i + 1, n):
            s -= A[m, i] * x[m]
        x[i] = s / A[i, i]
    return x


@njit(parallel=True, fastmath=True, cache=True)
def als_sweep(indptr, indices, ratings, X, xb, Y, yb, mu, reg, reg_b, biased, bounds):
    """Solve the factors ``X`` (and biases ``xb``) of every CSR row given the fixed side ``Y``, ``yb``.

    Parameters
    ----------
    indptr, indices, ratings : CSR of the rows being solved (users x items, or its transpose)
    X : float32 (n_rows, k), overwritten; xb : float32 (n_rows,), overwritten when ``biased``
    Y : float32 (n_cols, k); yb : float32 (n_cols,) the fixed side's biases
    mu : float32 global mean (0 when not biased); reg, reg_b : float regularisation
    bounds : int64 chunk boundaries over the rows (equal nnz per chunk)
    """
    k = X.shape[1]
    kk = k + 1 if biased else k
    n_chunks = bounds.shape[0] - 1
    B = BLOCK
    for c in prange(n_chunks):
        A32 = np.empty((kk, kk), dtype=np.float32)
        b32 = np.empty(kk, dtype=np.float32)
        z = np.empty(kk, dtype=np.float32)
        Zb = np.empty((B, kk), dtype=np.float32)
        tb = np.empty(B, dtype=np.float32)
        A = np.empty((kk, kk), dtype=np.float64)
        rhs = np.empty(kk, dtype=np.float64)
        for u in range(bounds[c], bounds[c + 1]):
            s = indptr[u]
            e = indptr[u + 1]
            n = e - s
            if n == 0:
                for f in range(k):
                    X[u, f] = np.float32(0.0)
                if biased:
                    xb[u] = np.float32(0.0)
                continue
            A32[:, :] = np.float32(0.0)
            b32[:] = np.float32(0.0)
            if n < BLAS_MIN_ROW:
                for jj in range(s, e):
                    j = indices[jj]
                    for f in range(k):
                        z[f] = Y[j, f]
                    t = ratings[jj]
                    if biased:
                        z[k] = np.float32(1.0)
                        t = t - mu - yb[j]
                    for a in range(kk):
                        za = z[a]
                        b32[a] += t * za
                        for m in range(kk):
                            A32[a, m] += za * z[m]
            else:
                for s0 in range(s, e, B):
                    e0 = min(s0 + B, e)
                    nb = e0 - s0
                    for q in range(nb):
                        j = indices[s0 + q]
                        for f in range(k):
                            Zb[q, f] = Y[j, f]
                        t = ratings[s0 + q]
                        if biased:
                            Zb[q, k] = np.float32(1.0)
                            t = t - mu - yb[j]
                        tb[q] = t
                    Zq = Zb[:nb]
                    A32 += np.dot(Zq.T, Zq)
                    b32 += np.dot(Zq.T, tb[:nb])
            for a in range(kk):
                rhs[a] = b32[a]
                for m in range(kk):
                    A[a, m] = A32[a, m]
            for f in range(k):
                A[f, f] += reg * n
            if biased:
                A[k, k] += reg_b * n
            x = cholesky_solve(A, rhs)
            for f in range(k):
                X[u, f] = x[f]
            if biased:
                xb[u] = x[k]
