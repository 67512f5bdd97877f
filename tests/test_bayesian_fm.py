"""BayesianFM: the shared model suite, the Gibbs kernels against a plain NumPy sampler, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.errors import DataError, ModelError
from latentrec.models.bayesian import BayesianFM
from latentrec.models.bayesian import _features as feat
from latentrec.models.bayesian import estimator as est
from latentrec.models.kernels import bfm as kern
from latentrec.split import random_split

from model_suite import ModelSuite

FAST = dict(n_factors=4, n_iter=20, n_burn_in=5, n_saved_samples=8, random_state=0)
RICH = ("implicit_user", "implicit_item", "day", "user_attributes", "item_attributes")


class TestBayesianFM(ModelSuite):
    # the planted data's star ratings would make loss="auto" the ordered probit, whose cutpoints need
    # far more than these 20 samples (0.635 measured); the suite runs the Gaussian likelihood and the
    # ordinal tests below cover the probit
    model_factory = staticmethod(lambda: BayesianFM(**FAST, loss="squared"))
    # the planted data's noise floor is ~0.42 RMSE; Biases gets 0.633 on this split, BayesianFM 0.562
    # at these 20 samples (0.510 at 60 samples, 10 burn-in)
    quality = 0.58
    varied_params = {"n_factors": 2, "n_iter": 12, "n_burn_in": 15, "features": ("implicit_user",),
                     "n_saved_samples": 2, "init_std": 0.5, "random_state": 1}


# ---------------------------------------------------------------- data with every kind of block
def small_data(seed=0, n_users=25, n_items=18, n=260):
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_items, size=n, replace=False)
    frame = pd.DataFrame({"user": pairs // n_items, "item": pairs % n_items,
                          "rating": rng.integers(1, 6, n).astype(float),
                          "timestamp": 1_000_000_000 + rng.integers(0, 12, n) * feat.SECONDS_PER_DAY})
    data = lr.Interactions.from_frame(frame, timestamp="timestamp")
    data.user_metadata = pd.DataFrame({"age": rng.integers(15, 70, n_users), "gender": rng.choice(["F", "M"], n_users),
                                       "occupation": rng.choice(["a", "b", "c"], n_users)},
                                      index=pd.Index(np.arange(n_users), name="user"))
    genres = ["|".join(sorted(set(rng.choice(list("ABCDE"), rng.integers(1, 3))))) for _ in range(n_items)]
    data.item_metadata = pd.DataFrame({"genres": genres, "year": rng.integers(1950, 2000, n_items)},
                                      index=pd.Index(np.arange(n_items), name="item"))
    return data.compact()


def dense_design(design, idx):
    """The flat design matrix X (rows x features) the relational blocks stand for."""
    X = np.zeros((len(idx), design.n_features))
    ef = design.ef.toarray()
    for r in range(idx.shape[1]):
        X += ef[idx[:, r]]
    return X


def fm_predict(X, w0, w, V):
    q = X @ V
    return w0 + X @ w + 0.5 * ((q ** 2).sum(1) - ((X ** 2) @ (V ** 2)).sum(1))


def reference_sweep(X, resid, w, V, design, mu_w, lam_w, mu_v, lam_v, alpha, z):
    """The textbook single-site Gibbs sweep on the flat X (O(N p) per parameter), in the kernels' order."""
    resid, w, V = resid.copy(), w.copy(), V.copy()
    group_of = np.repeat(np.arange(len(design.group_names)), np.diff(design.g_start))
    rel_ranges = [(int(design.g_start[design.rel_groups[r]]), int(design.g_start[design.rel_groups[r + 1]]))
                  for r in range(len(design.relations))]

    def draw(h, old, mu, lam, zz):
        prec = alpha * h @ h + lam
        mean = (alpha * h @ (resid + old * h) + lam * mu) / prec
        return mean + zz / np.sqrt(prec)

    for lo, hi in rel_ranges:
        for j in range(lo, hi):
            h = X[:, j]
            new = draw(h, w[j], mu_w[group_of[j]], lam_w[group_of[j]], z[0, j])
            resid -= (new - w[j]) * h
            w[j] = new
    for f in range(V.shape[1]):
        for lo, hi in rel_ranges:
            for j in range(lo, hi):
                h = X[:, j] * (X @ V[:, f] - V[j, f] * X[:, j])
                new = draw(h, V[j, f], mu_v[group_of[j], f], lam_v[group_of[j], f], z[f + 1, j])
                resid -= (new - V[j, f]) * h
                V[j, f] = new
    return resid, w, V


@pytest.mark.parametrize("features", [(), RICH, RICH + ("user_day",)])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("parallel_groups", [False, True])
def test_kernels_match_the_numpy_reference_sweep(features, n_threads, parallel_groups, monkeypatch):
    # parallel_groups: every one-hot group drawn in parallel (on real data only groups of >= 1024 are)
    monkeypatch.setattr(est, "PARALLEL_GROUP", 1 if parallel_groups else 10 ** 9)
    data = small_data()
    design, idx = feat.build_design(data, features)
    rng = np.random.default_rng(5)
    k, p, G = 3, design.n_features, len(design.group_names)
    s = est._Sampler(design, idx, data.values, k, 0.3, rng)
    assert s.g_parallel.any() == parallel_groups
    s.w[:] = rng.normal(0, 0.2, p)
    X = dense_design(design, idx)
    with lr._util.kernel_threads(n_threads):
        kern.entity_sums(*s.ef, s.w, s.V, s.Q, s.L, s.S)
        out = np.empty(len(idx))
        kern.row_predict(idx, s.w0, s.Q, s.L, s.S, out)
    np.testing.assert_allclose(out, fm_predict(X, s.w0, s.w, s.V), atol=1e-12)
    s.resid[:] = s.y - out
    s.mu_w, s.lam_w = rng.normal(0, 0.1, G), rng.gamma(2.0, 1.0, G)
    s.mu_v, s.lam_v = rng.normal(0, 0.1, (G, k)), rng.gamma(2.0, 1.0, (G, k))
    s.alpha = 1.7
    z = rng.standard_normal((k + 1, p))
    ref = reference_sweep(X, s.resid, s.w, s.V, design, s.mu_w, s.lam_w, s.mu_v, s.lam_v, s.alpha, z)
    s.rng = _Fixed(z, s.rng)
    s._hyper = lambda theta, mu, lam: (mu, lam)  # keep the priors set above
    s.n_sweeps = 1  # no refresh: start from the residuals set above
    with lr._util.kernel_threads(n_threads):
        s.sweep_parameters()
    np.testing.assert_allclose(s.w, ref[1], atol=1e-10)
    np.testing.assert_allclose(s.V, ref[2], atol=1e-10)
    np.testing.assert_allclose(s.resid, ref[0], atol=1e-10)
    # the incrementally kept entity sums equal a fresh computation
    Q, L, S = s.Q.copy(), s.L.copy(), s.S.copy()
    kern.entity_sums(*s.ef, s.w, s.V, s.Q, s.L, s.S)
    np.testing.assert_allclose(Q, s.Q, atol=1e-10)
    np.testing.assert_allclose(L, s.L, atol=1e-10)
    np.testing.assert_allclose(S, s.S, atol=1e-10)


class _Fixed:
    """A Generator stand-in whose standard_normal returns prepared numbers."""

    def __init__(self, z, rng):
        self.z, self.rng = z, rng

    def standard_normal(self, shape):
        assert shape == self.z.shape
        return self.z

    def __getattr__(self, name):
        return getattr(self.rng, name)


def test_implicit_blocks_are_relational_not_flat():
    """An implicit-feedback block is stored once per entity (nnz of the rating matrix), not once per row."""
    data = small_data()
    design, idx = feat.build_design(data, ("implicit_user", "implicit_item"))
    assert design.ef.nnz == data.n_users + data.n_items + 2 * len(data)
    assert dense_design(design, idx).astype(bool).sum() > 5 * design.ef.nnz


def test_one_hot_groups_are_detected():
    design, _ = feat.build_design(small_data(), RICH)
    flags = dict(zip(design.group_names, design.g_onehot))
    assert flags["user"] and flags["item"] and flags["day"] and flags["user:gender"] and flags["item:year"]
    assert not flags["implicit_user"] and not flags["implicit_item"] and not flags["item:genres"]


# ---------------------------------------------------------------- behaviour
@pytest.fixture(scope="module")
def rich_split():
    return random_split(small_data(n_users=60, n_items=40, n=1500, seed=2), 0.2, random_state=0)


def test_same_model_for_any_thread_count(rich_split):
    a = BayesianFM(**FAST, features=RICH, n_threads=1).fit(rich_split[0]).predict(rich_split[1])
    b = BayesianFM(**FAST, features=RICH, n_threads=2).fit(rich_split[0]).predict(rich_split[1])
    np.testing.assert_array_equal(a, b)


def test_saving_every_kept_sample_reproduces_the_running_average(rich_split):
    train, test = rich_split
    model = BayesianFM(**{**FAST, "n_saved_samples": 1000}, features=RICH).fit(train, eval_set=test)
    assert len(model.history_) == FAST["n_iter"] and model.n_kept_samples_ == FAST["n_iter"] - FAST["n_burn_in"]
    rmse = lr.metrics.rmse(test.values, model.predict(test))
    assert rmse == pytest.approx(model.history_[-1]["val_rmse"], abs=1e-5)
    assert {"train_loss", "alpha", "val_rmse"} <= set(model.history_[0])


def test_eval_set_rows_are_recoded_to_the_model_vocabulary(rich_split):
    """fit compacts its data: with an item absent from the training part, the eval rows' codes
    (in the shared vocabulary) differ from the model's, and the running average must still match predict."""
    train, test = rich_split
    train = train.subset(np.flatnonzero(train.item_codes != 0))
    test = test.subset(np.flatnonzero(test.item_codes != 0))
    no_item_table = tuple(f for f in RICH if f != "item_attributes")  # (which would keep item 0 as an entity)
    model = BayesianFM(**{**FAST, "n_saved_samples": 1000}, features=no_item_table).fit(train, eval_set=test)
    assert len(model.items_.ids) < test.n_items
    pred, fallback = model.predict(test, return_fallback=True)
    rmse = lr.metrics.rmse(test.values, pred)
    assert not fallback.any()
    assert rmse == pytest.approx(model.history_[-1]["val_rmse"], abs=1e-5)


def test_day_term_uses_the_rows_timestamps(rich_split):
    train, test = rich_split
    model = BayesianFM(**FAST, features=("day",)).fit(train)
    with_days = model.predict(test)
    frame = test.to_frame()
    np.testing.assert_allclose(model.predict(frame[["user", "item", "timestamp"]]), with_days, rtol=1e-6)
    without = model.predict(frame[["user", "item"]])  # the training-average day
    assert not np.allclose(without, with_days)
    assert abs(float(np.mean(without - with_days))) < 0.05


def test_user_day_pairs_are_one_relation_with_an_unseen_entity():
    data = small_data()
    design, idx = feat.build_design(data, ("day", "user_day"))
    pairs = set(zip(data.user_codes.tolist(), feat.day_numbers(data.timestamps).tolist()))
    assert design.relations == ["user", "item", "day", "user_day"]
    n_pairs = len(design.session_users)
    assert n_pairs == len(pairs) and design.ent_start[4] - design.ent_start[3] == n_pairs + 1
    # every row points at its own pair; the last entity (the unseen pair) has no row
    r = idx[:, 3] - design.ent_start[3]
    assert r.max() == n_pairs - 1
    np.testing.assert_array_equal(design.session_users[r], data.user_codes)
    np.testing.assert_array_equal(design.session_days[r], feat.day_numbers(data.timestamps))
    codes = feat.session_codes(design.session_users, design.session_days,
                               np.array([data.user_codes[0], data.user_codes[0], -1]),
                               np.array([data.timestamps[0], data.timestamps[0] + 400 * feat.SECONDS_PER_DAY, 0]))
    np.testing.assert_array_equal(codes, [r[0], n_pairs, n_pairs])


@pytest.mark.parametrize("loss", ["squared", "ordinal"])
def test_user_day_terms_follow_the_rows_pairs(rich_split, loss):
    train, test = rich_split
    features = ("day", "user_day")
    model = BayesianFM(**{**FAST, "n_saved_samples": 1000}, features=features, loss=loss)
    seen = set(zip(train.user_codes.tolist(), feat.day_numbers(train.timestamps).tolist()))
    in_train = np.array([p in seen for p in zip(test.user_codes.tolist(), feat.day_numbers(test.timestamps).tolist())])
    assert 0 < in_train.sum() < len(test)
    warm = test.subset(np.flatnonzero(in_train))
    model.fit(train, eval_set=warm)
    # with every kept sample saved, predict is the running average of the samples (all pairs seen)
    assert lr.metrics.rmse(warm.values, model.predict(warm)) == pytest.approx(model.history_[-1]["val_rmse"], abs=1e-5)
    frame = test.to_frame()
    with_ts = model.predict(frame[["user", "item", "timestamp"]])
    # no timestamp = the average day and the unseen pair: the user-item part alone
    no_ts = model.predict(frame[["user", "item"]])
    day_only = BayesianFM(**{**FAST, "n_saved_samples": 1000}, features=("user_day",), loss=loss).fit(train)
    later = frame.assign(timestamp=frame["timestamp"] + 1000 * feat.SECONDS_PER_DAY)  # every pair unseen
    np.testing.assert_allclose(day_only.predict(later), day_only.predict(frame[["user", "item"]]), rtol=1e-6)
    assert not np.allclose(day_only.predict(frame)[in_train], day_only.predict(later)[in_train])
    assert not np.allclose(with_ts, no_ts)


def test_user_day_model_saves_and_loads(rich_split, tmp_path):
    train, test = rich_split
    model = BayesianFM(**FAST, features=RICH + ("user_day",)).fit(train)
    model.save(tmp_path / "m")
    loaded = lr.load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(test), model.predict(test), rtol=1e-6)
    np.testing.assert_array_equal(loaded.session_days_, model.session_days_)


def test_fold_in_recommends_unseen_items(rich_split):
    model = BayesianFM(**FAST).fit(rich_split[0])
    items = model.items_.ids[:5]
    ids, scores = model.recommend_for_interactions(items, [5, 5, 4, 1, 1], n=5)
    assert len(ids) == 5 and not set(ids) & set(items) and np.all(np.diff(scores) <= 1e-6)


def test_registered():
    assert lr.registry.get("bayesian-fm").task == "explicit"
    assert lr.registry.model_class("bayesian-fm") is BayesianFM


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("params, word", [
    ({"n_burn_in": 20}, "n_burn_in"), ({"features": ("implicit",)}, "features"),
    ({"features": ("day", "day")}, "features"), ({"n_factors": 0}, "n_factors"),
    ({"loss": "hinge"}, "loss"), ({"n_saved_samples": 0}, "n_saved_samples"), ({"init_std": -1.0}, "init_std"),
])
def test_bad_hyper_parameters_fail_at_fit(rich_split, params, word):
    with pytest.raises(ModelError, match=word):
        BayesianFM(**{**FAST, **params}).fit(rich_split[0])


def test_presets_name_the_missing_column():
    data = dataclasses.replace(lr.synthetic_ratings(n_users=20, n_items=15, n_ratings=150, random_state=0),
                               timestamps=None, item_metadata=None, user_metadata=None)
    with pytest.raises(DataError, match="timestamp"):
        BayesianFM(**FAST, features=("day",)).fit(data)
    with pytest.raises(DataError, match="'user_day' needs rating timestamps"):
        BayesianFM(**FAST, features=("user_day",)).fit(data)
    with pytest.raises(DataError, match="user_metadata"):
        BayesianFM(**FAST, features=("user_attributes",)).fit(data)
    with pytest.raises(DataError, match="genres"):
        BayesianFM(**FAST, features=("item_attributes",)).fit(data)


def test_divergence_names_the_sample(rich_split, monkeypatch):
    real = est._Sampler.sweep

    def poisoned(self):
        out = real(self)
        if self.n_sweeps == 3:
            self.V[0, 0] = np.nan
        return out

    monkeypatch.setattr(est._Sampler, "sweep", poisoned)
    with pytest.raises(ModelError, match="sample 3"):
        BayesianFM(**FAST).fit(rich_split[0])


# ---------------------------------------------------------------- ordered probit (loss="ordinal")
from latentrec.models.bayesian import _ordinal as ordinal  # noqa: E402


def probit_data(n=4000, seed=0, cut=(-0.8, 0.1, 1.0)):
    rng = np.random.default_rng(seed)
    eta = rng.normal(0, 0.8, n)
    z = eta + rng.standard_normal(n)
    return eta, np.searchsorted(np.asarray(cut), z).astype(np.int64), np.asarray(cut)


def test_ordinal_gradient_and_hessian_match_finite_differences():
    eta, cls, cut = probit_data(n=500)
    g, H = ordinal._gradient_hessian(eta, cut, cls)
    h = 1e-5
    for k in range(len(cut)):
        e = np.zeros(len(cut))
        e[k] = h
        num_g = (ordinal.log_likelihood(eta, cut + e, cls) - ordinal.log_likelihood(eta, cut - e, cls)) / (2 * h)
        assert g[k] == pytest.approx(num_g, rel=1e-5, abs=1e-6)
        g_plus, _ = ordinal._gradient_hessian(eta, cut + e, cls)
        g_minus, _ = ordinal._gradient_hessian(eta, cut - e, cls)
        np.testing.assert_allclose(H[:, k], (g_plus - g_minus) / (2 * h), rtol=1e-4, atol=1e-4)


def test_ordinal_log_probability_is_accurate_in_the_tails():
    from scipy.stats import norm

    lo, hi = np.array([-1.0, 9.0, -40.0, 0.5]), np.array([0.5, 9.5, -39.0, np.inf])
    got = ordinal._log_prob(lo, hi)
    from scipy.special import log_ndtr

    far = log_ndtr(-39.0) + np.log1p(-np.exp(log_ndtr(-40.0) - log_ndtr(-39.0)))  # Φ(-39) - Φ(-40) in logs
    ref = [np.log(norm.cdf(0.5) - norm.cdf(-1.0)), np.log(norm.sf(9.0) - norm.sf(9.5)), far, np.log(norm.sf(0.5))]
    np.testing.assert_allclose(got, ref, rtol=1e-9)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_ordinal_numba_pass_matches_the_numpy_reference(n_threads):
    """The numba pass behind the Newton steps (log-likelihood, gradient, Hessian) against the NumPy
    formulas, with rows far in both tails (where the direct Φ difference underflows) included."""
    eta, cls, cut = probit_data(n=20_000, seed=3, cut=(-1.2, -0.2, 0.5, 1.4))
    eta[:6] = [60.0, -60.0, 39.0, -39.0, 8.0, -8.0]
    lo, hi = ordinal._bounds(eta, cut, cls)
    with lr._util.kernel_threads(n_threads):
        g, H, ll = ordinal._gradient_hessian(eta, cut, cls, with_ll=True)
        ll_only = ordinal.log_likelihood(eta, cut, cls)
    with np.errstate(over="ignore"):
        g_ref, H_ref = ordinal._gradient_hessian_numpy(eta, cut, cls)
    ll_ref = ordinal._log_prob(lo, hi).sum()
    assert ll == pytest.approx(ll_ref, rel=1e-12) and ll_only == pytest.approx(ll_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(H, H_ref, rtol=1e-10, atol=1e-8)
    per_row = np.array([kern._log_prob(a, b) for a, b in zip(lo[:50], hi[:50])])
    np.testing.assert_allclose(per_row, ordinal._log_prob(lo[:50], hi[:50]), rtol=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_ordinal_latent_kernel_matches_the_numpy_draws(n_threads):
    """The numba latent step (its own Φ⁻¹) against sample_latent with the same uniforms, tails included."""
    eta, cls, cut = probit_data(n=20_000, seed=5)
    eta[:4] = [30.0, -30.0, 9.0, -9.0]
    want = ordinal.sample_latent(eta, cut, cls, np.random.default_rng(7))
    y = np.random.default_rng(1).normal(size=len(eta))
    resid = y - eta
    with lr._util.kernel_threads(n_threads):
        kern.ordinal_latent(y, resid, cut, cls, np.random.default_rng(7).uniform(size=len(eta)))
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(resid, want - eta, rtol=0, atol=1e-9)
    p = np.concatenate([10.0 ** -np.linspace(1, 300, 500), np.linspace(0.001, 0.999, 500), 1 - 10.0 ** -np.linspace(1, 15, 50)])
    from scipy.special import ndtri
    np.testing.assert_allclose([kern._ndtri(v) for v in p], ndtri(p), rtol=1e-13, atol=1e-13)


def test_ordinal_train_error_kernel_matches_the_expected_rating():
    eta, cls, cut = probit_data(n=9_000, seed=4)
    levels = np.array([1.0, 2.0, 4.0, 5.0])
    ratings = levels[cls]
    eta[:20] += np.linspace(-30, 30, 20)  # beyond the table on both sides: the scale's ends
    y = np.random.default_rng(0).normal(size=len(eta))
    sse = kern.ordinal_sse(y, y - eta, cut, levels, ratings)
    ref = ((ordinal.expected_rating(eta, cut, levels) - ratings) ** 2).sum()
    # the kernel interpolates E[rating | eta] from a table: the train RMSE it gives is within 1e-5
    assert np.sqrt(sse / len(eta)) == pytest.approx(np.sqrt(ref / len(eta)), abs=1e-5)
    # and a row's squared error within 1e-5 of the exact one (one row at a time)
    for j in range(0, len(eta), 450):
        one = kern.ordinal_sse(y[j:j + 1], y[j:j + 1] - eta[j:j + 1], cut, levels, ratings[j:j + 1])
        exact = (ordinal.expected_rating(eta[j:j + 1], cut, levels)[0] - ratings[j]) ** 2
        assert abs(np.sqrt(one) - np.sqrt(exact)) < 1e-5
    # a diverged score gives a non-finite error (the divergence check reads it), not a table lookup
    y_bad = y.copy()
    y_bad[3] = np.nan
    assert np.isnan(kern.ordinal_sse(y_bad, y - eta, cut, levels, ratings))
    cuts = cut + np.random.default_rng(1).normal(0, 0.1, (5, len(cut)))
    etas = eta[:, None] + np.random.default_rng(2).normal(0, 0.3, (len(eta), 5))
    np.testing.assert_allclose(kern.ordinal_expected(etas, cuts, levels),
                               ordinal.expected_rating(etas, cuts, levels).mean(axis=1), rtol=1e-13)


@pytest.mark.parametrize("with_day, with_pairs", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_ordinal_rows_kernel_matches_the_numpy_reference(with_day, with_pairs, n_threads):
    # predict's kernel reads the stacked samples in place; the reference gathers and reshapes them
    from latentrec._util import kernel_threads

    rng = np.random.default_rng(5)
    S, k, n_u, n_i, n_t, n_s, n = 7, 3, 11, 13, 4, 9, 500
    f32 = np.float32
    qu, qi, qt, qs = (rng.normal(0, 0.4, (m, S * k)).astype(f32) for m in (n_u, n_i, n_t, n_s))
    bu, bi, bt, bs = (rng.normal(0, 0.5, (m, S)).astype(f32) for m in (n_u, n_i, n_t, n_s))
    u, i, t = rng.integers(0, n_u, n), rng.integers(0, n_i, n), rng.integers(0, n_t, n)
    ses = rng.integers(-1, n_s, n)  # -1: an unseen (user, day) pair, which adds nothing
    if not with_day:
        qt, bt, t = qt[:0], bt[:0], t[:0]
    if not with_pairs:
        qs, bs, ses = qs[:0], bs[:0], ses[:0]
    cuts = np.sort(rng.normal(0, 1, (S, 3)), axis=1)
    cuts[:, 0] = 0.0
    levels = np.array([1.0, 2.0, 3.0, 4.0])
    with kernel_threads(n_threads):
        got = kern.ordinal_rows_expected(qu, qi, bu, bi, u, i, qt, bt, t, qs, bs, ses, cuts, levels)
    ref = ordinal.expected_rows(qu, qi, bu, bi, u, i, qt, bt, t, qs, bs, ses, cuts, levels, block=128)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    assert got.min() >= 1.0 and got.max() <= 4.0
    if with_pairs:  # the pair terms change the rows that have a seen pair, and only those
        plain = kern.ordinal_rows_expected(qu, qi, bu, bi, u, i, qt, bt, t, qs[:0], bs[:0], ses[:0], cuts, levels)
        assert (np.abs(got - plain)[ses >= 0] > 0).all() and (got == plain)[ses < 0].all()


@pytest.mark.parametrize("with_day, with_pairs", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_mean_score_kernel_matches_gathered_numpy(with_day, with_pairs, n_threads):
    # the squared loss's predict: full-width dot products of the stacked (1/sqrt(S)-scaled) samples
    from latentrec._util import kernel_threads

    rng = np.random.default_rng(6)
    S, k, n_u, n_i, n_t, n_s, n = 7, 3, 11, 13, 4, 9, 500
    qu, qi, qt, qs = (rng.normal(0, 0.4, (m, S * k)).astype(np.float32) for m in (n_u, n_i, n_t, n_s))
    bu, bi, bt, bs = (rng.normal(0, 0.5, m).astype(np.float32) for m in (n_u, n_i, n_t, n_s))
    u, i, t = rng.integers(0, n_u, n), rng.integers(0, n_i, n), rng.integers(0, n_t, n)
    ses = rng.integers(-1, n_s, n)  # -1: an unseen (user, day) pair, which adds nothing
    g = lambda a: a.astype(np.float64)  # noqa: E731
    ctx = g(qu[u]) + g(qi[i])
    ref = np.einsum("nk,nk->n", g(qu[u]), g(qi[i])) + bu[u] + bi[i]
    if with_day:
        ref += bt[t] + np.einsum("nk,nk->n", g(qt[t]), ctx)
        ctx = ctx + g(qt[t])
    else:
        qt, bt, t = qt[:0], bt[:0], t[:0]
    if with_pairs:
        seen = ses >= 0
        ref[seen] += bs[ses[seen]] + np.einsum("nk,nk->n", g(qs[ses[seen]]), ctx[seen])
    else:
        qs, bs, ses = qs[:0], bs[:0], ses[:0]
    with kernel_threads(n_threads):
        got = kern.rows_mean_score(qu, qi, bu, bi, u, i, qt, bt, t, qs, bs, ses)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_row_chunks_cover_each_relation_in_order():
    data = small_data()
    design, idx = feat.build_design(data, RICH)
    ptr, _ = feat.entity_rows(idx, design.n_entities)
    ch = kern.row_chunks(design.ent_start, ptr, per_relation=4)
    n_rel = len(design.relations)
    heads, bounds = ch[:n_rel + 1], ch[n_rel + 1:]
    for r in range(n_rel):
        b = bounds[heads[r]:heads[r + 1] + 1]
        assert b[0] == design.ent_start[r] and b[-1] == design.ent_start[r + 1] and np.all(np.diff(b) > 0)


def test_ordinal_latent_draws_are_the_truncated_normal():
    from scipy.stats import truncnorm

    rng = np.random.default_rng(0)
    cut = np.array([-0.5, 0.7])
    for eta0, c in [(0.0, 1), (3.0, 0), (-4.0, 2), (1.0, 2)]:
        eta = np.full(40_000, eta0)
        cls = np.full(40_000, c)
        z = ordinal.sample_latent(eta, cut, cls, rng)
        ext = np.concatenate([[-np.inf], cut, [np.inf]])
        assert np.all((z > ext[c]) & (z <= ext[c + 1]))
        ref = truncnorm(ext[c] - eta0, ext[c + 1] - eta0, loc=eta0)
        assert z.mean() == pytest.approx(ref.mean(), abs=4 * ref.std() / np.sqrt(len(z)))
        assert z.std() == pytest.approx(ref.std(), rel=0.03)


def test_ordinal_cutpoint_chain_matches_a_grid_posterior():
    """The MH draws of (c0, c1) given fixed scores against the flat-prior posterior on a NumPy grid."""
    eta, cls, cut = probit_data(n=300, seed=1, cut=(-0.4, 0.6))
    rng = np.random.default_rng(2)
    c = ordinal.initial_cutpoints(cls, 3)
    draws, acc = [], 0
    for _ in range(1500):
        c, a = ordinal.sample_cutpoints(eta, c, cls, rng)
        draws.append(c)
        acc += a
    draws = np.array(draws[100:])
    assert acc > 1000  # the Laplace proposal fits: most draws are accepted
    g0 = np.linspace(-1.0, 0.2, 121)
    g1 = np.linspace(0.0, 1.2, 121)
    ll = np.array([[ordinal.log_likelihood(eta, np.array([a, b]), cls) for b in g1] for a in g0])
    p = np.exp(ll - ll.max())
    p /= p.sum()
    mean = np.array([(p.sum(1) * g0).sum(), (p.sum(0) * g1).sum()])
    sd = np.sqrt([(p.sum(1) * (g0 - mean[0]) ** 2).sum(), (p.sum(0) * (g1 - mean[1]) ** 2).sum()])
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.2 * sd.max())
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.15)


def test_ordinal_cutpoint_chain_with_the_first_fixed_matches_a_grid_posterior():
    """fix_first (BayesianFM's setting): c0 never moves, c1 | c0, eta against its flat-prior posterior on a grid."""
    eta, cls, cut = probit_data(n=300, seed=1, cut=(-0.4, 0.6))
    rng = np.random.default_rng(3)
    c = np.array([-0.4, 0.3])
    draws, acc = [], 0
    for _ in range(1500):
        c, a = ordinal.sample_cutpoints(eta, c, cls, rng, fix_first=True)
        draws.append(c)
        acc += a
    draws = np.array(draws[100:])
    assert acc > 1000 and np.all(draws[:, 0] == -0.4)
    g1 = np.linspace(0.0, 1.2, 601)
    ll = np.array([ordinal.log_likelihood(eta, np.array([-0.4, b]), cls) for b in g1])
    p = np.exp(ll - ll.max())
    p /= p.sum()
    mean = (p * g1).sum()
    sd = np.sqrt((p * (g1 - mean) ** 2).sum())
    assert draws[:, 1].mean() == pytest.approx(mean, abs=0.2 * sd)
    assert draws[:, 1].std() == pytest.approx(sd, rel=0.15)


def test_all_kept_samples_are_saved_within_the_memory_budget(rich_split):
    """n_saved_samples=None keeps every kept sample when they fit in max_saved_mb, else as many as fit."""
    train, test = rich_split
    kw = {**FAST, "n_saved_samples": None, "features": RICH, "loss": "ordinal"}
    model = BayesianFM(**kw).fit(train)
    assert model.cutpoint_samples_.shape[0] == model.n_kept_samples_ == FAST["n_iter"] - FAST["n_burn_in"]
    n_entities = len(model.users_) + len(model.items_) + len(model.days_)  # RICH: user, item, day relations
    per_sample = 4 * (FAST["n_factors"] + 1) * n_entities
    small = BayesianFM(**kw, max_saved_mb=3.5 * per_sample / 2 ** 20).fit(train)
    assert small.cutpoint_samples_.shape[0] == 3
    assert small.user_factors_.nbytes + small.user_bias_samples_.nbytes < 3.5 * per_sample


def test_ordinal_expected_rating():
    from scipy.stats import norm

    cut, levels = np.array([-1.0, 0.0, 1.5]), np.array([1.0, 2.0, 4.0, 5.0])
    eta = np.array([-2.0, 0.3, 4.0])
    cdf = np.column_stack([np.zeros(3)] + [norm.cdf(c - eta) for c in cut] + [np.ones(3)])
    np.testing.assert_allclose(ordinal.expected_rating(eta, cut, levels), np.diff(cdf, axis=1) @ levels)


def test_ordinal_fit_learns_planted_ratings():
    data = lr.synthetic_ratings(n_users=80, n_items=60, n_ratings=3000, random_state=3)
    data = dataclasses.replace(data, values=np.clip(np.round(data.values), 1, 5))
    train, test = random_split(data, 0.2, random_state=0)
    sq = BayesianFM(**{**FAST, "n_iter": 60}).fit(train)
    od = BayesianFM(**{**FAST, "n_iter": 60}, loss="ordinal").fit(train, eval_set=test)
    base = lr.metrics.rmse(test.values, np.full(len(test), train.values.mean()))
    r_sq, r_od = lr.metrics.rmse(test.values, sq.predict(test)), lr.metrics.rmse(test.values, od.predict(test))
    assert r_od < base - 0.1 and abs(r_od - r_sq) < 0.05
    assert np.all(np.diff(od.cutpoints_) > 0) and od.rating_values_.tolist() == sorted(set(train.values))
    assert od.history_[-1]["val_rmse"] < base - 0.1
    assert np.all((od.predict(test) >= 1) & (od.predict(test) <= 5))


def test_ordinal_needs_two_rating_values(rich_split):
    one = dataclasses.replace(rich_split[0], values=np.full(len(rich_split[0]), 4.0))
    with pytest.raises(DataError, match="2 distinct rating values"):
        BayesianFM(**FAST, loss="ordinal").fit(one)


def test_ordinal_model_saves_and_predicts_unknown_rows(rich_split, tmp_path):
    train, test = rich_split
    model = BayesianFM(**FAST, loss="ordinal").fit(train)
    model.save(tmp_path / "m")
    loaded = lr.load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(test), model.predict(test), rtol=1e-6)
    np.testing.assert_array_equal(loaded.cutpoints_, model.cutpoints_)
    # an unknown user (item) with a known item (user): that side's latent bias plus the other side's
    # average, through the link
    frame = pd.DataFrame({"user": [-12345, model.users_.ids[0]], "item": [model.items_.ids[0], -12345]})
    p, fallback = model.predict(frame, return_fallback=True)
    assert fallback.sum() == 2 and np.all((1 <= p) & (p <= 5))
    latent = np.array([model.item_bias_[0] + model.user_bias_.mean(), model.user_bias_[0] + model.item_bias_.mean()])
    np.testing.assert_allclose(p, ordinal.expected_rating(latent + model.global_mean_, model.cutpoints_,
                                                          model.rating_values_), atol=1e-5)
    # and close to the training mean when both sides are average
    both = ordinal.expected_rating(np.array([model.global_mean_ + model.user_bias_.mean() + model.item_bias_.mean()]),
                                   model.cutpoints_, model.rating_values_)[0]
    assert abs(both - train.values.mean()) < 0.3


# ---------------------------------------------------------------- cold start from side tables
def gendered_data(seed=0, n_users=60, n_items=30, n=1200):
    """Ratings that depend on the user's gender (F rate high, M low) and the item's genre (A high)."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["F", "M"], n_users)
    genre = rng.choice(["A", "B"], n_items)
    pairs = rng.choice(n_users * n_items, size=n, replace=False)
    u, i = pairs // n_items, pairs % n_items
    r = 3 + np.where(gender[u] == "F", 1.0, -1.0) + np.where(genre[i] == "A", 0.5, -0.5) + rng.normal(0, 0.3, n)
    frame = pd.DataFrame({"user": u, "item": i, "rating": np.clip(r, 1, 5)})
    data = lr.Interactions.from_frame(frame)
    data.user_metadata = pd.DataFrame({"gender": gender}, index=pd.Index(np.arange(n_users), name="user"))
    data.item_metadata = pd.DataFrame({"genres": genre}, index=pd.Index(np.arange(n_items), name="item"))
    return data


@pytest.mark.parametrize("side", ["user", "item"])
def test_cold_start_entities_are_predicted_from_their_attributes(side):
    data = gendered_data()
    codes = data.user_codes if side == "user" else data.item_codes
    held = np.arange(0, data.n_users if side == "user" else data.n_items, 5)  # every fifth entity, all rows
    cold = np.isin(codes, held)
    train, test = data.subset(np.flatnonzero(~cold)), data.subset(np.flatnonzero(cold))
    preset = "user_attributes" if side == "user" else "item_attributes"
    params = {**FAST, "n_iter": 40}
    with_side = BayesianFM(**params, features=(preset,)).fit(train)
    without = BayesianFM(**params).fit(train)
    (p_side, fb_side), (p_fallback, fb) = with_side.predict(test, return_fallback=True), \
        without.predict(test, return_fallback=True)
    assert not fb_side.any() and fb.all()
    r_side, r_fallback = lr.metrics.rmse(test.values, p_side), lr.metrics.rmse(test.values, p_fallback)
    assert r_side < 0.7 * r_fallback
    # the side-only entities have no training row: the model's seen matrix agrees
    n = with_side.seen_.shape[0 if side == "user" else 1]
    assert n == (data.n_users if side == "user" else data.n_items)


def test_ordinal_predict_averages_every_samples_expected_rating(rich_split):
    """With every kept sample saved, predict equals the running average of the per-sample expected ratings."""
    train, test = rich_split
    model = BayesianFM(**{**FAST, "n_saved_samples": 1000}, features=RICH, loss="ordinal").fit(train, eval_set=test)
    assert model.cutpoint_samples_.shape == (model.n_kept_samples_, len(model.rating_values_) - 1)
    assert lr.metrics.rmse(test.values, model.predict(test)) == pytest.approx(model.history_[-1]["val_rmse"], abs=1e-5)


def test_cold_entities_use_their_id_groups_prior_mean():
    """A side-only user's saved vector is the prior mean of the id plus its attributes' vectors."""
    data = gendered_data()
    held = np.isin(data.user_codes, [0, 5])
    train = data.subset(np.flatnonzero(~held))
    design, idx = feat.build_design(feat.add_side_only_entities(train.compact(), ("user_attributes",)),
                                    ("user_attributes",))
    s = est._Sampler(design, idx, train.compact().values, 3, 0.3, np.random.default_rng(0))
    for _ in range(3):
        s.sweep()
    kern.entity_sums(*s.ef, s.w, s.V, s.Q, s.L, s.S)
    smp = s.summary()
    cold = [e for e in range(design.ent_start[1]) if s.er_ptr[e + 1] == s.er_ptr[e]]
    assert len(cold) == 2
    X = design.ef.toarray()
    for e in cold:
        x = X[e].copy()
        x[design.g_start[0]:design.g_start[1]] = 0  # no id feature ...
        V = np.vstack([s.V, s.mu_v[0]])             # ... but one more with the id prior's mean
        w = np.append(s.w, s.mu_w[0])
        x = np.append(x, 1.0)
        q = x @ V
        np.testing.assert_allclose(smp["q"][0][e], q, atol=1e-10)
        np.testing.assert_allclose(smp["d"][0][e], x @ w + 0.5 * (q @ q - (x ** 2) @ (V ** 2).sum(1)), atol=1e-10)
