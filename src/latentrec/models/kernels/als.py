"""Explicit ALS kernels: one half-sweep solves every row's factors and bias exactly.

For row u (a user in the user sweep, an item in the item sweep) with partners j
(the items it rated / the users who rated it), the unknowns are x = [p_u, b_u]
and the design vectors z_j = [q_j, 1]; the targets are t_j = r_uj - mu - b_j.
The row minimises

    sum_j (t_j - z_j . x)^2 + n_u (lambda |p_u|^2 + lambda_b b_u^2)

(count-weighted regularisation, "ALS-WR", Zhou et al. 2008, as Spark MLlib does),
so x = (Z^T Z + n_u diag(lambda.., lambda_b))^-1 Z^T t. The normal matrix is
accumulated in float64 — rank-one updates for short rows, and for rows of
``BLAS_MIN_ROW`` or more partners a BLAS product Z_b^T Z_b over blocks of
``BLOCK`` gathered partners — then solved by LAPACK's Cholesky
(:func:`spd_solve`, shared with the implicit ALS kernel). A row whose system is
not positive definite is reported (the sweep returns its index) instead of
being patched, and no kernel here can raise. Rows are processed in parallel
chunks of equal estimated cost (nnz).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: partners gathered per BLAS product, and the row length from which the product pays off
BLOCK = 1024
BLAS_MIN_ROW = 32


#: a pivot of the Cholesky factor below this fraction of its diagonal entry counts as singular:
#: the system's condition number is beyond what float64 solves to any useful precision
PIVOT_TOL = 1e-13


@njit(cache=True, error_model="numpy")
def spd_solve(A, b, x):
    """Solve ``A x = b`` for a symmetric positive-definite float64 ``A``; True on success.

    The factorisation is LAPACK's Cholesky (``potrf``, through numba's
    ``np.linalg.cholesky``), then two triangular substitutions. A system that is
    not positive definite, numerically singular (a pivot below ``PIVOT_TOL`` of
    its diagonal) or not finite leaves ``x`` at zero and returns False, so a
    parallel kernel never raises; its caller reports the row.
    """
    n = A.shape[0]
    for i in range(n):
        x[i] = 0.0
    try:
        L = np.linalg.cholesky(A)
    except Exception:  # noqa: BLE001 - numba catches only the bare class; LinAlgError: not PD
        return False
    for i in range(n):
        d = L[i, i]
        if not (d * d > PIVOT_TOL * abs(A[i, i])):  # also False for NaN
            return False
    for i in range(n):  # L y = b
        s = b[i]
        for m in range(i):
            s -= L[i, m] * x[m]
        x[i] = s / L[i, i]
    for i in range(n - 1, -1, -1):  # L^T x = y
        s = x[i]
        for m in range(i + 1, n):
            s -= L[m, i] * x[m]
        x[i] = s / L[i, i]
    for i in range(n):
        if not np.isfinite(x[i]):
            for m in range(n):
                x[m] = 0.0
            return False
    return True


@njit(cache=True)
def first_failure(failed):
    """The smallest row recorded in a per-chunk ``failed`` array (-1 = none failed)."""
    out = -1
    for c in range(failed.shape[0]):
        if failed[c] >= 0 and (out < 0 or failed[c] < out):
            out = failed[c]
    return out


@njit(parallel=True, fastmath=True, cache=True, error_model="numpy")
def als_sweep(indptr, indices, ratings, X, xb, Y, yb, mu, reg, reg_b, biased, bounds):
    """Solve the factors ``X`` (and biases ``xb``) of every CSR row given the fixed side ``Y``, ``yb``.

    Parameters
    ----------
    indptr, indices, ratings : CSR of the rows being solved (users x items, or its transpose)
    X : float32 (n_rows, k), overwritten; xb : float32 (n_rows,), overwritten when ``biased``
    Y : float32 (n_cols, k); yb : float32 (n_cols,) the fixed side's biases
    mu : float32 global mean (0 when not biased); reg, reg_b : float regularisation
    bounds : int64 chunk boundaries over the rows (equal nnz per chunk)

    Returns
    -------
    int
        -1, or the first row whose normal equations are not positive definite
        (its factors and bias are left at 0; the caller raises).
    """
    k = X.shape[1]
    kk = k + 1 if biased else k
    n_chunks = bounds.shape[0] - 1
    B = BLOCK
    failed = np.full(n_chunks, -1, dtype=np.int64)
    for c in prange(n_chunks):
        z = np.empty(kk, dtype=np.float64)
        Zb = np.empty((B, kk), dtype=np.float64)
        tb = np.empty(B, dtype=np.float64)
        A = np.empty((kk, kk), dtype=np.float64)
        rhs = np.empty(kk, dtype=np.float64)
        x = np.empty(kk, dtype=np.float64)
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
            A[:, :] = 0.0
            rhs[:] = 0.0
            if n < BLAS_MIN_ROW:
                for jj in range(s, e):
                    j = indices[jj]
                    for f in range(k):
                        z[f] = Y[j, f]
                    t = np.float64(ratings[jj])
                    if biased:
                        z[k] = 1.0
                        t = t - mu - yb[j]
                    for a in range(kk):
                        za = z[a]
                        rhs[a] += t * za
                        for m in range(a + 1):
                            A[a, m] += za * z[m]
                for a in range(kk):
                    for m in range(a + 1, kk):
                        A[a, m] = A[m, a]
            else:
                for s0 in range(s, e, B):
                    e0 = min(s0 + B, e)
                    nb = e0 - s0
                    for q in range(nb):
                        j = indices[s0 + q]
                        for f in range(k):
                            Zb[q, f] = Y[j, f]
                        t = np.float64(ratings[s0 + q])
                        if biased:
                            Zb[q, k] = 1.0
                            t = t - mu - yb[j]
                        tb[q] = t
                    Zq = Zb[:nb]
                    A += np.dot(Zq.T, Zq)
                    rhs += np.dot(Zq.T, tb[:nb])
            for f in range(k):
                A[f, f] += reg * n
            if biased:
                A[k, k] += reg_b * n
            if not spd_solve(A, rhs, x) and failed[c] < 0:
                failed[c] = u
            for f in range(k):
                X[u, f] = x[f]
            if biased:
                xb[u] = x[k]
    return first_failure(failed)
