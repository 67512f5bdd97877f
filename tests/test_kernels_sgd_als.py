"""Explicit-factorisation kernels against plain NumPy / Python references on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from latentrec._util import balanced_bounds
from latentrec.models.kernels import als as als_kern
from latentrec.models.kernels import sgd as sgd_kern


def _tiny(seed=0, n_users=12, n_items=9, n=60, k=4):
    rng = np.random.default_rng(seed)
    cells = rng.choice(n_users * n_items, size=n, replace=False)
    u = (cells // n_items).astype(np.int32)
    i = (cells % n_items).astype(np.int32)
    r = rng.integers(1, 6, n).astype(np.float32)
    P = rng.normal(0, 0.1, (n_users, k)).astype(np.float32)
    Q = rng.normal(0, 0.1, (n_items, k)).astype(np.float32)
    bu = rng.normal(0, 0.1, n_users).astype(np.float32)
    bi = rng.normal(0, 0.1, n_items).astype(np.float32)
    return rng, u, i, r, P, Q, bu, bi


# ---------------------------------------------------------------- references
def sgd_reference(u, i, r, P, Q, bu, bi, mu, lr, reg, reg_b, biased):
    """One SGD pass, one rating at a time, in float64."""
    P, Q, bu, bi = (a.astype(np.float64) for a in (P, Q, bu, bi))
    sq = 0.0
    for t in range(len(u)):
        a, b = u[t], i[t]
        pred = P[a] @ Q[b] + ((mu + bu[a] + bi[b]) if biased else 0.0)
        e = r[t] - pred
        sq += e * e
        if biased:
            bu[a] += lr * (e - reg_b * bu[a])
            bi[b] += lr * (e - reg_b * bi[b])
        pa = P[a].copy()
        P[a] += lr * (e * Q[b] - reg * pa)
        Q[b] += lr * (e * pa - reg * Q[b])
    return P, Q, bu, bi, sq


def svdpp_reference(indptr, indices, ratings, order, P, Q, Y, bu, bi, mu, lr, reg, reg_b):
    """Koren (2008) / Surprise SVDpp: the implicit sum recomputed and every y_j updated per rating."""
    P, Q, Y, bu, bi = (a.astype(np.float64) for a in (P, Q, Y, bu, bi))
    sq = 0.0
    for u in order:
        items = indices[indptr[u]:indptr[u + 1]]
        if len(items) == 0:
            continue
        c = 1.0 / np.sqrt(len(items))
        for jj in range(indptr[u], indptr[u + 1]):
            i, r = indices[jj], ratings[jj]
            z = c * Y[items].sum(axis=0)
            e = r - (mu + bu[u] + bi[i] + Q[i] @ (P[u] + z))
            sq += e * e
            bu[u] += lr * (e - reg_b * bu[u])
            bi[i] += lr * (e - reg_b * bi[i])
            pu, qi = P[u].copy(), Q[i].copy()
            P[u] += lr * (e * qi - reg * pu)
            Q[i] += lr * (e * (pu + z) - reg * qi)
            Y[items] += lr * (e * c * qi[None, :] - reg * Y[items])
    return P, Q, Y, bu, bi, sq


def als_reference(R, Y, yb, mu, reg, reg_b, biased):
    """Every row's [p, b] by numpy.linalg.solve of its regularised normal equations."""
    k = Y.shape[1]
    X = np.zeros((R.shape[0], k))
    xb = np.zeros(R.shape[0])
    for u in range(R.shape[0]):
        cols, vals = R.indices[R.indptr[u]:R.indptr[u + 1]], R.data[R.indptr[u]:R.indptr[u + 1]]
        if len(cols) == 0:
            continue
        Z = Y[cols].astype(np.float64)
        t = vals.astype(np.float64)
        lam = np.full(k, reg * len(cols))
        if biased:
            Z = np.c_[Z, np.ones(len(cols))]
            t = t - mu - yb[cols]
            lam = np.r_[lam, reg_b * len(cols)]
        x = np.linalg.solve(Z.T @ Z + np.diag(lam), Z.T @ t)
        X[u] = x[:k]
        if biased:
            xb[u] = x[k]
    return X, xb


# ---------------------------------------------------------------- agreement tests
@pytest.mark.parametrize("biased", [True, False])
def test_sgd_epoch_matches_reference(biased):
    _, u, i, r, P, Q, bu, bi = _tiny()
    mu = np.float32(3.0 if biased else 0.0)
    args = (np.float32(0.05), np.float32(0.02), np.float32(0.01))
    ref = sgd_reference(u, i, r, P, Q, bu, bi, float(mu), *map(float, args), biased)
    P2, Q2, bu2, bi2 = P.copy(), Q.copy(), bu.copy(), bi.copy()
    sq = sgd_kern.sgd_epoch(u, i, r, P2, Q2, bu2, bi2, mu, *args, biased, 1)
    for got, want in zip((P2, Q2, bu2, bi2), ref[:4]):
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert sq.shape == (1,)
    np.testing.assert_allclose(sq[0], ref[4], rtol=1e-5)
    if not biased:
        np.testing.assert_array_equal(bu2, bu)  # biases untouched by the plain model


def test_sgd_epoch_parallel_chunks_cover_every_row():
    # with several chunks (Hogwild) every row is still visited once: the error sum matches one
    # pass when the learning rate is 0 (no updates, so the order and the races do not matter)
    _, u, i, r, P, Q, bu, bi = _tiny(n=90)
    mu = np.float32(3.0)
    zero = np.float32(0.0)
    sq1 = sgd_kern.sgd_epoch(u, i, r, P.copy(), Q.copy(), bu.copy(), bi.copy(), mu, zero, zero, zero, True, 1)
    sq4 = sgd_kern.sgd_epoch(u, i, r, P.copy(), Q.copy(), bu.copy(), bi.copy(), mu, zero, zero, zero, True, 4)
    np.testing.assert_allclose(sq4.sum(), sq1.sum(), rtol=1e-6)
    want = np.sum((r - (mu + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i]))) ** 2)
    np.testing.assert_allclose(sq1.sum(), want, rtol=1e-5)


def test_sgd_divergence_makes_the_loss_non_finite():
    _, u, i, r, P, Q, bu, bi = _tiny()
    sq = 0.0
    for _ in range(30):
        sq = sgd_kern.sgd_epoch(u, i, r * 1e3, P, Q, bu, bi, np.float32(3.0), np.float32(50.0),
                                np.float32(0.0), np.float32(0.0), True, 1).sum()
    assert not np.isfinite(sq)


def test_gather_rows():
    rng, u, i, r, *_ = _tiny()
    perm = rng.permutation(len(u))
    out = np.empty_like(u), np.empty_like(i), np.empty_like(r)
    sgd_kern.gather_rows(perm, u, i, r, *out)
    np.testing.assert_array_equal(out[0], u[perm])
    np.testing.assert_array_equal(out[1], i[perm])
    np.testing.assert_array_equal(out[2], r[perm])


def test_svdpp_epoch_matches_per_rating_reference():
    rng, u, i, r, P, Q, bu, bi = _tiny(n=70)
    Y = rng.normal(0, 0.1, Q.shape).astype(np.float32)
    R = sp.csr_matrix((r, (u, i)), shape=(P.shape[0], Q.shape[0]))
    R.sort_indices()
    indptr, indices, vals = R.indptr.astype(np.int64), R.indices.astype(np.int32), R.data.astype(np.float32)
    order = rng.permutation(P.shape[0]).astype(np.int32)
    mu, lr, reg, reg_b = 3.0, 0.05, 0.03, 0.01
    ref = svdpp_reference(indptr, indices, vals, order, P, Q, Y, bu, bi, mu, lr, reg, reg_b)
    got = [a.copy() for a in (P, Q, Y, bu, bi)]
    bounds = np.array([0, len(order)], dtype=np.int64)
    sq = sgd_kern.svdpp_epoch(indptr, indices, vals, order, bounds, *got, np.float32(mu), np.float32(lr),
                              np.float32(reg), np.float32(reg_b))
    for a, b in zip(got, ref[:5]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(sq.sum(), ref[5], rtol=1e-5)


def test_implicit_sums_and_squared_error():
    rng, u, i, r, P, Q, bu, bi = _tiny()
    R = sp.csr_matrix((r, (u, i)), shape=(P.shape[0], Q.shape[0]))
    Y = rng.normal(size=Q.shape).astype(np.float32)
    z = sgd_kern.implicit_sums(R.indptr.astype(np.int64), R.indices.astype(np.int32), Y)
    counts = np.diff(R.indptr)
    want = (R.astype(bool).astype(np.float64) @ Y) / np.sqrt(np.maximum(counts, 1))[:, None]
    np.testing.assert_allclose(z, want, atol=1e-5)
    for biased in (True, False):
        sq = sgd_kern.squared_error(u, i, r, P, Q, bu, bi, np.float32(3.0), biased, 3)
        pred = np.einsum("ij,ij->i", P[u], Q[i]) + ((3.0 + bu[u] + bi[i]) if biased else 0.0)
        np.testing.assert_allclose(sq.sum(), np.sum((r - pred) ** 2), rtol=1e-5)


def test_balanced_bounds_partition():
    costs = np.array([5, 1, 1, 1, 10, 1, 1, 2, 3, 1])
    b = balanced_bounds(costs, 3)
    assert b[0] == 0 and b[-1] == len(costs) and np.all(np.diff(b) > 0)
    parts = [costs[b[j]:b[j + 1]].sum() for j in range(len(b) - 1)]
    assert max(parts) <= costs.sum() / 3 + costs.max()
    np.testing.assert_array_equal(balanced_bounds(np.zeros(0), 4), [0, 0])


def test_spd_solve_matches_numpy():
    rng = np.random.default_rng(1)
    M = rng.normal(size=(7, 7))
    A = M @ M.T + 7 * np.eye(7)
    b = rng.normal(size=7)
    x = np.empty(7)
    assert als_kern.spd_solve(A.copy(), b, x)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-9)


@pytest.mark.parametrize("case", ["negative", "singular", "nan", "near-singular"])
def test_spd_solve_reports_a_system_it_cannot_solve(case):
    """Regression (issue 16): the hand-written Cholesky replaced a non-positive pivot by 1e-12."""
    v = np.arange(1.0, 6.0)
    A = {"negative": -np.eye(5), "singular": np.outer(v, v), "nan": np.full((5, 5), np.nan),
         "near-singular": np.outer(v, v) + 1e-15 * np.eye(5)}[case]
    x = np.full(5, 7.0)
    assert not als_kern.spd_solve(A.copy(), np.ones(5), x)
    assert np.all(x == 0.0)


def check_als_sweep(R, Q, bi, X, xb, biased, n_chunks, atol):
    """One kernel sweep over the rows of R (X, xb overwritten) checked against :func:`als_reference`."""
    R.sort_indices()
    mu, reg, reg_b = 3.0, 0.1, 0.05
    want_X, want_b = als_reference(R, Q, bi, mu, reg, reg_b, biased)
    bounds = balanced_bounds(np.diff(R.indptr) + 1, n_chunks)
    als_kern.als_sweep(R.indptr.astype(np.int64), R.indices.astype(np.int32), R.data.astype(np.float32), X, xb,
                       Q, bi, np.float32(mu if biased else 0.0), reg, reg_b, biased, bounds)
    np.testing.assert_allclose(X, want_X, atol=atol)
    if biased:
        np.testing.assert_allclose(xb, want_b, atol=atol)


@pytest.mark.parametrize("biased", [True, False])
def test_als_sweep_matches_numpy_solve(biased):
    _, u, i, r, P, Q, bu, bi = _tiny(n=70)
    R = sp.csr_matrix((r, (u, i)), shape=(P.shape[0], Q.shape[0]))
    xb = bu.copy()
    check_als_sweep(R, Q, bi, P.copy(), xb, biased, n_chunks=3, atol=1e-4)
    if not biased:
        np.testing.assert_array_equal(xb, bu)


@pytest.mark.parametrize("biased", [True, False])
def test_als_sweep_long_rows_take_the_blocked_blas_path(biased):
    # row lengths on both sides of BLAS_MIN_ROW and across BLOCK boundaries, and an empty row
    lengths = [0, 3, als_kern.BLAS_MIN_ROW - 1, als_kern.BLAS_MIN_ROW, als_kern.BLOCK, 2 * als_kern.BLOCK + 17]
    rng = np.random.default_rng(5)
    n_cols, k = 2 * als_kern.BLOCK + 40, 6
    rows, cols = [], []
    for u, n in enumerate(lengths):
        rows += [u] * n
        cols += list(rng.choice(n_cols, n, replace=False))
    r = rng.uniform(1, 5, len(rows)).astype(np.float32)
    R = sp.csr_matrix((r, (rows, cols)), shape=(len(lengths), n_cols))
    Q = rng.normal(0, 0.3, (n_cols, k)).astype(np.float32)
    bi = rng.normal(0, 0.2, n_cols).astype(np.float32)
    check_als_sweep(R, Q, bi, np.ones((len(lengths), k), np.float32), np.zeros(len(lengths), np.float32), biased,
                    n_chunks=2, atol=2e-4)
