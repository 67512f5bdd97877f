"""BiasedMF, ALS and SVDpp: the shared suite, known answers, bad input, scikit-learn integration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import latentrec as lr
from latentrec.models import ALS, BiasedMF, SVDpp
from latentrec.split import random_split
from model_suite import ModelSuite

FAST_MF = dict(n_factors=8, n_epochs=25, learning_rate=0.02, regularization=0.05, n_threads=1, random_state=0)
FAST_ALS = dict(n_factors=6, n_epochs=6, regularization=0.1, random_state=0)
FAST_PP = dict(n_factors=6, n_epochs=20, learning_rate=0.01, regularization=0.04, n_threads=1, random_state=0)


class TestBiasedMF(ModelSuite):
    model_factory = staticmethod(lambda: BiasedMF(**FAST_MF))
    quality = 0.75  # the planted data's noise (rating steps + N(0, 0.3)) is ~0.42 RMSE; Biases gets ~0.95
    varied_params = {"n_factors": 4, "n_epochs": 5, "learning_rate": 0.005, "regularization": 0.5,
                     "bias_regularization": 1.0, "lr_decay": 0.5, "init_std": 0.3, "biased": False,
                     "random_state": 1}
    # n_threads only changes how updates interleave (Hogwild): on a busy machine two threads may
    # happen to run one after the other and give the single-thread result, so it is not listed;
    # early_stopping_rounds acts only with an eval_set (test_early_stopping_restores_the_best_epoch)


class TestBiasedMFThreaded(ModelSuite):
    """The default all-cores (Hogwild) mode: refits agree only up to the races between threads."""

    model_factory = staticmethod(lambda: BiasedMF(**{**FAST_MF, "n_threads": 0}))
    quality = 0.75
    refit_atol = 0.5


class TestALS(ModelSuite):
    model_factory = staticmethod(lambda: ALS(**FAST_ALS))
    quality = 0.75
    varied_params = {"n_factors": 3, "n_epochs": 1, "regularization": 1.0, "bias_regularization": 2.0,
                     "init_std": 1.0, "biased": False, "random_state": 1}


class TestSVDpp(ModelSuite):
    model_factory = staticmethod(lambda: SVDpp(**FAST_PP))
    quality = 0.75
    varied_params = {"n_factors": 3, "n_epochs": 3, "learning_rate": 0.003, "regularization": 0.5,
                     "bias_regularization": 1.0, "lr_decay": 0.5, "init_std": 0.3, "random_state": 1}

    def test_user_factors_include_the_implicit_term(self, fitted):
        own, y = fitted.user_own_factors_, fitted.implicit_factors_
        seen = fitted.seen_
        z = (seen.astype(bool).astype(np.float64) @ y) / np.sqrt(np.diff(seen.indptr))[:, None]
        np.testing.assert_allclose(fitted.user_factors_, own + z, atol=1e-4)


# ---------------------------------------------------------------- known answers
@pytest.fixture(scope="module")
def planted():
    """An exact rank-3 matrix plus biases (no noise), 70 % of the cells observed."""
    rng = np.random.default_rng(7)
    n_u, n_i, k = 120, 80, 3
    P, Q = rng.normal(0, 0.6, (n_u, k)), rng.normal(0, 0.6, (n_i, k))
    bu, bi = rng.normal(0, 0.3, n_u), rng.normal(0, 0.3, n_i)
    full = 3.0 + bu[:, None] + bi[None, :] + P @ Q.T
    u, i = np.nonzero(rng.random((n_u, n_i)) < 0.7)
    data = lr.Interactions.from_arrays(u, i, full[u, i], rating_scale=(full.min() - 1, full.max() + 1))
    return data, full


@pytest.mark.parametrize("model", [
    BiasedMF(n_factors=3, n_epochs=150, learning_rate=0.01, regularization=0.0005, bias_regularization=0.0,
             lr_decay=1.0, n_threads=1, random_state=0),
    ALS(n_factors=3, n_epochs=30, regularization=1e-4, bias_regularization=1e-4, random_state=0),
    SVDpp(n_factors=3, n_epochs=150, learning_rate=0.01, regularization=0.0005, bias_regularization=0.0,
          lr_decay=1.0, n_threads=1, random_state=0),
], ids=["BiasedMF", "ALS", "SVDpp"])
def test_recovers_a_planted_low_rank_matrix(model, planted):
    data, full = planted
    model.fit(data)
    rows, cols = np.meshgrid(np.arange(full.shape[0]), np.arange(full.shape[1]), indexing="ij")
    pred = model.predict(np.c_[rows.ravel(), cols.ravel()])
    # the unobserved 30 % of the cells too: the model found the planted structure, not just the data
    err = np.sqrt(np.mean((pred - full.ravel()) ** 2))
    assert err < 0.1 * full.std(), (err, full.std())


def test_unbiased_mf_is_a_plain_dot_product(ratings):
    model = BiasedMF(**{**FAST_MF, "biased": False}).fit(ratings)
    assert getattr(model, "user_bias_", None) is None and getattr(model, "item_bias_", None) is None
    u, i = ratings.user_codes[:50], ratings.item_codes[:50]
    want = np.clip(np.einsum("ij,ij->i", model.user_factors_[u], model.item_factors_[i]), *ratings.rating_scale)
    np.testing.assert_allclose(model.predict(np.c_[ratings.users.take(u), ratings.items.take(i)]), want, rtol=1e-5)


def test_single_thread_mode_is_bit_identical(ratings):
    a = BiasedMF(**FAST_MF).fit(ratings)
    b = BiasedMF(**FAST_MF).fit(ratings)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)


def test_history_and_learning_rate_decay(ratings):
    model = BiasedMF(**{**FAST_MF, "n_epochs": 4, "lr_decay": 0.5}).fit(ratings)
    h = model.history_frame()
    assert list(h["epoch"]) == [1, 2, 3, 4]
    np.testing.assert_allclose(h["learning_rate"], [0.02, 0.01, 0.005, 0.0025], rtol=1e-6)
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert "val_rmse" not in h


@pytest.mark.parametrize("cls, params", [(BiasedMF, FAST_MF), (SVDpp, FAST_PP)])
def test_early_stopping_restores_the_best_epoch(cls, params, ratings):
    train, val = random_split(ratings, 0.2, random_state=1)
    # overfit on purpose (many factors, no regularisation) so validation RMSE turns up
    # (ALS shares this code path in _MFBase; its count-weighted penalty does not overfit here)
    model = cls(**{**params, "n_factors": 40, "n_epochs": 60, "regularization": 1e-6,
                   "early_stopping_rounds": 3}).fit(train, eval_set=val)
    h = model.history_frame()
    assert len(h) < 60, "validation RMSE never got worse: the test does not exercise stopping"
    best = int(h["val_rmse"].idxmin())
    assert model.best_epoch_ == best + 1 and len(h) == best + 1 + 3
    rmse = lr.metrics.rmse(val.values, model.predict(val))
    assert rmse == pytest.approx(h["val_rmse"].iloc[best], abs=1e-5)


def test_als_records_validation_rmse(ratings):
    train, val = random_split(ratings, 0.2, random_state=1)
    model = ALS(**FAST_ALS).fit(train, eval_set=val)
    h = model.history_frame()
    assert len(h) == FAST_ALS["n_epochs"] and h["val_rmse"].iloc[-1] < h["val_rmse"].iloc[0]
    assert h["train_loss"].iloc[-1] < h["val_rmse"].iloc[-1]


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [BiasedMF, ALS, SVDpp])
@pytest.mark.parametrize("param, value, message", [
    ("n_factors", -3, "n_factors must be an integer >= 1, got -3"),
    ("n_epochs", 0, "n_epochs must be an integer >= 1, got 0"),
    ("regularization", float("nan"), "regularization must be a number"),
    ("n_threads", -1, "n_threads must be an integer >= 0"),
])
def test_bad_common_params(cls, param, value, message, ratings):
    with pytest.raises(lr.ModelError, match=message):
        cls(**{param: value}).fit(ratings)


@pytest.mark.parametrize("cls", [BiasedMF, SVDpp])
@pytest.mark.parametrize("param, value, message", [
    ("learning_rate", 0.0, "learning_rate must be a number > 0, got 0.0"),
    ("learning_rate", -0.1, "learning_rate must be a number > 0"),
    ("learning_rate", float("nan"), "learning_rate must be a number > 0, got nan"),
    ("lr_decay", 1.5, "lr_decay must be a number > 0 and <= 1"),
])
def test_bad_sgd_params(cls, param, value, message, ratings):
    with pytest.raises(lr.ModelError, match=message):
        cls(**{param: value}).fit(ratings)


def test_als_needs_positive_regularization(ratings):
    with pytest.raises(lr.ModelError, match="ALS: regularization must be a number > 0"):
        ALS(regularization=0.0).fit(ratings)


@pytest.mark.parametrize("cls", [BiasedMF, SVDpp])
def test_diverging_sgd_names_the_epoch(cls, ratings):
    model = cls(n_factors=8, n_epochs=20, learning_rate=50.0, n_threads=1, random_state=0)
    with pytest.raises(lr.ModelError, match=r"diverged at epoch \d+.*lower learning_rate"):
        model.fit(ratings)
    assert not hasattr(model, "best_epoch_")


# ---------------------------------------------------------------- scikit-learn
@pytest.fixture(scope="module")
def xy():
    data = lr.synthetic_ratings(n_users=150, n_items=100, n_ratings=5_000, random_state=5)
    frame = data.to_frame()
    return frame[["user", "item"]], frame["rating"].to_numpy()


def test_grid_search_cv(xy):
    X, y = xy
    search = GridSearchCV(BiasedMF(n_epochs=15, n_threads=1, random_state=0),
                          {"n_factors": [2, 8], "regularization": [0.02, 2.0]},
                          cv=KFold(5, shuffle=True, random_state=0), scoring="neg_root_mean_squared_error")
    search.fit(X, y)
    assert search.best_params_["regularization"] == 0.02  # a huge penalty cannot win on planted data
    assert -search.best_score_ < 0.9
    assert search.predict(X.iloc[:10]).shape == (10,)


def test_pipeline_and_clone(xy):
    X, y = xy
    select = FunctionTransformer(lambda frame: frame[["user", "item"]])
    pipe = Pipeline([("select", select), ("mf", SVDpp(n_factors=4, n_epochs=10, n_threads=1, random_state=0))])
    X2 = X.assign(noise=np.arange(len(X)))
    search = GridSearchCV(pipe, {"mf__n_factors": [2, 4]}, cv=KFold(3, shuffle=True, random_state=0),
                          scoring="neg_root_mean_squared_error").fit(X2, y)
    pred = search.best_estimator_.predict(X2)
    assert np.isfinite(pred).all() and lr.metrics.rmse(y, pred) < 0.9
    twin = clone(ALS(n_factors=7))
    assert twin.get_params()["n_factors"] == 7 and not hasattr(twin, "users_")


def test_score_is_minus_rmse(xy):
    X, y = xy
    model = ALS(**FAST_ALS).fit(X, y)
    assert model.score(X, y) == pytest.approx(-lr.metrics.rmse(y, model.predict(X)))


# ---------------------------------------------------------------- fold-in
@pytest.mark.parametrize("cls, params", [(BiasedMF, FAST_MF), (ALS, FAST_ALS), (SVDpp, FAST_PP)])
def test_fold_in_tracks_the_fitted_user(cls, params, ratings):
    model = cls(**params).fit(ratings)
    user = ratings.users.ids[0]
    row = model.seen_[0]
    ids, _ = model.recommend_for_interactions(model.items_.take(row.indices), row.data, n=len(model.items_))
    fitted = model._score_block(np.array([0], np.int32))[0]
    folded = model._fold_in_scores(row.indices, row.data)
    assert np.corrcoef(fitted, folded)[0, 1] > 0.8
    assert not set(ids) & set(model.items_.take(row.indices))
    assert user in model.users_


def test_explicit_fold_in_needs_ratings_and_returns_predicted_ratings(ratings):
    """Regression: fold-in of a rating model treated every item as rated 1 star and returned
    scores around 1.3 on a 1-5 scale (the global mean was left out)."""
    model = BiasedMF(**FAST_MF).fit(ratings)
    items = model.items_.ids[:6]
    with pytest.raises(lr.DataError, match="rating model: give the visitor's rating"):
        model.recommend_for_interactions(items, n=5)
    high = model._fold_in_scores(np.arange(6), np.full(6, 5.0, np.float32))
    low = model._fold_in_scores(np.arange(6), np.full(6, 1.0, np.float32))
    assert abs(float(np.mean(high)) - model.global_mean_) < 2.0 and np.mean(high) > np.mean(low)
    p = model._fold_in_factors(np.arange(6), np.full(6, 5.0, np.float32))
    expect = model.global_mean_ + model.item_bias_ + model.item_factors_ @ p
    np.testing.assert_allclose(high, expect, rtol=1e-5, atol=1e-5)


def test_fold_in_regularization_zero_stays_zero(ratings):
    """Regression: ``regularization or 0.1`` turned an explicit 0 into 0.1."""
    model = BiasedMF(**{**FAST_MF, "regularization": 0.0}).fit(ratings)
    codes = np.arange(12, dtype=np.int32)
    r = np.linspace(1, 5, 12).astype(np.float32)
    p = model._fold_in_factors(codes, r)
    q = model.item_factors_[codes].astype(np.float64)
    target = r - model.global_mean_ - model.item_bias_[codes]
    np.testing.assert_allclose(p, np.linalg.lstsq(q, target, rcond=None)[0], rtol=1e-4, atol=1e-5)
    ridge = np.linalg.solve(q.T @ q + 0.1 * 12 * np.eye(q.shape[1]), q.T @ target)
    assert not np.allclose(p, ridge, atol=1e-4)
