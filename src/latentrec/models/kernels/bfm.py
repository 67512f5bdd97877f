"""Gibbs-sampling kernels of the Bayesian factorization machine (relational form, Rendle 2013).

Layout (every array is built once per fit by :mod:`latentrec.models.bayesian._features`):

* A *relation* is a table of entities (the users, the items, the days); every
  training row n points at one entity per relation, ``idx[n, r]`` (a global
  entity index, -1 for none). Entity ``e`` carries a sparse feature row
  (``ef_ptr/ef_idx/ef_val``, CSR) and ``fe_ptr/fe_idx/fe_val`` is its transpose
  (feature -> entities). ``er_ptr/er_rows`` lists the rows that point at each
  entity. A feature belongs to exactly one relation, and the features of a
  relation are split into contiguous *groups* ``g_start[g] .. g_start[g + 1]``
  (user id, implicit items, ...), each with its own prior.
* Per entity the sampler caches ``Q[e, f] = sum_j v_jf x_ej`` and the linear sum
  ``L[e] = sum_j w_j x_ej`` and ``S[e] = sum_f sum_j v_jf^2 x_ej^2``, so a row's
  prediction is ``w0 + sum_r (L - S/2) + |sum_r Q|^2 / 2``: the FM of the
  concatenated feature vector without ever building it.

Sampling one factor column f of the features of relation r needs, per row, only
``A(n) = P[n] - Q[idx[n, r], f]`` (the other relations' part; ``P[n]`` is the
row's factor-f sum over all relations, kept up to date while the relations are
sampled one after another for that f): the
per-entity sums c_e = #rows, S1 = sum A, S2 = sum A^2, R0 = sum e_n,
R1 = sum e_n A are gathered in one pass over the rows, every feature of the
relation is then drawn from its Gaussian conditional using only those sums
(updated in O(1) per nonzero as features change), and one more pass over the
rows brings the residuals up to date. A sweep therefore costs O(k (N R + nnz))
whatever the length of the implicit-feedback rows (the O(nnz) of Rendle 2013),
instead of O(k N |N(u)|) for the flat design matrix.

Parallelism: :func:`sweep_parameters` draws every parameter of a sweep in one call, one
``prange`` region per relation step over fixed chunks of entities (a relation's change to the
rows is applied while the next relation gathers over them); the draws are serial. The ordered
probit's passes (:func:`ordinal_stats`, :func:`ordinal_latent`, ...) run over fixed chunks of rows.
All random numbers are drawn beforehand (``z``) and no sum depends on the thread count, so
results do not either.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath=False, cache=True)
def entity_sums(ef_ptr, ef_idx, ef_val, w, V, Q, L, S):
    """Recompute ``Q``, ``L`` and ``S`` of every entity from the parameters."""
    n_ent, k = Q.shape
    for e in prange(n_ent):
        for f in range(k):
            Q[e, f] = 0.0
        lin = 0.0
        sq = 0.0
        for p in range(ef_ptr[e], ef_ptr[e + 1]):
            j = ef_idx[p]
            x = ef_val[p]
            lin += w[j] * x
            for f in range(k):
                vx = V[j, f] * x
                Q[e, f] += vx
                sq += vx * vx
        L[e] = lin
        S[e] = sq


@njit(parallel=True, fastmath=False, cache=True)
def row_predict(idx, w0, Q, L, S, out):
    """FM prediction of every row from the per-entity sums (entities -1 are skipped)."""
    n, n_rel = idx.shape
    k = Q.shape[1]
    for i in prange(n):
        s = w0
        for f in range(k):
            t = 0.0
            for r in range(n_rel):
                e = idx[i, r]
                if e >= 0:
                    t += Q[e, f]
            s += 0.5 * t * t
        for r in range(n_rel):
            e = idx[i, r]
            if e >= 0:
                s += L[e] - 0.5 * S[e]
        out[i] = s


@njit(cache=True)
def _draw(h2, he, old, mu, lam, alpha, z):
    """One draw from the Gaussian conditional of a parameter (``h2`` = sum h^2, ``he`` = sum h e)."""
    prec = alpha * h2 + lam
    mean = (alpha * (he + old * h2) + lam * mu) / prec
    return mean + z / np.sqrt(prec)


# Columns of the per-entity work array ``M`` of :func:`sweep_parameters` (one cache line per entity):
# row count, S1 = Σ A, S2 = Σ A², R0 = Σ e, R1 = Σ e A, the change of Σ (v x)², the current value of
# the entity's sum being drawn (Q[e, f], or L[e] for the linear weights) and its value before. After a
# relation's draws, columns _DQ and _DC hold the change its rows' residuals are still owed.
_CNT, _S1, _S2, _R0, _R1, _DS, _Q, _QOLD = 0, 1, 2, 3, 4, 5, 6, 7
#: the sweep's floating-point licence: fused multiply-adds and reassociation (~9 % of its time), not
#: nnan/ninf (no assumption that values are finite: a diverged chain must still show as non-finite).
#: The code and so the rounding are the same on every thread, so the chain stays thread-count free.
_SWEEP_MATH = {"contract", "reassoc", "nsz", "arcp"}
_DQ, _DC = 1, 2


@njit(cache=True, fastmath=_SWEEP_MATH)
def _draw_linear(j, fe_ptr, fe_idx, fe_val, M, w, mu, lam, alpha, z):
    h2 = 0.0
    he = 0.0
    for p in range(fe_ptr[j], fe_ptr[j + 1]):
        e = fe_idx[p]
        x = fe_val[p]
        h2 += x * x * M[e, _CNT]
        he += x * M[e, _R0]
    new = _draw(h2, he, w[j], mu, lam, alpha, z)
    d = new - w[j]
    w[j] = new
    for p in range(fe_ptr[j], fe_ptr[j + 1]):
        e = fe_idx[p]
        x = fe_val[p]
        M[e, _R0] -= d * x * M[e, _CNT]
        M[e, _Q] += d * x


@njit(cache=True, fastmath=_SWEEP_MATH)
def _draw_factor(j, f, fe_ptr, fe_idx, fe_val, M, V, mu, lam, alpha, z):
    """Draw v_jf: h_n = x (A(n) + c) for the rows of each entity carrying feature j, with c the
    entity's factor-f sum without feature j; keeps R0, R1, the entity's sum and the change of its
    Σ (v x)² exact."""
    vj = V[j, f]
    h2 = 0.0
    he = 0.0
    for p in range(fe_ptr[j], fe_ptr[j + 1]):
        e = fe_idx[p]
        x = fe_val[p]
        c = M[e, _Q] - vj * x
        h2 += x * x * (M[e, _S2] + 2.0 * c * M[e, _S1] + M[e, _CNT] * c * c)
        he += x * (M[e, _R1] + c * M[e, _R0])
    new = _draw(h2, he, vj, mu, lam, alpha, z)
    d = new - vj
    V[j, f] = new
    dsq = new * new - vj * vj
    for p in range(fe_ptr[j], fe_ptr[j + 1]):
        e = fe_idx[p]
        x = fe_val[p]
        c = M[e, _Q] - vj * x
        M[e, _R0] -= d * x * (M[e, _S1] + M[e, _CNT] * c)
        M[e, _R1] -= d * x * (M[e, _S2] + c * M[e, _S1])
        M[e, _DS] += x * x * dsq
        M[e, _Q] += d * x


@njit(parallel=True, fastmath=_SWEEP_MATH, cache=True)
def sweep_parameters(idx, er_idx, ent_start, rel_groups, g_start, g_parallel, chunks, fe_ptr, fe_idx, fe_val,
                     er_ptr, w, V, Q, L, S, resid, mu_w, lam_w, mu_v, lam_v, alpha, z):
    """One Gibbs pass over every parameter: the linear weights relation by relation, then for each
    factor f column f of ``V`` relation by relation; keeps ``L``, ``Q``, ``S`` and the residuals exact.

    ``er_idx[p]``: the entities (one per relation) of row ``er_rows[p]``, in the order of
    ``er_ptr`` (so the row passes read them contiguously). ``z`` (k + 1, n_features): the standard
    normals (row 0 for ``w``, row f + 1 for column f). ``chunks``: per relation r,
    ``chunks[r] .. chunks[r + 1]`` index entity boundaries in ``chunks[n_rel + 1:]``, cut so that each
    chunk has about as many rows (the parallel unit, fixed: results do not depend on the threads).

    Every training row has one entity in every relation, so the change a relation's draws make to a
    row's residual (and to its factor sum P, the sum over relations of Q[., f]) is applied while the
    next relation gathers its entities' sums over that row: one parallel region per relation step
    (3 + 3k for user, item, day) instead of a gather, a parallel region per one-hot group and a row
    pass each. The draws are serial (a draw costs O(nnz of its feature): a parallel region costs more
    than a small group's draws), except in the groups flagged in ``g_parallel``: one-hot groups
    (each entity has at most one of their features, so their features' conditionals share no entity
    and are independent) large enough to pay for a parallel region. Each draw reads and writes only
    its own feature's entities, so the result is the same as drawn in order, on any thread count.
    Each row sees the same arithmetic in the same order as with separate passes.
    """
    n, n_rel = idx.shape
    k = V.shape[1]
    n_ent = Q.shape[0]
    M = np.zeros((n_ent, 8))
    for e in range(n_ent):
        M[e, _CNT] = er_ptr[e + 1] - er_ptr[e]
    RP = np.empty((n, 2))  # each row's residual and factor sum P side by side
    for i in prange(n):
        RP[i, 0] = resid[i]
    bounds = chunks[n_rel + 1:]
    prev = -1  # relation whose change is pending (-1: none)
    prev_factor = False  # the pending change is a factor column's (else the linear weights')
    for step in range(n_rel * (k + 1)):
        f = step // n_rel - 1  # -1: the linear weights
        r = step % n_rel
        fresh = f >= 0 and r == 0  # first relation of factor f: the rows' P is recomputed
        for c in prange(chunks[r], chunks[r + 1]):
            for e in range(bounds[c], bounds[c + 1]):
                q = Q[e, f] if f >= 0 else L[e]
                a1 = 0.0
                a2 = 0.0
                b0 = 0.0
                b1 = 0.0
                for p in range(er_ptr[e], er_ptr[e + 1]):
                    i = er_idx[p, n_rel]
                    if prev >= 0:
                        ep = er_idx[p, prev]
                        if prev_factor:
                            RP[i, 0] -= (RP[i, 1] - M[ep, _QOLD]) * M[ep, _DQ] + M[ep, _DC]
                            RP[i, 1] += M[ep, _DQ]
                        else:
                            RP[i, 0] -= M[ep, _DC]
                    if fresh:
                        t = 0.0
                        for rr in range(n_rel):
                            t += Q[er_idx[p, rr], f]
                        RP[i, 1] = t
                    res = RP[i, 0]
                    b0 += res
                    if f >= 0:
                        a = RP[i, 1] - q  # the other relations' part of row i
                        a1 += a
                        a2 += a * a
                        b1 += res * a
                M[e, _S1] = a1
                M[e, _S2] = a2
                M[e, _R0] = b0
                M[e, _R1] = b1
                M[e, _DS] = 0.0
                M[e, _Q] = q
                M[e, _QOLD] = q
        g_lo, g_hi = rel_groups[r], rel_groups[r + 1]
        if f < 0:
            for g in range(g_lo, g_hi):
                if g_parallel[g]:
                    for j in prange(g_start[g], g_start[g + 1]):
                        _draw_linear(j, fe_ptr, fe_idx, fe_val, M, w, mu_w[g], lam_w[g], alpha, z[0, j])
                else:
                    for j in range(g_start[g], g_start[g + 1]):
                        _draw_linear(j, fe_ptr, fe_idx, fe_val, M, w, mu_w[g], lam_w[g], alpha, z[0, j])
            for e in range(ent_start[r], ent_start[r + 1]):
                L[e] = M[e, _Q]
                M[e, _DC] = M[e, _Q] - M[e, _QOLD]
        else:
            for g in range(g_lo, g_hi):
                if g_parallel[g]:
                    for j in prange(g_start[g], g_start[g + 1]):
                        _draw_factor(j, f, fe_ptr, fe_idx, fe_val, M, V, mu_v[g, f], lam_v[g, f], alpha,
                                     z[f + 1, j])
                else:
                    for j in range(g_start[g], g_start[g + 1]):
                        _draw_factor(j, f, fe_ptr, fe_idx, fe_val, M, V, mu_v[g, f], lam_v[g, f], alpha,
                                     z[f + 1, j])
            for e in range(ent_start[r], ent_start[r + 1]):
                q = M[e, _Q]
                q0 = M[e, _QOLD]
                Q[e, f] = q
                S[e] += M[e, _DS]
                M[e, _DQ] = q - q0
                M[e, _DC] = 0.5 * (q * q - q0 * q0) - 0.5 * M[e, _DS]
        prev = r
        prev_factor = f >= 0
    for i in prange(n):  # the last relation step's change
        ep = idx[i, prev]
        if prev_factor:
            resid[i] = RP[i, 0] - ((RP[i, 1] - M[ep, _QOLD]) * M[ep, _DQ] + M[ep, _DC])
        else:
            resid[i] = RP[i, 0] - M[ep, _DC]


@njit(cache=True)
def empty_2d(n, m, dtype):
    """``np.empty((n, m), dtype)`` from numba's allocator: NumPy advises the kernel to back arrays
    of 4 MB and more with huge pages, and where the kernel defragments on that advice (THP
    ``defrag=madvise``, the common default) the first write to each page can wait on memory
    compaction: 0.45 s against 0.05 s for the 160 MB of ml-latest-small's saved samples here."""
    return np.empty((n, m), dtype)


def row_chunks(ent_start, er_ptr, per_relation=32):
    """The ``chunks`` argument of :func:`sweep_parameters`: each relation's entities cut into up to
    ``per_relation`` runs of about equal row counts (fixed, so results do not depend on threads)."""
    n_rel = len(ent_start) - 1
    heads, bounds = [0], []
    for r in range(n_rel):
        lo, hi = int(ent_start[r]), int(ent_start[r + 1])
        rows = er_ptr[lo:hi + 1] - er_ptr[lo]
        targets = np.linspace(0, rows[-1], per_relation + 1)[1:-1]
        cuts = np.unique(np.concatenate([[lo], lo + np.searchsorted(rows, targets), [hi]]))
        bounds.extend(cuts[:-1].tolist())
        heads.append(heads[-1] + len(cuts) - 1)
        if r == n_rel - 1:
            bounds.append(hi)
    # chunk c of relation r spans bounds[c] .. bounds[c + 1]; relations are contiguous in entities
    return np.concatenate([np.asarray(heads, np.int64), np.asarray(bounds, np.int64)])


# ---------------------------------------------------------------- ordered probit (see bayesian/_ordinal.py)
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
_INV_SQRT_2 = 1.0 / np.sqrt(2.0)
#: rows per chunk of the probit's reductions: the chunks (not the threads) fix the summation order
ORDINAL_CHUNK = 4096


@njit(cache=True)
def _log_ndtr(x):
    """log Φ(x), accurate in both tails (the asymptotic series below -37, where erfc nears underflow)."""
    if x > 0.0:
        return np.log1p(-0.5 * math.erfc(x * _INV_SQRT_2))
    if x > -37.0:
        return np.log(0.5 * math.erfc(-x * _INV_SQRT_2))
    x2 = 1.0 / (x * x)
    return (-0.5 * x * x - _LOG_SQRT_2PI - np.log(-x)
            + np.log1p(x2 * (-1.0 + x2 * (3.0 + x2 * (-15.0 + 105.0 * x2)))))


@njit(cache=True)
def _log_prob(lo, hi):
    """log(Φ(hi) − Φ(lo)) for lo < hi (infinite bounds allowed), mirrored in the upper tail."""
    if lo > 0.0:
        a, b = -hi, -lo
    else:
        a, b = lo, hi
    lb = _log_ndtr(b) if b < np.inf else 0.0
    if a == -np.inf:
        return lb
    la = _log_ndtr(a)
    d = la - lb
    if d >= 0.0:
        return -np.inf  # empty interval
    return lb + np.log1p(-np.exp(d))


@njit(parallel=True, fastmath=False, cache=True)
def ordinal_stats(eta, cut, cls, with_derivatives):
    """The probit log-likelihood Σ_n log P(cls_n | eta_n, cut) and, with ``with_derivatives``, the per-class
    sums its gradient and Hessian in the cutpoints need: rows 0-4 of the (5, K) array are Σ r_hi, Σ r_lo,
    Σ (−hi r_hi − r_hi²), Σ (lo r_lo − r_lo²), Σ r_lo r_hi over the rows of each class, with
    lo/hi = the class's bounds − eta and r = φ(bound) / P (0 at an infinite bound).
    Summed per fixed chunk of rows, then over the chunks in order: the same result on any thread count."""
    n = len(eta)
    K = len(cut) + 1
    n_chunks = (n + ORDINAL_CHUNK - 1) // ORDINAL_CHUNK
    part = np.zeros((n_chunks, 5, K))
    part_ll = np.zeros(n_chunks)
    for c in prange(n_chunks):
        ll = 0.0
        for i in range(c * ORDINAL_CHUNK, min(n, (c + 1) * ORDINAL_CHUNK)):
            k = cls[i]
            lo = cut[k - 1] - eta[i] if k > 0 else -np.inf
            hi = cut[k] - eta[i] if k < K - 1 else np.inf
            # P = Φ(b) − Φ(a) on the interval mirrored into the lower tail (no cancellation there);
            # the log form only where P underflows (a score ~37 away from its class)
            if lo > 0.0:
                a, b = -hi, -lo
            else:
                a, b = lo, hi
            pb = 0.5 * math.erfc(-b * _INV_SQRT_2) if b < np.inf else 1.0
            pa = 0.5 * math.erfc(-a * _INV_SQRT_2) if a > -np.inf else 0.0
            prob = pb - pa
            direct = prob > 1e-280
            lp = np.log(prob) if direct else _log_prob(lo, hi)
            ll += lp
            if with_derivatives:
                if direct:
                    inv = _INV_SQRT_2PI / prob
                    r_lo = np.exp(-0.5 * lo * lo) * inv if k > 0 else 0.0
                    r_hi = np.exp(-0.5 * hi * hi) * inv if k < K - 1 else 0.0
                else:
                    r_lo = np.exp(-0.5 * lo * lo - lp) * _INV_SQRT_2PI if k > 0 else 0.0
                    r_hi = np.exp(-0.5 * hi * hi - lp) * _INV_SQRT_2PI if k < K - 1 else 0.0
                if k < K - 1:
                    part[c, 0, k] += r_hi
                    part[c, 2, k] += -hi * r_hi - r_hi * r_hi
                if k > 0:
                    part[c, 1, k] += r_lo
                    part[c, 3, k] += lo * r_lo - r_lo * r_lo
                part[c, 4, k] += r_lo * r_hi
        part_ll[c] = ll
    out = np.zeros((5, K))
    total = 0.0
    for c in range(n_chunks):
        total += part_ll[c]
        for m in range(5):
            for k in range(K):
                out[m, k] += part[c, m, k]
    return total, out


#: points of the table ``ordinal_sse`` interpolates the expected rating from
SSE_TABLE = 4096
#: beyond this distance from the outer cutpoints Φ is 0 or 1 to 1e-17
SSE_TAIL = 8.5


@njit(parallel=True, fastmath=False, cache=True)
def ordinal_sse(y, resid, cut, levels, ratings):
    """Σ_n (E[rating | eta_n, cut] − rating_n)² with eta = y − resid, summed per fixed chunk of rows
    (the same total on any thread count). E[rating | eta] is one smooth function of eta for the
    sample's cutpoints: it is tabulated at SSE_TABLE points over [cut_0 − 8.5, cut_K-2 + 8.5] (the
    rating scale's ends outside) and interpolated linearly, within h² max|E''| / 8 ≈ 3e-6 of the exact
    value on ml-100k's scale (h ≈ 0.005), instead of K − 1 normal CDFs per row: this is only the
    train RMSE shown and recorded per sample, and on 10 rating classes the CDFs cost ~10 % of a fit."""
    n = len(y)
    K1 = len(cut)
    lo = cut[0] - SSE_TAIL
    h = (cut[K1 - 1] + SSE_TAIL - lo) / (SSE_TABLE - 1)
    table = np.empty(SSE_TABLE)
    for m in prange(SSE_TABLE):
        eta = lo + m * h
        ex = levels[0]
        for k in range(K1):
            ex += (levels[k + 1] - levels[k]) * 0.5 * math.erfc((cut[k] - eta) * _INV_SQRT_2)  # Φ(eta − c)
        table[m] = ex
    n_chunks = (n + ORDINAL_CHUNK - 1) // ORDINAL_CHUNK
    part = np.zeros(n_chunks)
    for c in prange(n_chunks):
        acc = 0.0
        for i in range(c * ORDINAL_CHUNK, min(n, (c + 1) * ORDINAL_CHUNK)):
            x = (y[i] - resid[i] - lo) / h
            if x != x:  # a diverged score: the RMSE must show it (and never index the table)
                ex = np.nan
            elif x <= 0.0:
                ex = table[0]
            elif x >= SSE_TABLE - 1:
                ex = table[SSE_TABLE - 1]
            else:
                m = int(x)
                f = x - m
                ex = table[m] + f * (table[m + 1] - table[m])
            d = ex - ratings[i]
            acc += d * d
        part[c] = acc
    total = 0.0
    for c in range(n_chunks):
        total += part[c]
    return total


@njit(cache=True, inline="always")
def _row_dots(qu, qi, qt, qs, a, b, c, e, lo, hi):
    """Columns ``lo .. hi`` of the stacked factors of one row (user a, item b, day c or -1, pair e
    or -1): <qu_a, qi_b>, <qt_c, qu_a + qi_b> and <qs_e, qu_a + qi_b (+ qt_c)>, in float64."""
    dot = 0.0
    dt = 0.0
    ds = 0.0
    for j in range(lo, hi):
        x = np.float64(qu[a, j])
        y = np.float64(qi[b, j])
        dot += x * y
        ctx = x + y
        if c >= 0:
            tj = np.float64(qt[c, j])
            dt += tj * ctx
            ctx += tj
        if e >= 0:
            ds += np.float64(qs[e, j]) * ctx
    return dot, dt, ds


@njit(cache=True, inline="always")
def _row_codes(u, i, t, ses, r):
    """Row r's user, item, day (-1 when ``t`` is empty) and pair (-1 when ``ses`` is empty)."""
    return u[r], i[r], (t[r] if len(t) > 0 else -1), (ses[r] if len(ses) > 0 else -1)


@njit(parallel=True, fastmath=False, cache=True)
def rows_mean_score(qu, qi, bu, bi, u, i, qt, bt, t, qs, bs, ses):
    """Row n's score averaged over the saved samples, read straight from the stacked factors (each
    scaled by 1/sqrt(S), so a full-width dot product is the samples' mean): <qu[u_n], qi[i_n]> +
    bu[u_n] + bi[i_n] (+ bt[t_n] + <qt[t_n], qu[u_n] + qi[i_n]> when ``t`` is not empty; + bs[c] +
    <qs[c], qu[u_n] + qi[i_n] (+ qt[t_n])> with c = ses[n] when ``ses`` is not empty and ses[n] >= 0).
    No gathered copies of the S·k-wide rows."""
    n = len(u)
    width = qu.shape[1]
    out = np.empty(n)
    for r in prange(n):
        a, b, c, e = _row_codes(u, i, t, ses, r)
        dot, dt, ds = _row_dots(qu, qi, qt, qs, a, b, c, e, 0, width)
        score = dot + np.float64(bu[a]) + np.float64(bi[b])
        if c >= 0:
            score += np.float64(bt[c]) + dt
        if e >= 0:
            score += np.float64(bs[e]) + ds
        out[r] = score
    return out


@njit(parallel=True, fastmath=False, cache=True)
def ordinal_rows_expected(qu, qi, bu, bi, u, i, qt, bt, t, qs, bs, ses, cuts, levels):
    """Row n's expected rating averaged over the S saved samples, read straight from the stacked
    factors (no gathered copies): eta[n, s] = S <qu[u_n, s], qi[i_n, s]> + bu[u_n, s] + bi[i_n, s]
    (+ bt[t_n, s] + S <qt[t_n, s], qu[u_n, s] + qi[i_n, s]> when ``t`` is not empty; + bs[c, s] +
    S <qs[c, s], qu[u_n, s] + qi[i_n, s] (+ qt[t_n, s])> with c = ses[n] when ``ses`` is not empty and
    ses[n] >= 0), each row of ``qu``/``qi``/``qt``/``qs`` holding S blocks of k; as
    ``_ordinal.expected_rows`` (its NumPy reference)."""
    n = len(u)
    S, K1 = cuts.shape
    k = qu.shape[1] // S
    out = np.empty(n)
    for r in prange(n):
        a, b, c, e = _row_codes(u, i, t, ses, r)
        acc = 0.0
        for s in range(S):
            dot, dt, ds = _row_dots(qu, qi, qt, qs, a, b, c, e, s * k, (s + 1) * k)
            eta = S * dot + np.float64(bu[a, s]) + np.float64(bi[b, s])
            if c >= 0:
                eta += np.float64(bt[c, s]) + S * dt
            if e >= 0:
                eta += np.float64(bs[e, s]) + S * ds
            ex = levels[0]
            for m in range(K1):
                ex += (levels[m + 1] - levels[m]) * 0.5 * math.erfc((cuts[s, m] - eta) * _INV_SQRT_2)
            acc += ex
        out[r] = acc / S
    return out


# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9), refined below
_QA = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
       -3.066479806614716e+01, 2.506628277459239e+00)
_QB = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
       -1.328068155288572e+01)
_QC = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
       4.374664141464968e+00, 2.938163982698783e+00)
_QD = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
_SQRT_2PI = np.sqrt(2.0 * np.pi)


@njit(cache=True)
def _ndtri(p):
    """Φ⁻¹(p) for 0 < p < 1: Acklam's approximation, then one Halley step on Φ(x) − p, done in the
    lower tail (p > 1/2 by symmetry, 1 − p being exact there) so the step has no cancellation."""
    if p > 0.5:
        return -_ndtri(1.0 - p)
    if p < 0.02425:
        q = np.sqrt(-2.0 * np.log(p))
        x = ((((((_QC[0] * q + _QC[1]) * q + _QC[2]) * q + _QC[3]) * q + _QC[4]) * q + _QC[5])
             / ((((_QD[0] * q + _QD[1]) * q + _QD[2]) * q + _QD[3]) * q + 1.0))
    else:
        q = p - 0.5
        r = q * q
        x = (((((((_QA[0] * r + _QA[1]) * r + _QA[2]) * r + _QA[3]) * r + _QA[4]) * r + _QA[5]) * q)
             / (((((_QB[0] * r + _QB[1]) * r + _QB[2]) * r + _QB[3]) * r + _QB[4]) * r + 1.0))
    e = 0.5 * math.erfc(-x * _INV_SQRT_2) - p
    u = e * _SQRT_2PI * np.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


@njit(parallel=True, fastmath=False, cache=True)
def ordinal_latent(y, resid, cut, cls, u):
    """Albert & Chib's latent step in place: with eta = y − resid (the FM's scores), draw every
    y_n ~ N(eta_n, 1) truncated to its class's interval by the inverse CDF from the uniforms ``u``,
    mirrored in the upper tail, and set resid = y − eta: the arithmetic of
    :func:`latentrec.models.bayesian._ordinal.sample_latent` (its NumPy reference)."""
    n = len(y)
    K = len(cut) + 1
    for i in prange(n):
        eta = y[i] - resid[i]
        k = cls[i]
        lo = cut[k - 1] - eta if k > 0 else -np.inf
        hi = cut[k] - eta if k < K - 1 else np.inf
        upper = lo > 0.0
        if upper:
            a, b = -hi, -lo
        else:
            a, b = lo, hi
        pa = 0.5 * math.erfc(-a * _INV_SQRT_2) if a > -np.inf else 0.0
        pb = 0.5 * math.erfc(-b * _INV_SQRT_2) if b < np.inf else 1.0
        v = min(max(pa + u[i] * (pb - pa), 1e-300), 1.0 - 1e-16)
        x = min(max(_ndtri(v), a), b)
        if upper:
            x = -x
        y[i] = eta + x
        resid[i] = x


@njit(parallel=True, fastmath=False, cache=True)
def ordinal_expected(eta, cuts, levels):
    """Row n's expected rating averaged over the samples s: (1/S) Σ_s Σ_k levels_k P(k | eta[n, s],
    cuts[s]), for ``eta`` (n, S) and ``cuts`` (S, K − 1); as ``_ordinal.expected_rating`` (its reference)."""
    n, S = eta.shape
    K1 = cuts.shape[1]
    out = np.empty(n)
    for i in prange(n):
        acc = 0.0
        for s in range(S):
            ex = levels[0]
            for k in range(K1):
                ex += (levels[k + 1] - levels[k]) * 0.5 * math.erfc((cuts[s, k] - eta[i, s]) * _INV_SQRT_2)
            acc += ex
        out[i] = acc / S
    return out
