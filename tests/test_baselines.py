import numpy as np
import pytest

import latentrec as lr
from latentrec.models.baselines import Biases, GlobalMean, ItemMean, Popularity, UserItemMean, UserMean
from model_suite import ModelSuite


class TestBiases(ModelSuite):
    checkerboard = False  # no personal signal: every user gets the same ranking
    model_factory = staticmethod(lambda: Biases())
    varied_params = {"item_damping": 0.0, "user_damping": 100.0, "n_epochs": 1}
    quality = 0.95

    def test_matches_closed_form_with_zero_damping(self):
        # one user/item structure with exact additive biases is recovered with no damping
        rng = np.random.default_rng(0)
        bu, bi = rng.normal(size=20), rng.normal(size=15)
        u, i = np.meshgrid(np.arange(20), np.arange(15), indexing="ij")
        r = 3.0 + bu[u.ravel()] + bi[i.ravel()]
        model = Biases(item_damping=0, user_damping=0, n_epochs=50).fit(
            lr.Interactions.from_arrays(u.ravel(), i.ravel(), r))
        np.testing.assert_allclose(model.predict(np.c_[u.ravel(), i.ravel()]), r, atol=1e-4)

    def test_bad_damping(self, ratings):
        with pytest.raises(lr.ModelError, match="item_damping must be a number >= 0"):
            Biases(item_damping=-1).fit(ratings)


class TestUserMean(ModelSuite):
    checkerboard = False  # no personal signal: every user gets the same ranking
    model_factory = staticmethod(lambda: UserMean())
    varied_params = {"damping": 5.0}


class TestItemMean(ModelSuite):
    checkerboard = False  # no personal signal: every user gets the same ranking
    model_factory = staticmethod(lambda: ItemMean())
    varied_params = {"damping": 5.0}


class TestUserItemMean(ModelSuite):
    checkerboard = False  # no personal signal: every user gets the same ranking
    model_factory = staticmethod(lambda: UserItemMean())
    varied_params = {"damping": 5.0}


class TestGlobalMean(ModelSuite):
    checkerboard = False  # no personal signal: every user gets the same ranking
    model_factory = staticmethod(lambda: GlobalMean())


class TestPopularity(ModelSuite):
    checkerboard = False  # no personal signal: every user gets the same ranking
    model_factory = staticmethod(lambda: Popularity())
    task = "implicit"
    quality = 0.02


def test_means_by_hand():
    data = lr.Interactions.from_arrays([1, 1, 2], ["a", "b", "a"], [4.0, 2.0, 5.0])
    assert UserMean().fit(data).predict(np.array([[1, "a"], [2, "b"]], dtype=object)).tolist() == [3.0, 5.0]
    assert ItemMean().fit(data).predict(np.array([[1, "a"], [2, "b"]], dtype=object)).tolist() == [4.5, 2.0]
    uim = UserItemMean().fit(data)
    np.testing.assert_allclose(uim.predict(np.array([[1, "a"], [9, "b"], [9, "zz"]], dtype=object)), [3.75, (11 / 3 + 2.0) / 2, 11 / 3], rtol=1e-6)
