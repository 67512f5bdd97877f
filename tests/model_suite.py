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
        pred, fallback = fitted.predict(pd.DataFrame({"user": users, "item": items}), return_fallback=True)
        assert np.all(np.isfinite(pred))
        np.testing.assert_array_equal(fallback, [True, False, True])
        np.testing.assert_array_equal(fitted.predict(pd.DataFrame({"user": users, "item": items})), pred)

    def test_calls_leave_the_model_unchanged(self, fitted, split):
        """predict, score, recommend, similar and fold-in are pure: safe for threaded callers and
        scikit-learn's check_dict_unchanged (fallback information comes back with the result)."""
        import copy

        users, items = fitted.users_.ids[:4], fitted.items_.ids[:3]
        before = {k: copy.deepcopy(v) for k, v in vars(fitted).items()}
        weights = [4.0, 2.0, 5.0] if self.task == "explicit" else None
        fitted.predict(split[1])
        fitted.predict(split[1], return_fallback=True)
        fitted.score(split[1])
        fitted.recommend(users, n=5)
        fitted.recommend([10**9], n=5, unknown="popular")
        fitted.similar_items(items, n=3)
        fitted.similar_users(users, n=3)
        fitted.recommend_for_interactions(items, weights, n=5)
        after = vars(fitted)
        assert set(after) == set(before), f"attributes added or removed: {set(after) ^ set(before)}"
        for name, value in before.items():
            _assert_same(after[name], value, name)

    def test_pickle_round_trip(self, fitted, split):
        import pickle

        twin = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_allclose(twin.predict(split[1]), fitted.predict(split[1]), rtol=1e-6)
        np.testing.assert_array_equal(twin.recommend(fitted.users_.ids[:3], n=5)[0],
                                      fitted.recommend(fitted.users_.ids[:3], n=5)[0])

    #: models whose scores are linear in the user's row (s_u = x_u W): folding in a fitted user's
    #: history must give that user's own recommendations
    fold_in_is_exact = False

    def test_fold_in_of_a_fitted_user_reproduces_their_recommendations(self, fitted):
        if not self.fold_in_is_exact:
            pytest.skip("this model's fold-in solves for a new user; it does not reproduce a fitted one")
        row = fitted.seen_[4]
        ids, scores = fitted.recommend_for_interactions(fitted.items_.take(row.indices), row.data, n=10)
        ref_ids, ref_scores = fitted.recommend(fitted.users_.ids[4], n=10)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-5)

    #: models that rank every unseen item alike for a user (no personal signal) skip the checkerboard
    checkerboard = True
    #: the model the checkerboard test fits, when not model_factory (e.g. one trained longer)
    checkerboard_factory = None

    def test_checkerboard_known_answers(self):
        """implicit's recommender mixin test: user u liked every item of u's parity but item u itself,
        so u's top unseen item is u, and an item's most similar items share its parity."""
        if not self.checkerboard:
            pytest.skip("this model has no personal signal to rank by")
        n = 50
        u, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        liked = (u % 2 == i % 2) & (u != i)
        if self.task == "explicit":  # ratings: 5 on the own parity, 1 on a third of the others
            shown = liked | ((u % 2 != i % 2) & ((u + 2 * i) % 3 == 0))
            frame = pd.DataFrame({"user": u[shown], "item": i[shown], "rating": np.where(liked[shown], 5.0, 1.0)})
        else:  # weights vary a little so that no similarity ties exactly (top-k cuts would break ties arbitrarily)
            frame = pd.DataFrame({"user": u[liked], "item": i[liked], "rating": 1.0 + (u[liked] * 7 + i[liked]) % 5 / 10})
        model = (self.checkerboard_factory or self.model_factory)().fit(frame)
        ids, _ = model.recommend(np.arange(n), n=1)
        hits = np.mean(np.asarray(ids)[:, 0] == np.arange(n))
        assert hits >= 0.9, f"top item is the withheld diagonal for {hits:.0%} of users"
        sim, _ = model.similar_items(np.arange(n), n=5)
        same = np.mean(np.asarray(sim) % 2 == (np.arange(n) % 2)[:, None])
        assert same >= 0.9, f"{same:.0%} of similar items share the parity"

    def test_recommend_batch_equals_single(self, fitted):
        users = fitted.users_.ids[:5]
        ids, scores = fitted.recommend(users, n=7)
        assert ids.shape == (5, 7)
        for row, user in enumerate(users):
            one_ids, one_scores = fitted.recommend(user, n=7)
            np.testing.assert_array_equal(one_ids, ids[row])
            np.testing.assert_allclose(one_scores, scores[row], rtol=1e-5)
        assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must be sorted descending"
        # issue 13: one fixed batch type, full rows or short ones
        assert isinstance(ids, np.ma.MaskedArray) and not ids.mask.any()
        n_seen = np.diff(fitted.seen_.indptr)[fitted.users_.codes(users)]
        everything, s_all = fitted.recommend(users, n=len(fitted.items_))
        assert isinstance(everything, np.ma.MaskedArray)
        np.testing.assert_array_equal(everything.count(axis=1), len(fitted.items_) - n_seen)
        np.testing.assert_array_equal(np.isfinite(s_all), ~np.ma.getmaskarray(everything))
        sim_ids, _ = fitted.similar_items(fitted.items_.ids[:2], n=3)
        assert isinstance(sim_ids, np.ma.MaskedArray)

    def test_factor_models_fused_top_n_matches_their_scores(self, fitted):
        # issue 13: behaviour by type. A FactorModel's fused top-N kernel must rank exactly as its
        # own _score_block does through the generic path; any other model scores only that way.
        from latentrec.models.base import FactorModel, Recommender

        if not isinstance(fitted, FactorModel):
            if "user_factors_" in vars(fitted) and "item_factors_" in vars(fitted):
                # a model with factors whose scores are their dot product belongs under FactorModel
                u = np.arange(5)
                dot = FactorModel._score_block(fitted, u)
                assert not np.allclose(fitted._score_block(u), dot, atol=1e-4)
            pytest.skip("not a factor model: scored only through _score_block")
        users = np.arange(min(40, len(fitted.users_)), dtype=np.int32)
        fused_c, fused_s = fitted._topn_codes(users, 10)
        plain_c, plain_s = Recommender._topn_codes(fitted, users, 10)
        np.testing.assert_allclose(fused_s, plain_s, rtol=1e-4, atol=1e-4)
        assert np.mean(fused_c == plain_c) > 0.98  # ties may swap

    def test_recommend_excludes_seen(self, fitted):
        user = fitted.users_.ids[0]
        seen = set(fitted.items_.take(fitted.seen_[0].indices))
        ids, _ = fitted.recommend(user, n=20)
        assert not seen & set(ids)
        ids_all, _ = fitted.recommend(user, n=len(fitted.items_), exclude_seen=False)
        assert len(ids_all) == len(fitted.items_)

    def test_recommend_with_another_seen_history(self, fitted):
        # issue 13: seen-item exclusion reads a history object; a caller can hand recommend another one
        users = fitted.users_.ids[:3]
        free, _ = fitted.recommend(users, n=15, exclude_seen=False)
        blocked = pd.DataFrame({"user": np.repeat(users, 5), "item": np.ma.getdata(free)[:, :5].ravel()})
        blocked = pd.concat([blocked, pd.DataFrame({"user": [10**9], "item": [fitted.items_.ids[0]]})])  # unknown user
        ids, _ = fitted.recommend(users, n=10, seen=blocked)
        for row in range(3):
            assert not set(ids[row].compressed()) & set(np.ma.getdata(free)[row, :5])
            np.testing.assert_array_equal(ids[row].compressed(), np.ma.getdata(free)[row, 5:15])
        nothing, _ = fitted.recommend(users, n=10, seen=blocked.iloc[:0])
        np.testing.assert_array_equal(np.ma.getdata(nothing), np.ma.getdata(free)[:, :10])

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

    def test_save_without_the_training_matrix(self, fitted, split, tmp_path):
        # issue 13: a model whose scores do not read its training matrix need not carry it
        users = fitted.users_.ids[:4]
        if fitted._scores_read_seen:
            with pytest.raises(lr.ModelError, match="cannot be saved without them"):
                fitted.save(tmp_path / "m", seen=False)
            assert not (tmp_path / "m").exists()
            return
        fitted.save(tmp_path / "full")
        fitted.save(tmp_path / "m", seen=False)
        assert not (tmp_path / "m" / "arrays" / "seen_.data.npy").exists()
        light = lr.load_model(tmp_path / "m")
        assert "seen_" not in vars(light)
        with pytest.raises(lr.ModelError, match="seen=interactions"):
            light.recommend(users, n=5)
        np.testing.assert_array_equal(light.recommend(users, n=5, seen=split[0])[0], fitted.recommend(users, n=5)[0])
        np.testing.assert_array_equal(light.recommend(users, n=5, exclude_seen=False)[0],
                                      fitted.recommend(users, n=5, exclude_seen=False)[0])
        np.testing.assert_allclose(light.predict(split[1]), fitted.predict(split[1]), rtol=1e-6)

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


def _assert_same(a, b, name):
    """Deep equality of two attribute values (arrays, sparse matrices, frames, containers)."""
    import scipy.sparse as sp

    if sp.issparse(b):
        assert sp.issparse(a) and a.shape == b.shape and (a != b).nnz == 0, name
    elif isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=name)
    elif isinstance(b, (pd.DataFrame, pd.Series)):
        assert a.equals(b), name
    elif isinstance(b, dict):
        assert isinstance(a, dict) and set(a) == set(b), f"{name}: keys changed {set(a) ^ set(b)}"
        for k in b:
            _assert_same(a[k], b[k], f"{name}[{k!r}]")
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b), name
        for k, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{name}[{k}]")
    elif hasattr(b, "__dict__") and not isinstance(b, type) and type(a) is type(b) and hasattr(b, "get_params"):
        for k in vars(b):
            _assert_same(vars(a)[k], vars(b)[k], f"{name}.{k}")
    else:
        try:
            same = a == b
            same = bool(same) if not isinstance(same, np.ndarray) else bool(same.all())
        except Exception:  # noqa: BLE001 - objects without equality: identity of type is all we check
            same = type(a) is type(b)
        assert same or (a is b), f"{name} changed: {b!r} -> {a!r}"
