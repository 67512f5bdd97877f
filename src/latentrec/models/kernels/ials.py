"""Weighted ALS (WRMF) sweeps: conjugate gradient and exact Cholesky, one side at a time.

One sweep updates every row ``u`` of ``X`` (users, or items when the caller
passes the transposed matrix) to minimise

    sum_i c_ui (p_ui - x_u . y_i)^2 + lambda_u |x_u|^2

over all columns ``i``, where unobserved cells have c = w0 (the unobserved
weight, 1 in Hu-Koren-Volinsky), p = 0. With ``A0 = w0 Y^T Y`` this is the
linear system

    (A0 + lambda_u I + sum_{i in row} (c_ui - w0) y_i y_i^T) x_u = sum_{i in row} c_ui p_ui y_i .

The caller passes the two per-entry coefficients of a row's stored cells,
``acoef = c - w0`` and ``bcoef = c * p`` (p = 1 for a positive weight, 0 for a
stored zero), and the per-row penalties ``row_reg`` = lambda_u (Rendle et al.
2021 scale lambda with the row's frequency; a constant array is plain WRMF). Arrays in, arrays out; rows are processed in chunks of equal
estimated cost (``bounds``), one chunk per ``prange`` iteration, and each chunk
gathers its rows' partner vectors into a contiguous buffer once per row.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .als import first_failure, spd_solve
from ..._util import balanced_bounds


@njit(fastmath=True, cache=True)
def _matvec(a, x, out):
    k = x.shape[0]
    for r in range(k):
        acc = np.float32(0.0)
        for c in range(k):
            acc += a[r, c] * x[c]
        out[r] = acc


@njit(fastmath=True, cache=True)
def _dot(a, b):
    acc = np.float32(0.0)
    for f in range(a.shape[0]):
        acc += a[f] * b[f]
    return acc


@njit(parallel=True, fastmath=True, cache=True)
def cg_sweep(indptr, indices, acoef, bcoef, X, Y, A0, YtY, row_reg, w0, cg_steps, bounds, out_loss):
    """Warm-started conjugate-gradient update of every row of ``X`` (in place).

    ``out_loss[chunk]`` receives that chunk's part of the weighted squared error
    ``sum_i c_ui (p_ui - x_u . y_i)^2`` over *all* columns (regularisation not
    included), computed from the updated rows (``YtY`` is ``w0 Y^T Y``; ``A0``
    is usually the same matrix).
    """
    k = X.shape[1]
    n_chunks = bounds.shape[0] - 1
    for ch in prange(n_chunks):
        lo, hi = bounds[ch], bounds[ch + 1]
        width = 0
        for u in range(lo, hi):
            width = max(width, indptr[u + 1] - indptr[u])
        G = np.empty((max(width, 1), k), dtype=np.float32)
        ac = np.empty(max(width, 1), dtype=np.float32)
        bc = np.empty(max(width, 1), dtype=np.float32)
        x = np.empty(k, dtype=np.float32)
        r = np.empty(k, dtype=np.float32)
        p = np.empty(k, dtype=np.float32)
        ap = np.empty(k, dtype=np.float32)
        loss = np.float32(0.0)
        for u in range(lo, hi):
            start = indptr[u]
            n = indptr[u + 1] - start
            for f in range(k):
                x[f] = X[u, f]
            # gather the partner vectors and the residual r = b - A x in one pass
            lam = row_reg[u]
            _matvec(A0, x, r)
            for f in range(k):
                r[f] = -r[f] - lam * x[f]
            for j in range(n):
                col = indices[start + j]
                a = acoef[start + j]
                b = bcoef[start + j]
                ac[j] = a
                bc[j] = b
                gx = np.float32(0.0)
                for f in range(k):
                    g = Y[col, f]
                    G[j, f] = g
                    gx += g * x[f]
                coef = b - a * gx
                for f in range(k):
                    r[f] += coef * G[j, f]
            rs_old = _dot(r, r)
            for f in range(k):
                p[f] = r[f]
            for _ in range(cg_steps):
                if rs_old < np.float32(1e-20):
                    break
                _matvec(A0, p, ap)
                for f in range(k):
                    ap[f] += lam * p[f]
                for j in range(n):
                    gp = np.float32(0.0)
                    for f in range(k):
                        gp += G[j, f] * p[f]
                    coef = ac[j] * gp
                    for f in range(k):
                        ap[f] += coef * G[j, f]
                denom = _dot(p, ap)
                if not denom > np.float32(0.0):
                    break
                step = rs_old / denom
                for f in range(k):
                    x[f] += step * p[f]
                    r[f] -= step * ap[f]
                rs_new = _dot(r, r)
                beta = rs_new / rs_old
                for f in range(k):
                    p[f] = r[f] + beta * p[f]
                rs_old = rs_new
            for f in range(k):
                X[u, f] = x[f]
            # loss of this row over all columns: x^T YtY x + sum_obs [c (p - s)^2 - s^2]
            _matvec(YtY, x, ap)
            row_loss = _dot(x, ap)
            for j in range(n):
                s = np.float32(0.0)
                for f in range(k):
                    s += G[j, f] * x[f]
                c = ac[j] + w0
                pref = np.float32(1.0) if bc[j] > np.float32(0.0) else np.float32(0.0)
                d = pref - s
                row_loss += c * d * d - w0 * s * s
            loss += row_loss
        out_loss[ch] = loss


@njit(parallel=True, fastmath=False, cache=True, error_model="numpy")
def cholesky_sweep(indptr, indices, acoef, bcoef, X, Y, A0, YtY, row_reg, w0, bounds, out_loss):
    """Exact update of every row of ``X`` (in place): the normal equations, accumulated
    in float64, solved by LAPACK's Cholesky (:func:`latentrec.models.kernels.als.spd_solve`).
    ``row_reg`` is each row's penalty, ``w0`` the unobserved weight; ``out_loss`` as in
    :func:`cg_sweep`. Returns -1, or the first row whose system is not positive definite
    (its factors are left at 0; the caller raises)."""
    k = X.shape[1]
    n_chunks = bounds.shape[0] - 1
    failed = np.full(n_chunks, -1, dtype=np.int64)
    for ch in prange(n_chunks):
        A = np.empty((k, k), dtype=np.float64)
        b = np.empty(k, dtype=np.float64)
        x = np.empty(k, dtype=np.float64)
        loss = 0.0
        for u in range(bounds[ch], bounds[ch + 1]):
            for r in range(k):
                b[r] = 0.0
                for c in range(k):
                    A[r, c] = A0[r, c]
                A[r, r] += np.float64(row_reg[u])
            for p in range(indptr[u], indptr[u + 1]):
                col = indices[p]
                a = np.float64(acoef[p])
                w = np.float64(bcoef[p])
                for r in range(k):
                    yr = np.float64(Y[col, r])
                    b[r] += w * yr
                    ar = a * yr
                    for c in range(r + 1):
                        A[r, c] += ar * Y[col, c]
            for r in range(k):
                for c in range(r + 1, k):
                    A[r, c] = A[c, r]
            if not spd_solve(A, b, x) and failed[ch] < 0:
                failed[ch] = u
            for f in range(k):
                X[u, f] = np.float32(x[f])
            row_loss = 0.0
            for r in range(k):
                t = 0.0
                for c in range(k):
                    t += YtY[r, c] * X[u, c]
                row_loss += t * X[u, r]
            for p in range(indptr[u], indptr[u + 1]):
                col = indices[p]
                s = 0.0
                for f in range(k):
                    s += X[u, f] * Y[col, f]
                c = acoef[p] + w0
                pref = 1.0 if bcoef[p] > 0.0 else 0.0
                row_loss += c * (pref - s) ** 2 - w0 * s * s
            loss += row_loss
        out_loss[ch] = loss
    return first_failure(failed)


def cost_bounds(indptr: np.ndarray, n_factors: int, n_chunks: int) -> np.ndarray:
    """Row boundaries of ``n_chunks`` contiguous chunks of (about) equal cost nnz + n_factors."""
    return balanced_bounds(np.diff(indptr).astype(np.int64) + n_factors, n_chunks)
