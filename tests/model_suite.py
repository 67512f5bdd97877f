"""The shared model test suite: every model's tests inherit :class:`ModelSuite`.

A subclass sets ``model_factory`` (a callable returning a fresh, small, fast
model) and ``task``; optionally ``varied_params`` (parameter -> an alternative
value that must change the model's output) and ``quality`` (a ceiling on test
RMSE for explicit models / a floor on NDCG@10 for implicit ones on the planted
synthetic data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import latentrec as lr
from latentrec.errors import UnknownIdError
from latentrec.split import random_split


class ModelSuite:
    model_factory = None
    task = "explicit"
    varied_params: dict = {}
    quality: float | None = None
    #: models whose refit is not bit-identical (e.g. multi-threaded SGD) set a tolerance
    refit_atol: float = 0.0

    # ------------------------------------------------------------ data
    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        if cls.task == "explicit":
            return lr.synthetic_ratings(n_users=300, n_items=200, n_ratings=12_000, random_state=3)
        return lr.synthetic_implicit(n_users=300, n_items=200, n_interactions=12_000, random_state=3)

    @pytest.fixture(scope="class")
    @classmethod
    def split(cls, data):
        return random_split(data, test_size=0.2, random_state=0)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, split):
        return cls.model_factory().fit(split[0])

    # ------------------------------------------------------------ contract
    def test_fit_returns_self_and_predicts_shape(self, split):
        model = self.model_factory()
        assert model.fit(split[0]) is model
        pred = model.predict(split[1])
        assert pred.shape == (len(split[1]),)
        assert np.all(np.isfinite(pred))

    def test_unfitted_raises_not_fitted(self, split):
        with pytest.raises(NotFittedError):
            self.model_factory().predict(split[1])

    def test_clone_and_params_round_trip(self):
        model = self.model_factory()
        params = model.get_params()
        twin = clone(model)
        assert twin.get_params() == params
        twin.set_params(**params)
        assert twin.get_params() == params

    def test_refit_is_identical(self, split):
        a = self.model_factory().fit(split[0]).predict(split[1])
        b = self.model_factory().fit(split[0]).predict(split[1])
        np.testing.assert_allclose(a, b, atol=self.refit_atol, rtol=0)

    def test_scipy_sparse_user_item_matrix_as_input(self, split):
        # issue 17: ImplicitALS().fit(csr) failed with "got shape ()"; row i is user i, column j item j
        train, test = split
        assert np.array_equal(train.users.ids, np.arange(train.n_users))  # the planted data's ids are codes
        a = self.model_factory().fit(train.to_csr().tocsc())  # any sparse format
        b = self.model_factory().fit(train[np.lexsort((train.item_codes, train.user_codes))])  # the matrix's order
        np.testing.assert_allclose(a.predict(test), b.predict(test), atol=max(self.refit_atol, 1e-5), rtol=1e-5)

    def test_fit_forgets_previous_fit(self, split, data):
        model = self.model_factory().fit(data)
        model.fit(split[0])
        fresh = self.model_factory().fit(split[0])
        np.testing.assert_allclose(model.predict(split[1]), fresh.predict(split[1]), atol=self.refit_atol)

    def test_predictions_within_rating_scale(self, fitted, split):
        if self.task != "explicit":
            pytest.skip("implicit scores have no scale")
        lo, hi = split[0].rating_scale
        pred = fitted.predict(split[1])
        assert pred.min() >= lo and pred.max() <= hi

    def test_quality_on_planted_data(self, fitted, split):
        if self.quality is None:
            pytest.skip("no quality bar set for this model")
        if self.task == "explicit":
            rmse = lr.metrics.rmse(split[1].values, fitted.predict(split[1]))
            assert rmse <= self.quality, rmse
        else:
            ndcg = fitted.score(split[1])
            assert ndcg >= self.quality, ndcg

    def test_unknown_ids_fall_back_and_are_counted(self, fitted, split):
        users = np.r_[split[1].users.ids[:2], [10**9]]
        items = np.r_[[10**9 + 1], split[1].items.ids[:2]]
        pred = fitted.predict(pd.DataFrame({"user": users, "item": items}))
        assert np.all(np.isfinite(pred))
        assert fitted.unknown_counts_["rows"] == 2

    def test_recommend_batch_equals_single(self, fitted):
        users = fitted.users_.ids[:5]
        ids, scores = fitted.recommend(users, n=7)
        assert ids.shape == (5, 7)
        for row, user in enumerate(users):
            one_ids, one_scores = fitted.recommend(user, n=7)
            np.testing.assert_array_equal(one_ids, ids[row])
            np.testing.assert_allclose(one_scores, scores[row], rtol=1e-5)
        assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must be sorted descending"

    def test_recommend_excludes_seen(self, fitted):
        user = fitted.users_.ids[0]
        seen = set(fitted.items_.take(fitted.seen_[0].indices))
        ids, _ = fitted.recommend(user, n=20)
        assert not seen & set(ids)
        ids_all, _ = fitted.recommend(user, n=len(fitted.items_), exclude_seen=False)
        assert len(ids_all) == len(fitted.items_)

    def test_recommend_item_subset(self, fitted):
        allowed = fitted.items_.ids[::3]
        ids, _ = fitted.recommend(fitted.users_.ids[1], n=10, items=allowed, exclude_seen=False)
        assert set(ids) <= set(allowed)

    def test_recommend_unknown_user(self, fitted):
        with pytest.raises(UnknownIdError):
            fitted.recommend(10**9, n=5)
        ids, _ = fitted.recommend([10**9], n=5, unknown="popular")
        assert ids.shape == (1, 5)

    def test_recommend_n_larger_than_catalogue(self, fitted):
        ids, scores = fitted.recommend(fitted.users_.ids[0], n=10**6)
        n_seen = fitted.seen_[0].nnz
        assert len(ids) == len(fitted.items_) - n_seen

    def test_similar_items(self, fitted):
        item = fitted.items_.ids[0]
        ids, scores = fitted.similar_items(item, n=5)
        assert len(ids) == 5 and item not in set(ids)
        batch_ids, _ = fitted.similar_items(fitted.items_.ids[:3], n=5)
        np.testing.assert_array_equal(batch_ids[0], ids)

    def test_save_load_round_trip(self, fitted, split, tmp_path):
        fitted.save(tmp_path / "model")
        loaded = lr.load_model(tmp_path / "model")
        assert type(loaded) is type(fitted)
        np.testing.assert_allclose(loaded.predict(split[1]), fitted.predict(split[1]), rtol=1e-6)
        a, _ = fitted.recommend(fitted.users_.ids[:3], n=5)
        b, _ = loaded.recommend(fitted.users_.ids[:3], n=5)
        np.testing.assert_array_equal(a, b)

    def test_every_varied_param_changes_output(self, split):
        base = self.model_factory().fit(split[0]).predict(split[1])
        for name, value in self.varied_params.items():
            model = self.model_factory().set_params(**{name: value}).fit(split[0])
            assert not np.allclose(model.predict(split[1]), base), f"{name}={value!r} changed nothing"

    def test_string_ids(self, data):
        frame = data.to_frame()
        frame["user"] = "u" + frame["user"].astype(str)
        frame["item"] = "i" + frame["item"].astype(str)
        model = self.model_factory().fit(frame[["user", "item", "rating"]])
        ids, _ = model.recommend("u1", n=3)
        assert all(str(i).startswith("i") for i in ids)
