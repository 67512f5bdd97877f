"""SparseEASE (sparse approximate EASE, neighbourhood and SANSA-style "ldl" solvers): exact in the dense
limit, local systems positive definite however few Gram entries are stored, sparse B with zero diagonal,
the memory estimate and refusal, the contract."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import latentrec as lr
from latentrec import registry
from latentrec.models.linear import EASE, ease_memory_gb
from latentrec.models.kernels.sparse_ease import local_systems
from latentrec.models.linear.sparse_ease import SparseEASE, sparse_ease_memory_gb
from model_suite import ModelSuite


class TestSparseEASE(ModelSuite):
    fold_in_is_exact = True  # scores are x_u B
    model_factory = staticmethod(lambda: SparseEASE(regularization=500.0, gram_neighbors=40, n_neighbors=30))
    task = "implicit"
    quality = 0.19  # Popularity reaches 0.136 on this split, EASE 0.2075
    varied_params = {"regularization": 5.0, "n_neighbors": 5, "gram_neighbors": 31, "solver": "ldl"}


class TestSparseEASELDL(ModelSuite):
    fold_in_is_exact = True
    model_factory = staticmethod(lambda: SparseEASE(solver="ldl", regularization=500.0, gram_neighbors=20,
                                                    n_neighbors=50))
    task = "implicit"
    quality = 0.19
    varied_params = {"regularization": 5.0, "gram_neighbors": 3, "n_neighbors": 5}


def _ridge_on_support(X, lam, j, support):
    """EASE's column j restricted to predictors ``support``: (X_N^T X_N + lam I)^-1 X_N^T x_j."""
    xn = X[:, support]
    return np.linalg.solve(xn.T @ xn + lam * np.eye(len(support)), xn.T @ X[:, j])


def test_ldl_dense_limit_is_ease(implicit_data):
    n = implicit_data.n_items
    ours = SparseEASE(solver="ldl", regularization=20.0, gram_neighbors=n, n_neighbors=n,
                      drop_tolerance=0.0).fit(implicit_data)
    ease = EASE(regularization=20.0).fit(implicit_data)
    w = ours.item_weights_.toarray()
    np.testing.assert_allclose(np.diag(w), 0.0)
    np.testing.assert_allclose(w, ease.item_weights_, rtol=1e-3, atol=1e-5)


def test_neighbourhood_dense_limit_is_ease():
    # every pair of items co-occurs, every neighbour kept: each column is EASE's full regression
    rng = np.random.default_rng(1)
    users, items = np.nonzero(rng.random((200, 30)) < 0.5)
    frame = pd.DataFrame({"user": users, "item": items, "rating": rng.integers(1, 4, len(users)).astype(float)})
    ours = SparseEASE(regularization=20.0, gram_neighbors=30, n_neighbors=30).fit(frame)
    ease = EASE(regularization=20.0).fit(frame)
    assert ours.item_weights_.nnz == 30 * 29
    np.testing.assert_allclose(ours.item_weights_.toarray(), ease.item_weights_, rtol=1e-3, atol=1e-5)


def test_neighbourhood_columns_are_ridge_regressions_on_their_support(implicit_data):
    # every Gram entry stored: column j is exactly the ridge regression of item j on its kept items
    n = implicit_data.n_items
    model = SparseEASE(regularization=30.0, gram_neighbors=n, n_neighbors=12).fit(implicit_data)
    X = model.seen_.toarray().astype(np.float64)
    w = model.item_weights_.tocsc()
    for j in (0, 7, 42, n - 1):
        support = w[:, j].indices
        assert 0 < len(support) <= 12 and j not in support
        np.testing.assert_allclose(w[support, j].toarray().ravel(), _ridge_on_support(X, 30.0, j, support),
                                   rtol=1e-3, atol=1e-6)
        # the support is the 12 items of largest scaled co-occurrence with j
        g = X.T @ X[:, j] / np.sqrt((X * X).sum(axis=0) + 30.0)
        g[j] = -np.inf
        assert set(support) <= set(np.flatnonzero(g >= np.sort(g)[-12]))


def test_local_systems_stay_positive_definite_with_missing_pairs():
    # a pair neither item stored is set to half the bound min(tau_a, tau_b) and the other half is added to
    # both diagonals: the error against any true value in [0, bound] is diagonally dominant
    rng = np.random.default_rng(0)
    X = (rng.random((60, 25)) < 0.3).astype(np.float64)
    s = 1 / np.sqrt((X * X).sum(axis=0) + 1.0)
    exact = s[:, None] * (X.T @ X + np.eye(25)) * s[None, :]
    off = exact - np.diag(np.diag(exact))
    k = 6
    codes = np.argsort(-off, axis=1, kind="stable")[:, :k].astype(np.int32)
    vals = np.take_along_axis(off, codes, axis=1).astype(np.float32)
    tau = vals[:, -1].astype(np.float64)
    rows = np.repeat(np.arange(25), k)
    t = sp.csr_matrix((vals.ravel().astype(np.float64), (rows, codes.ravel())), shape=(25, 25))
    u = t.maximum(t.T).tocsr()
    u.sort_indices()
    subs, rhs = np.empty((25, k, k)), np.empty((25, k))
    local_systems(codes, vals, k, tau, 0, 25, subs, rhs, 1)
    for j in range(25):
        nb = codes[j]
        true = exact[np.ix_(nb, nb)]
        np.testing.assert_allclose(rhs[j], exact[nb, j], rtol=1e-6)
        assert np.linalg.eigvalsh(subs[j]).min() > 0
        assert np.linalg.eigvalsh(subs[j] - true).min() > -1e-7  # dominates the true submatrix
        stored = u[nb][:, nb].toarray() != 0
        np.testing.assert_allclose(subs[j][stored], true[stored], rtol=1e-6)


def test_ldl_sparse_gram_stays_positive_definite_and_dominates_the_exact_one(implicit_data):
    # diagonal compensation: A_sparse - A_exact = sum of a_ij (e_i - e_j)(e_i - e_j)^T over dropped pairs
    model = SparseEASE(solver="ldl", regularization=1.0, gram_neighbors=1).fit(implicit_data)
    X = model.seen_.astype(np.float32).tocsr()
    a, s = model._scaled_gram(X)
    a = a.toarray()
    np.testing.assert_allclose(a, a.T)
    Xd = X.toarray().astype(np.float64)
    exact = s[:, None] * (Xd.T @ Xd + 1.0 * np.eye(len(s))) * s[None, :]
    np.testing.assert_allclose(np.diag(exact), 1.0, rtol=1e-10)
    assert np.linalg.eigvalsh(a).min() > 0
    assert np.linalg.eigvalsh(a - exact).min() > -1e-8
    np.testing.assert_allclose(a.sum(axis=0), exact.sum(axis=0), rtol=1e-6)  # dropped mass moved to the diagonal


@pytest.mark.parametrize("solver", ["neighborhood", "ldl"])
def test_b_is_sparse_with_zero_diagonal_and_closer_to_ease_with_more_entries(implicit_data, solver):
    ease = EASE(regularization=100.0).fit(implicit_data).item_weights_
    errors = []
    for k in (5, 40, implicit_data.n_items):
        model = SparseEASE(solver=solver, regularization=100.0, gram_neighbors=k, n_neighbors=k).fit(implicit_data)
        w = model.item_weights_
        assert sp.issparse(w) and w.dtype == np.float32
        assert np.diff(w.tocsc().indptr).max() <= k
        assert not np.any(w.diagonal())
        errors.append(np.linalg.norm(w.toarray() - ease) / np.linalg.norm(ease))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.05, errors


def test_memory_estimate_and_refusal():
    # the point of the model: 60k items fit in 24 GB where dense EASE's estimate does not
    assert ease_memory_gb(60_000) > 24
    assert sparse_ease_memory_gb(60_000) < 4
    assert sparse_ease_memory_gb(60_000, solver="ldl") < 4
    assert sparse_ease_memory_gb(60_000, gram_neighbors=1600) > sparse_ease_memory_gb(60_000)
    frame = pd.DataFrame({"user": np.arange(300) % 7, "item": np.arange(300)})
    with pytest.raises(lr.ModelError, match="max_memory_gb"):
        SparseEASE(max_memory_gb=1e-6).fit(frame)


def test_bad_input_and_registry(implicit_data):
    with pytest.raises(lr.DataError, match=">= 0"):
        SparseEASE().fit(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [1.0, -1.0]}))
    with pytest.raises(lr.ModelError, match="gram_neighbors"):
        SparseEASE(gram_neighbors=0).fit(implicit_data)
    with pytest.raises(lr.ModelError, match="solver"):
        SparseEASE(solver="cholmod").fit(implicit_data)
    assert registry.model_class("sparse-ease") is SparseEASE
    model = registry.create("sparse-ease").fit(implicit_data)
    assert registry.name_of(model) == "sparse-ease"
    ids, _ = model.recommend_for_interactions(model.items_.ids[:4], n=5)
    assert not set(ids) & set(model.items_.ids[:4])


@pytest.mark.parametrize("solver", ["neighborhood", "ldl"])
def test_tiny_catalogues(solver):
    one = SparseEASE(solver=solver).fit(pd.DataFrame({"user": [1, 2], "item": [5, 5]}))
    assert one.item_weights_.shape == (1, 1)
    two = SparseEASE(solver=solver).fit(pd.DataFrame({"user": [1, 1, 2], "item": [5, 6, 5]}))
    ids, _ = two.recommend([2], n=1)
    assert list(np.ma.compressed(ids[0])) == [6]
