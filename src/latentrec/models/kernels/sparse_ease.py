"""SparseEASE kernels (:mod:`latentrec.models.linear.sparse_ease`): rows of the scaled Gram matrix,
the incomplete L D L^T of the ``ldl`` solver and its sparse inverse, and the local systems of the
``neighborhood`` solver. Arrays in, arrays out; no package imports."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, nogil=True, cache=True)
def gram_rows(c_ptr, c_users, c_vals, r_ptr, r_items, r_vals, start, stop, out):  # pragma: no cover - numba
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
def ldl_incomplete(a_ptr, a_rows, a_vals, n, p, tol):  # pragma: no cover - numba
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
def inverse_columns(l_rows, l_vals, l_cnt, d, m, tol, n_chunks):  # pragma: no cover - numba
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


@njit(parallel=True, nogil=True, cache=True)
def local_systems(codes, vals, k, tau, start, stop, subs, rhs, n_chunks):  # pragma: no cover - numba
    """For j in [start, stop) with neighbours N = codes[j, :k] (-1 padded): subs[j - start] = A[N, N] and
    rhs[j - start] = A[N, j], reading each neighbour's own stored list codes[a] (a pair is known when
    either item stored it). A pair neither stored lies in [0, m], m = min(tau_a, tau_b) (below both
    items' smallest stored entry): it is set to m / 2 and m / 2 is added to both diagonals, so the error
    is a diagonally dominant matrix and the system stays positive definite. Padding: identity."""
    n = codes.shape[0]
    big = codes.shape[1]
    for chunk in prange(n_chunks):
        pos = np.full(n, -1, dtype=np.int64)
        for jj in range(chunk, stop - start, n_chunks):
            j = start + jj
            sub = subs[jj]
            r = rhs[jj]
            sub[:, :] = np.nan
            r[:] = 0.0
            for t in range(k):
                sub[t, t] = 1.0
                a = codes[j, t]
                if a >= 0:
                    pos[a] = t
                    r[t] = vals[j, t]
            for t in range(k):
                a = codes[j, t]
                if a < 0:
                    continue
                for q in range(big):
                    c = codes[a, q]
                    if c < 0:
                        break
                    pb = pos[c]
                    if pb >= 0 and pb != t:
                        sub[t, pb] = vals[a, q]
                        sub[pb, t] = vals[a, q]
            for t in range(k):
                a = codes[j, t]
                for v in range(t + 1, k):
                    if not np.isnan(sub[t, v]):
                        continue
                    b = codes[j, v]
                    if a < 0 or b < 0:
                        sub[t, v] = 0.0
                        sub[v, t] = 0.0
                        continue
                    half = 0.5 * min(tau[a], tau[b])
                    sub[t, v] = half
                    sub[v, t] = half
                    sub[t, t] += half
                    sub[v, v] += half
            for t in range(k):
                a = codes[j, t]
                if a >= 0:
                    pos[a] = -1
