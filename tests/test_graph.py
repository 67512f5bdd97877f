"""RP3beta: W against a dense NumPy reference, its parameters, the contract."""

import numpy as np
import pytest

import latentrec as lr
from latentrec.models import RP3beta
from model_suite import ModelSuite


class TestRP3beta(ModelSuite):
    fold_in_is_exact = True  # scores are x_u W
    model_factory = staticmethod(lambda: RP3beta(alpha=1.0, beta=0.6, n_neighbors=100))
    task = "implicit"
    quality = 0.195  # Popularity 0.136, EASE 0.2075, RP3beta 0.203 on this split
    varied_params = {"alpha": 0.5, "beta": 0.0, "n_neighbors": 10, "normalize": False}


def _reference(X, alpha, beta, k, normalize):
    """Dense W: (P_iu^a @ P_ui^a) / pop^beta, diagonal dropped, top-k per row, rows summing to 1."""
    p_ui = X / np.maximum(X.sum(1, keepdims=True), 1e-30)
    p_iu = X.T / np.maximum(X.T.sum(1, keepdims=True), 1e-30)
    w = (p_iu ** alpha) @ (p_ui ** alpha)
    pop = (X > 0).sum(0).astype(float)
    w = w / np.where(pop > 0, pop, 1.0)[None, :] ** beta
    np.fill_diagonal(w, 0.0)
    out = np.zeros_like(w)
    for r in range(len(w)):
        top = np.argsort(-w[r], kind="stable")[:k]
        top = top[w[r, top] > 0]
        out[r, top] = w[r, top]
    if normalize:
        out /= np.maximum(out.sum(1, keepdims=True), 1e-30)
    return out


@pytest.mark.parametrize("alpha,beta,k,normalize", [(1.0, 0.0, 500, False), (0.7, 0.4, 20, True)])
def test_matches_dense_reference(implicit_data, alpha, beta, k, normalize):
    model = RP3beta(alpha=alpha, beta=beta, n_neighbors=k, normalize=normalize, block_size=64).fit(implicit_data)
    X = model.seen_.toarray().astype(np.float64)
    ref = _reference(X, alpha, beta, k, normalize)
    got = model.item_weights_.toarray()
    # ties at the k-th entry may keep a different item of equal weight: compare row sums and values
    np.testing.assert_allclose(np.sort(got, axis=1), np.sort(ref, axis=1), rtol=1e-4, atol=1e-7)
    assert np.all(np.diff(model.item_weights_.indptr) <= k)
    assert np.all(model.item_weights_.diagonal() == 0)


def test_plain_p3_is_a_probability_walk(implicit_data):
    # alpha = 1, beta = 0, all neighbours, diagonal included: W = P_iu P_ui is row-stochastic;
    # dropping the diagonal leaves each row summing to 1 - W_ii
    model = RP3beta(alpha=1.0, beta=0.0, n_neighbors=10**6, normalize=False).fit(implicit_data)
    X = model.seen_.toarray().astype(np.float64)
    full = (X.T / X.T.sum(1, keepdims=True)) @ (X / X.sum(1, keepdims=True))
    np.testing.assert_allclose(np.asarray(model.item_weights_.sum(1)).ravel(), 1 - np.diag(full), rtol=1e-4)


def test_bad_params_and_fold_in(implicit_data):
    with pytest.raises(lr.ModelError, match="alpha must be"):
        RP3beta(alpha=0.0).fit(implicit_data)
    with pytest.raises(lr.ModelError, match="n_neighbors must be"):
        RP3beta(n_neighbors=0).fit(implicit_data)
    model = RP3beta().fit(implicit_data)  # fold-in reproducing a fitted user: the shared suite
    with pytest.raises(lr.DataError):
        model.recommend_for_interactions(model.items_.ids[:2], [-1.0, 1.0])
