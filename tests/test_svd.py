import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.models import TruncatedSVD
from model_suite import ModelSuite


class TestTruncatedSVD(ModelSuite):
    model_factory = staticmethod(lambda: TruncatedSVD(n_factors=5, random_state=0))
    varied_params = {"n_factors": 12}
    quality = 0.70  # UserMean: 0.745 on this split, TruncatedSVD(5): 0.677


def test_matches_dense_numpy_svd():
    # reference: centre by user means, zeros elsewhere, full dense SVD truncated to k
    data = lr.synthetic_ratings(n_users=60, n_items=40, n_ratings=1200, random_state=1)
    model = TruncatedSVD(n_factors=4, random_state=0).fit(data)
    R = data.to_csr().toarray().astype(np.float64)
    mask = R != 0
    means = R.sum(1) / mask.sum(1)
    centred = np.where(mask, R - means[:, None], 0.0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    recon = means[:, None] + (u[:, :4] * s[:4]) @ vt[:4]
    np.testing.assert_allclose(model.singular_values_, s[:4], rtol=1e-4)
    full = model.user_factors_ @ model.item_factors_.T + (model.global_mean_ + model.user_bias_)[:, None]
    np.testing.assert_allclose(full, recon, atol=1e-4)
    pairs = pd.DataFrame({"user": data.users.ids[[0, 5]], "item": data.items.ids[[3, 7]]})
    np.testing.assert_allclose(model.predict(pairs), np.clip(recon[[0, 5], [3, 7]], 1, 5), atol=1e-4)


def test_recovers_planted_rank_structure():
    # a dense exact rank-2 matrix (after user centring) is reproduced exactly with k = 2
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(30, 2)), rng.normal(size=(20, 2))
    M = P @ Q.T
    M -= M.mean(1, keepdims=True)
    M += 3.0
    u, i = np.meshgrid(np.arange(30), np.arange(20), indexing="ij")
    data = lr.Interactions.from_arrays(u.ravel(), i.ravel(), M.ravel(), rating_scale=(-100, 100))
    model = TruncatedSVD(n_factors=2, random_state=0).fit(data)
    np.testing.assert_allclose(model.predict(np.c_[u.ravel(), i.ravel()]), M.ravel(), atol=1e-4)
    assert model.history_[-1]["train_loss"] < 1e-8


def test_fallbacks_documented():
    data = lr.Interactions.from_arrays([1, 1, 2, 3, 3], [1, 2, 2, 1, 3], [5.0, 3.0, 2.0, 4.0, 4.0])
    model = TruncatedSVD(n_factors=1, random_state=0).fit(data)
    out = model.predict(pd.DataFrame({"user": [1, 99], "item": [99, 1]}))
    assert out[0] == pytest.approx(4.0)  # known user, unknown item: the user's mean
    assert out[1] == pytest.approx(18 / 5)  # unknown user: the global mean


def test_similar_items_uses_item_factors(ratings):
    model = TruncatedSVD(n_factors=5, random_state=0).fit(ratings)
    ids, scores = model.similar_items(ratings.items.ids[0], n=3)
    v = model.item_factors_ / np.linalg.norm(model.item_factors_, axis=1, keepdims=True)
    sims = v[1:] @ v[0]
    best = np.argsort(-sims)[:3] + 1
    np.testing.assert_array_equal(ids, ratings.items.ids[best])


@pytest.mark.parametrize("params,message", [
    ({"n_factors": 0}, "n_factors must be an integer >= 1"),
    ({"n_factors": 2.5}, "n_factors must be an integer"),
    ({"n_factors": 10_000}, "n_factors must be < min\\(n_users, n_items\\)"),
])
def test_bad_params(params, message, ratings):
    with pytest.raises(lr.ModelError, match=message):
        TruncatedSVD(**params).fit(ratings)
