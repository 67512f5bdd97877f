"""SGD kernels for explicit factorisation: biased MF (Funk SVD) and SVD++.

Notation: r̂_ui = mu + b_u + b_i + q_i . p_u (biased MF) and
r̂_ui = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j) (SVD++).

All factor arrays are float32 and updated in place. Threads work on disjoint
chunks of the rows and update shared factors without locks (Hogwild), so only a
single chunk (one thread) is deterministic. Every epoch kernel returns, per
chunk, the sum of the squared errors seen before each update (accumulated in
float64: it is one scalar per rating, not a vectorised loop) — the caller turns
it into the epoch's training RMSE. A diverging run makes that sum inf/NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(fastmath=True, cache=True)
def gather_rows(perm, users, items, ratings, out_users, out_items, out_ratings):
    """Copy the rows in the order ``perm`` into contiguous buffers (one shuffled epoch).

    Serial on purpose: it is memory-bound, and a parallel gather measured slower
    than one thread on a busy 2-core machine.
    """
    for t in range(perm.shape[0]):
        p = perm[t]
        out_users[t] = users[p]
        out_items[t] = items[p]
        out_ratings[t] = ratings[p]


@njit(parallel=True, fastmath=True, cache=True)
def sgd_epoch(users, items, ratings, P, Q, bu, bi, mu, lr, reg, reg_b, biased, n_chunks):
    """One pass of biased-MF SGD over the rows in the order given.

    Parameters
    ----------
    users, items : int32 arrays; ratings : float32 array (already shuffled)
    P, Q : float32 (n_users, k), (n_items, k); bu, bi : float32 biases (ignored unless ``biased``)
    mu : float32 global mean (0 when not biased); lr, reg, reg_b : float32
    n_chunks : int
        Rows are cut into this many contiguous chunks processed in parallel.

    Returns
    -------
    float64 (n_chunks,) sums of squared pre-update errors.
    """
    n = users.shape[0]
    k = P.shape[1]
    out = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        lo = (n * c) // n_chunks
        hi = (n * (c + 1)) // n_chunks
        sq = 0.0
        for t in range(lo, hi):
            u = users[t]
            i = items[t]
            dot = np.float32(0.0)
            for f in range(k):
                dot += P[u, f] * Q[i, f]
            if biased:
                err = ratings[t] - (mu + bu[u] + bi[i] + dot)
                bu[u] += lr * (err - reg_b * bu[u])
                bi[i] += lr * (err - reg_b * bi[i])
            else:
                err = ratings[t] - dot
            sq += err * err
            for f in range(k):
                puf = P[u, f]
                qif = Q[i, f]
                P[u, f] = puf + lr * (err * qif - reg * puf)
                Q[i, f] = qif + lr * (err * puf - reg * qif)
        out[c] = sq
    return out


@njit(parallel=True, fastmath=True, cache=True)
def svdpp_epoch(indptr, indices, ratings, order, bounds, P, Q, Y, bu, bi, mu, lr, reg, reg_b):
    """One SVD++ pass, user by user (exact per-user formulation).

    For each user ``u = order[t]`` the implicit term
    ``z = |N(u)|^-1/2 sum_j y_j`` is computed once and then kept up to date in
    place: every y_j of the user receives the same update
    ``y_j <- a y_j + lr e |N|^-1/2 q_i`` (``a = 1 - lr reg``), so
    ``z <- a z + lr e q_i`` exactly, and the y_j updates are accumulated in ``g``
    and applied once at the end of the user's pass (``y_j <- a^n y_j + g``). This
    is the same arithmetic as the per-rating loop of Koren (2008) / Surprise, but
    linear instead of quadratic in the user's number of ratings.

    Parameters
    ----------
    indptr, indices, ratings : the CSR rows of the training matrix (N(u) = the row's items)
    order : int32 users in the order to visit; bounds : int64 chunk boundaries into ``order``
    P, Q, Y : float32 (n_users, k), (n_items, k), (n_items, k); bu, bi : float32 biases

    Returns
    -------
    float64 (n_chunks,) sums of squared pre-update errors.
    """
    n_chunks = bounds.shape[0] - 1
    k = P.shape[1]
    out = np.zeros(n_chunks, dtype=np.float64)
    a = np.float32(1.0) - lr * reg
    for c in prange(n_chunks):
        z = np.empty(k, dtype=np.float32)
        g = np.empty(k, dtype=np.float32)
        sq = 0.0
        for t in range(bounds[c], bounds[c + 1]):
            u = order[t]
            s = indptr[u]
            e = indptr[u + 1]
            n = e - s
            if n == 0:
                continue
            cn = np.float32(1.0 / np.sqrt(n))
            for f in range(k):
                z[f] = np.float32(0.0)
                g[f] = np.float32(0.0)
            for jj in range(s, e):
                j = indices[jj]
                for f in range(k):
                    z[f] += Y[j, f]
            for f in range(k):
                z[f] *= cn
            for jj in range(s, e):
                i = indices[jj]
                dot = np.float32(0.0)
                for f in range(k):
                    dot += Q[i, f] * (P[u, f] + z[f])
                err = ratings[jj] - (mu + bu[u] + bi[i] + dot)
                sq += err * err
                bu[u] += lr * (err - reg_b * bu[u])
                bi[i] += lr * (err - reg_b * bi[i])
                le = lr * err
                for f in range(k):
                    puf = P[u, f]
                    qif = Q[i, f]
                    P[u, f] = puf + le * qif - lr * reg * puf
                    Q[i, f] = qif + le * (puf + z[f]) - lr * reg * qif
                    g[f] = a * g[f] + le * cn * qif
                    z[f] = a * z[f] + le * qif
            an = a ** n
            for jj in range(s, e):
                j = indices[jj]
                for f in range(k):
                    Y[j, f] = an * Y[j, f] + g[f]
        out[c] = sq
    return out


@njit(parallel=True, fastmath=True, cache=True)
def implicit_sums(indptr, indices, Y):
    """z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j for every CSR row (zeros for empty rows)."""
    n_rows = indptr.shape[0] - 1
    k = Y.shape[1]
    out = np.zeros((n_rows, k), dtype=np.float32)
    for u in prange(n_rows):
        n = indptr[u + 1] - indptr[u]
        if n == 0:
            continue
        for jj in range(indptr[u], indptr[u + 1]):
            j = indices[jj]
            for f in range(k):
                out[u, f] += Y[j, f]
        cn = np.float32(1.0 / np.sqrt(n))
        for f in range(k):
            out[u, f] *= cn
    return out


@njit(parallel=True, fastmath=True, cache=True)
def squared_error(users, items, ratings, P, Q, bu, bi, mu, biased, n_chunks):
    """Per-chunk sums of (r - r̂)^2 for the pairs given (float64 sums)."""
    n = users.shape[0]
    k = P.shape[1]
    out = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        lo = (n * c) // n_chunks
        hi = (n * (c + 1)) // n_chunks
        sq = 0.0
        for t in range(lo, hi):
            u = users[t]
            i = items[t]
            dot = np.float32(0.0)
            for f in range(k):
                dot += P[u, f] * Q[i, f]
            if biased:
                dot += mu + bu[u] + bi[i]
            err = ratings[t] - dot
            sq += err * err
        out[c] = sq
    return out
