"""EASE: the closed form against a NumPy reference, memory refusal, the contract."""

import warnings

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.errors import LatentrecWarning
from latentrec.models.linear import EASE, ease_memory_gb
from model_suite import ModelSuite


class TestEASE(ModelSuite):
    fold_in_is_exact = True  # scores are x_u W
    model_factory = staticmethod(lambda: EASE(regularization=500.0))
    task = "implicit"
    quality = 0.19  # Popularity reaches 0.136 on this split, EASE 0.2075
    varied_params = {"regularization": 5.0}


def _reference(X, lam):
    G = X.T @ X + lam * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    return np.eye(X.shape[1]) - P / np.diag(P)[None, :]


def test_matches_numpy_closed_form_and_its_constraint(implicit_data):
    model = EASE(regularization=20.0).fit(implicit_data)
    X = model.seen_.toarray().astype(np.float64)
    ref = _reference(X, 20.0)
    np.testing.assert_allclose(np.diag(ref), 0.0, atol=1e-10)
    np.testing.assert_allclose(model.item_weights_, ref, rtol=1e-3, atol=1e-5)
    # the stationarity condition of the constrained ridge problem holds off the diagonal
    G = X.T @ X
    grad = G @ ref - G + 20.0 * ref
    off = ~np.eye(len(ref), dtype=bool)
    assert np.abs(grad[off]).max() < 1e-6 * np.abs(G).max()


def test_scores_and_predict_agree(implicit_data):
    model = EASE(regularization=50.0).fit(implicit_data)
    u = np.array([0, 3, 3, 10], dtype=np.int32)
    i = np.array([1, 2, 50, 7], dtype=np.int32)
    dense = model._score_block(u)
    np.testing.assert_allclose(model._predict_codes(u, i), dense[np.arange(4), i], rtol=1e-5, atol=1e-6)


def test_the_memory_estimate_bounds_the_measured_peak():
    import tracemalloc

    data = lr.synthetic_implicit(n_users=400, n_items=600, n_interactions=40_000, random_state=0)  # a dense Gram
    tracemalloc.start()
    try:
        EASE().fit(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.4 * ease_memory_gb(600) * 2**30 < peak <= ease_memory_gb(600) * 2**30


def test_refuses_and_warns_on_memory():
    assert ease_memory_gb(2 * 27_000) == pytest.approx(4 * ease_memory_gb(27_000))
    frame = pd.DataFrame({"user": np.arange(300) % 7, "item": np.arange(300)})
    with pytest.raises(lr.ModelError, match="max_memory_gb"):
        EASE(max_memory_gb=1e-6).fit(frame)
    with pytest.warns(LatentrecWarning, match="GiB"):
        EASE(max_memory_gb=ease_memory_gb(300) * 1.5).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EASE().fit(frame)


def test_bad_input(implicit_data):
    with pytest.raises(lr.DataError, match=">= 0"):
        EASE().fit(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [1.0, -1.0]}))
    with pytest.raises(lr.ModelError, match="regularization"):
        EASE(regularization=0).fit(implicit_data)
    model = EASE().fit(implicit_data)
    ids, _ = model.recommend_for_interactions(model.items_.ids[:4], n=5)
    assert not set(ids) & set(model.items_.ids[:4])
    with pytest.raises(lr.DataError):
        model.recommend_for_interactions(model.items_.ids[:2], [np.inf, 1.0])
