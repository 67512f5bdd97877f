"""SANSA (sparse approximate EASE): exact in the dense limit, positive definite however sparse, sparse B, the
memory estimate and refusal, the contract."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import latentrec as lr
from latentrec import registry
from latentrec.models.ials import EASE, ease_memory_gb
from latentrec.models.linear.sansa import SANSA, sansa_memory_gb
from model_suite import ModelSuite


class TestSANSA(ModelSuite):
    fold_in_is_exact = True  # scores are x_u B
    model_factory = staticmethod(lambda: SANSA(regularization=500.0, gram_neighbors=20, n_neighbors=50))
    task = "implicit"
    quality = 0.19  # Popularity reaches 0.136 on this split, EASE 0.2075
    varied_params = {"regularization": 5.0, "gram_neighbors": 3, "n_neighbors": 5}


def _dense_limit(n):
    # every Gram entry kept, every B entry kept, no dropping in the factors: the exact EASE
    return SANSA(regularization=20.0, gram_neighbors=n, n_neighbors=n, drop_tolerance=0.0)


def test_dense_limit_is_ease(implicit_data):
    n = implicit_data.n_items
    ours = _dense_limit(n).fit(implicit_data)
    ease = EASE(regularization=20.0).fit(implicit_data)
    w = ours.item_weights_.toarray()
    np.testing.assert_allclose(np.diag(w), 0.0)
    np.testing.assert_allclose(w, ease.item_weights_, rtol=1e-3, atol=1e-5)


def test_sparse_gram_stays_positive_definite_and_dominates_the_exact_one(implicit_data):
    # diagonal compensation: A_sparse - A_exact = sum of a_ij (e_i - e_j)(e_i - e_j)^T over dropped pairs
    model = SANSA(regularization=1.0, gram_neighbors=1).fit(implicit_data)
    X = model.seen_.astype(np.float32)
    a, s = model._scaled_gram(X.tocsr())
    a = a.toarray()
    assert (np.count_nonzero(a, axis=0) <= 1 + 2 * implicit_data.n_items).all()
    np.testing.assert_allclose(a, a.T)
    Xd = X.toarray().astype(np.float64)
    exact = s[:, None] * (Xd.T @ Xd + 1.0 * np.eye(len(s))) * s[None, :]
    np.testing.assert_allclose(np.diag(exact), 1.0, rtol=1e-10)
    assert np.linalg.eigvalsh(a).min() > 0
    assert np.linalg.eigvalsh(a - exact).min() > -1e-8
    # compensation kept each column's total: the dropped off-diagonal mass moved to the diagonal
    np.testing.assert_allclose(a.sum(axis=0), exact.sum(axis=0), rtol=1e-6)


def test_b_is_sparse_with_zero_diagonal_and_closer_to_ease_with_more_entries(implicit_data):
    ease = EASE(regularization=100.0).fit(implicit_data).item_weights_
    errors = []
    for k in (5, 40, implicit_data.n_items):
        model = SANSA(regularization=100.0, gram_neighbors=k, n_neighbors=k).fit(implicit_data)
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
    assert sansa_memory_gb(60_000) < 4
    assert sansa_memory_gb(60_000, gram_neighbors=400) > sansa_memory_gb(60_000)
    frame = pd.DataFrame({"user": np.arange(300) % 7, "item": np.arange(300)})
    with pytest.raises(lr.ModelError, match="max_memory_gb"):
        SANSA(max_memory_gb=1e-6).fit(frame)


def test_bad_input_and_registry(implicit_data):
    with pytest.raises(lr.DataError, match=">= 0"):
        SANSA().fit(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [1.0, -1.0]}))
    with pytest.raises(lr.ModelError, match="gram_neighbors"):
        SANSA(gram_neighbors=0).fit(implicit_data)
    assert registry.model_class("sansa") is SANSA
    model = registry.create("sansa").fit(implicit_data)
    assert registry.name_of(model) == "sansa"
    ids, _ = model.recommend_for_interactions(model.items_.ids[:4], n=5)
    assert not set(ids) & set(model.items_.ids[:4])


def test_tiny_catalogues():
    one = SANSA().fit(pd.DataFrame({"user": [1, 2], "item": [5, 5]}))
    assert one.item_weights_.shape == (1, 1)
    two = SANSA().fit(pd.DataFrame({"user": [1, 1, 2], "item": [5, 6, 5]}))
    ids, _ = two.recommend([2], n=1)
    assert list(np.ma.compressed(ids[0])) == [6]
