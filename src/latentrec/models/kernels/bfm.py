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

Parallelism: the row and entity passes are ``prange`` loops; the features of a
one-hot group (every entity has at most one of them: ids, day, gender, ...)
touch disjoint entities and are drawn in parallel, those of a multi-hot group
(implicit feedback, genres) in order. All random numbers are drawn beforehand
(``z``) so results do not depend on the thread count.
"""

from __future__ import annotations

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


@njit(cache=True)
def _linear_feature(j, fe_ptr, fe_idx, fe_val, ent_lo, cnt, r0, w, L, mu, lam, alpha, z):
    h2 = 0.0
    he = 0.0
    for p in range(fe_ptr[j], fe_ptr[j + 1]):
        t = fe_idx[p] - ent_lo
        x = fe_val[p]
        h2 += x * x * cnt[t]
        he += x * r0[t]
    new = _draw(h2, he, w[j], mu, lam, alpha, z)
    d = new - w[j]
    w[j] = new
    for p in range(fe_ptr[j], fe_ptr[j + 1]):
        t = fe_idx[p] - ent_lo
        x = fe_val[p]
        r0[t] -= d * x * cnt[t]
        L[fe_idx[p]] += d * x


@njit(parallel=True, fastmath=False, cache=True)
def sample_linear(r, ent_lo, ent_hi, g_lo, g_hi, g_start, g_onehot, idx, fe_ptr, fe_idx, fe_val,
                  er_ptr, er_rows, w, L, resid, mu_w, lam_w, alpha, z):
    """Draw the linear weights ``w_j`` of relation ``r`` (groups ``g_lo .. g_hi - 1``) and
    bring ``L`` and the residuals up to date. ``z``: one standard normal per feature."""
    n_e = ent_hi - ent_lo
    cnt = np.empty(n_e)
    r0 = np.empty(n_e)
    l_old = L[ent_lo:ent_hi].copy()
    for t in prange(n_e):
        e = ent_lo + t
        s = 0.0
        for p in range(er_ptr[e], er_ptr[e + 1]):
            s += resid[er_rows[p]]
        cnt[t] = er_ptr[e + 1] - er_ptr[e]
        r0[t] = s
    for g in range(g_lo, g_hi):
        if g_onehot[g]:
            for j in prange(g_start[g], g_start[g + 1]):
                _linear_feature(j, fe_ptr, fe_idx, fe_val, ent_lo, cnt, r0, w, L, mu_w[g], lam_w[g], alpha, z[j])
        else:
            for j in range(g_start[g], g_start[g + 1]):
                _linear_feature(j, fe_ptr, fe_idx, fe_val, ent_lo, cnt, r0, w, L, mu_w[g], lam_w[g], alpha, z[j])
    n = idx.shape[0]
    for i in prange(n):
        e = idx[i, r]
        if e >= 0:
            resid[i] -= L[e] - l_old[e - ent_lo]


@njit(cache=True)
def _factor_feature(j, f, fe_ptr, fe_idx, fe_val, ent_lo, cnt, s1, s2, r0, r1, ds, V, Q, mu, lam, alpha, z):
    """Draw v_jf: h_n = x (A(n) + c) for the rows of each entity carrying feature j, with c the
    entity's factor-f sum without feature j; keeps r0, r1, Q and ``ds`` (the change of the
    entities' sum of (v x)^2) exact."""
    vj = V[j, f]
    h2 = 0.0
    he = 0.0
    for p in range(fe_ptr[j], fe_ptr[j + 1]):
        e = fe_idx[p]
        t = e - ent_lo
        x = fe_val[p]
        c = Q[e, f] - vj * x
        h2 += x * x * (s2[t] + 2.0 * c * s1[t] + cnt[t] * c * c)
        he += x * (r1[t] + c * r0[t])
    new = _draw(h2, he, vj, mu, lam, alpha, z)
    d = new - vj
    V[j, f] = new
    dsq = new * new - vj * vj
    for p in range(fe_ptr[j], fe_ptr[j + 1]):
        e = fe_idx[p]
        t = e - ent_lo
        x = fe_val[p]
        c = Q[e, f] - vj * x
        r0[t] -= d * x * (s1[t] + cnt[t] * c)
        r1[t] -= d * x * (s2[t] + c * s1[t])
        ds[t] += x * x * dsq
        Q[e, f] += d * x


@njit(parallel=True, fastmath=False, cache=True)
def factor_row_sums(idx, Q, f, P):
    """``P[n] = sum_r Q[idx[n, r], f]``: every row's factor-f sum over its relations."""
    n, n_rel = idx.shape
    for i in prange(n):
        t = 0.0
        for r in range(n_rel):
            e = idx[i, r]
            if e >= 0:
                t += Q[e, f]
        P[i] = t


@njit(parallel=True, fastmath=False, cache=True)
def sample_factor(r, f, ent_lo, ent_hi, g_lo, g_hi, g_start, g_onehot, idx,
                  fe_ptr, fe_idx, fe_val, er_ptr, er_rows, V, Q, S, P, resid, mu_v, lam_v, alpha, z):
    """Draw column ``f`` of ``V`` for relation ``r``'s features and bring ``Q``, ``S``, the rows'
    factor sums ``P`` (see :func:`factor_row_sums`) and the residuals up to date.
    ``mu_v``/``lam_v``: this factor's prior per group; ``z``: one standard normal per feature."""
    n_e = ent_hi - ent_lo
    cnt = np.empty(n_e)
    s1 = np.empty(n_e)
    s2 = np.empty(n_e)
    r0 = np.empty(n_e)
    r1 = np.empty(n_e)
    q_old = np.empty(n_e)
    ds = np.zeros(n_e)
    for t in prange(n_e):
        e = ent_lo + t
        q = Q[e, f]
        a1 = 0.0
        a2 = 0.0
        b0 = 0.0
        b1 = 0.0
        for p in range(er_ptr[e], er_ptr[e + 1]):
            i = er_rows[p]
            a = P[i] - q  # the other relations' part of row i
            a1 += a
            a2 += a * a
            b0 += resid[i]
            b1 += resid[i] * a
        cnt[t] = er_ptr[e + 1] - er_ptr[e]
        s1[t] = a1
        s2[t] = a2
        r0[t] = b0
        r1[t] = b1
        q_old[t] = q
    for g in range(g_lo, g_hi):
        if g_onehot[g]:
            for j in prange(g_start[g], g_start[g + 1]):
                _factor_feature(j, f, fe_ptr, fe_idx, fe_val, ent_lo, cnt, s1, s2, r0, r1, ds, V, Q,
                                mu_v[g], lam_v[g], alpha, z[j])
        else:
            for j in range(g_start[g], g_start[g + 1]):
                _factor_feature(j, f, fe_ptr, fe_idx, fe_val, ent_lo, cnt, s1, s2, r0, r1, ds, V, Q,
                                mu_v[g], lam_v[g], alpha, z[j])
    dq = np.empty(n_e)
    dc = np.empty(n_e)
    for t in prange(n_e):
        e = ent_lo + t
        q = Q[e, f]
        dq[t] = q - q_old[t]
        dc[t] = 0.5 * (q * q - q_old[t] * q_old[t]) - 0.5 * ds[t]
        S[e] += ds[t]
    n = idx.shape[0]
    for i in prange(n):
        e = idx[i, r]
        if e >= 0:
            t = e - ent_lo
            resid[i] -= (P[i] - q_old[t]) * dq[t] + dc[t]
            P[i] += dq[t]
