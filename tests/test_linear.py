"""EDLAE and DLAE: closed forms against NumPy references, their constraints, the contract."""

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.models import EASE
from latentrec.models.linear import DLAE, EDLAE
from model_suite import ModelSuite


class TestEDLAE(ModelSuite):
    fold_in_is_exact = True  # scores are x_u W
    model_factory = staticmethod(lambda: EDLAE(dropout=0.5, regularization=300.0))
    task = "implicit"
    quality = 0.205  # Popularity reaches 0.136 on this split, EASE 0.2075, EDLAE 0.213
    varied_params = {"dropout": 0.1, "regularization": 10.0}


class TestDLAE(ModelSuite):
    fold_in_is_exact = True  # scores are x_u W
    model_factory = staticmethod(lambda: DLAE(dropout=0.5, regularization=300.0))
    task = "implicit"
    quality = 0.205  # DLAE 0.212
    varied_params = {"dropout": 0.1, "regularization": 10.0}


def _penalty(G, p, lam):
    return p / (1 - p) * np.diag(G) + lam


def test_edlae_matches_numpy_closed_form(implicit_data):
    model = EDLAE(dropout=0.25, regularization=5.0).fit(implicit_data)
    X = model.seen_.toarray().astype(np.float64)
    G = X.T @ X
    L = np.diag(_penalty(G, 0.25, 5.0))
    P = np.linalg.inv(G + L)
    ref = np.eye(len(G)) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(model.item_weights_, ref, rtol=1e-3, atol=1e-5)
    assert np.all(np.diag(model.item_weights_) == 0)
    # stationarity of min |X - XB|^2 + |L^1/2 B|^2 s.t. diag(B) = 0, off the diagonal
    grad = G @ ref - G + L @ ref
    off = ~np.eye(len(ref), dtype=bool)
    assert np.abs(grad[off]).max() < 1e-6 * np.abs(G).max()


def test_dlae_matches_numpy_closed_form(implicit_data):
    model = DLAE(dropout=0.4, regularization=2.0).fit(implicit_data)
    X = model.seen_.toarray().astype(np.float64)
    G = X.T @ X
    ref = np.linalg.solve(G + np.diag(_penalty(G, 0.4, 2.0)), G)
    np.testing.assert_allclose(model.item_weights_, ref, rtol=1e-3, atol=1e-5)


def test_dropout_zero_is_ease(implicit_data):
    a = EDLAE(dropout=0.0, regularization=300.0).fit(implicit_data)
    b = EASE(regularization=300.0).fit(implicit_data)
    np.testing.assert_allclose(a.item_weights_, b.item_weights_, rtol=1e-5, atol=1e-7)


def test_dlae_keeps_a_shrunk_diagonal(implicit_data):
    # DLAE's B = I - (G + L)^-1 L: each item predicts itself with a weight strictly between 0 and 1,
    # smaller when the dropout penalty is larger
    weak = DLAE(dropout=0.2, regularization=1.0).fit(implicit_data)
    strong = DLAE(dropout=0.8, regularization=1.0).fit(implicit_data)
    d_weak, d_strong = np.diag(weak.item_weights_), np.diag(strong.item_weights_)
    assert np.all((d_strong > 0) & (d_strong < d_weak) & (d_weak < 1))


def test_bad_params_and_memory(implicit_data):
    with pytest.raises(lr.ModelError, match="dropout must be"):
        EDLAE(dropout=1.0).fit(implicit_data)
    with pytest.raises(lr.ModelError, match="dropout or regularization"):
        DLAE(dropout=0.0, regularization=0.0).fit(implicit_data)
    frame = pd.DataFrame({"user": np.arange(300) % 7, "item": np.arange(300)})
    with pytest.raises(lr.ModelError, match="EDLAE would need"):
        EDLAE(max_memory_gb=1e-6).fit(frame)
