"""ImplicitALS (WRMF): kernels against NumPy references, the model contract, fold-in, partial fit."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import latentrec as lr
from latentrec.models.baselines import Popularity
from latentrec.models import ImplicitALS
from latentrec.models.kernels import ials as kern
from latentrec.split import random_split
from model_suite import ModelSuite


class TestImplicitALS(ModelSuite):
    model_factory = staticmethod(lambda: ImplicitALS(n_factors=8, regularization=10.0, alpha=1.0, n_epochs=10,
                                                     random_state=0))
    task = "implicit"
    quality = 0.20  # Popularity reaches 0.136 on this split, this model 0.217
    varied_params = {"n_factors": 4, "regularization": 50.0, "alpha": 10.0, "unobserved_weight": 0.3,
                     "nu": 1.0, "confidence": "log",
                     "n_epochs": 2, "solver": "cholesky", "cg_steps": 1, "random_state": 7}


# ---------------------------------------------------------------- NumPy references

def _problem(seed=0, n_rows=30, n_cols=20, k=5, density=0.3):
    rng = np.random.default_rng(seed)
    m = sp.random(n_rows, n_cols, density=density, format="csr", random_state=seed,
                  data_rvs=lambda n: rng.integers(1, 4, n).astype(np.float32))
    m.sort_indices()
    m.data[::7] = 0.0  # a few stored zeros: confidence 1, preference 0
    acoef = (2.0 * m.data).astype(np.float32)
    bcoef = np.where(m.data > 0, 1.0 + 2.0 * m.data, 0.0).astype(np.float32)
    X = rng.normal(0, 0.3, (n_rows, k)).astype(np.float32)
    Y = rng.normal(0, 0.3, (n_cols, k)).astype(np.float32)
    return m, acoef, bcoef, X, Y


def _reference_system(m, acoef, bcoef, Y, lam, u, w0=1.0):
    lo, hi = m.indptr[u], m.indptr[u + 1]
    cols = m.indices[lo:hi]
    y = Y.astype(np.float64)
    lam_u = lam[u] if np.ndim(lam) else lam
    A = w0 * y.T @ y + lam_u * np.eye(y.shape[1]) + (y[cols] * acoef[lo:hi, None]).T @ y[cols]
    b = y[cols].T @ bcoef[lo:hi]
    return A, b


def _reference_cg(A, b, x, steps):
    r = b - A @ x
    p = r.copy()
    rs = r @ r
    for _ in range(steps):
        if rs < 1e-20:
            break
        ap = A @ p
        step = rs / (p @ ap)
        x = x + step * p
        r = r - step * ap
        new = r @ r
        p = r + new / rs * p
        rs = new
    return x


def _reference_loss(m, acoef, bcoef, X, Y, w0=1.0):
    dense_c = np.full(m.shape, w0)
    dense_p = np.zeros(m.shape)
    coo = m.tocoo()
    dense_c[coo.row, coo.col] = w0 + acoef
    dense_p[coo.row, coo.col] = (bcoef > 0).astype(float)
    s = X.astype(np.float64) @ Y.astype(np.float64).T
    return float(np.sum(dense_c * (dense_p - s) ** 2))


def _run(kind, m, acoef, bcoef, X, Y, lam, steps=3, n_chunks=3, w0=1.0):
    yty = (w0 * Y.T @ Y).astype(np.float32)
    a0 = yty
    row_reg = np.broadcast_to(np.asarray(lam, np.float32), (m.shape[0],)).copy()
    bounds = kern.cost_bounds(m.indptr.astype(np.int64), Y.shape[1], n_chunks)
    out = np.zeros(len(bounds) - 1)
    X = X.copy()
    args = (m.indptr.astype(np.int64), m.indices.astype(np.int32), acoef, bcoef, X, Y)
    if kind == "cg":
        out = out.astype(np.float32)
        kern.cg_sweep(*args, a0, yty, row_reg, np.float32(w0), steps, bounds, out)
    else:
        kern.cholesky_sweep(*args, a0.astype(np.float64), yty.astype(np.float64), row_reg, float(w0), bounds, out)
    return X, float(out.sum())


def test_cholesky_sweep_matches_numpy_solve():
    m, acoef, bcoef, X, Y = _problem()
    got, loss = _run("cholesky", m, acoef, bcoef, X, Y, lam=0.5)
    for u in range(m.shape[0]):
        A, b = _reference_system(m, acoef, bcoef, Y, 0.5, u)
        np.testing.assert_allclose(got[u], np.linalg.solve(A, b), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss, _reference_loss(m, acoef, bcoef, got, Y), rtol=1e-5)


def test_cg_sweep_matches_numpy_cg_and_converges_to_the_solution():
    m, acoef, bcoef, X, Y = _problem(seed=1)
    got, loss = _run("cg", m, acoef, bcoef, X, Y, lam=0.5, steps=3)
    exact, _ = _run("cg", m, acoef, bcoef, X, Y, lam=0.5, steps=25)
    for u in range(m.shape[0]):
        A, b = _reference_system(m, acoef, bcoef, Y, 0.5, u)
        ref = _reference_cg(A, b, X[u].astype(np.float64), 3)
        np.testing.assert_allclose(got[u], ref, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(exact[u], np.linalg.solve(A, b), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(loss, _reference_loss(m, acoef, bcoef, got, Y), rtol=1e-4)


def test_sweeps_with_unobserved_weight_and_row_penalties_match_numpy():
    # Rendle et al. 2021: unobserved cells weigh w0 and each row has its own lambda_u
    m, acoef, bcoef, X, Y = _problem(seed=2)
    lam = np.random.default_rng(0).uniform(0.1, 3.0, m.shape[0])
    got, loss = _run("cholesky", m, acoef, bcoef, X, Y, lam=lam, w0=0.2)
    cg, _ = _run("cg", m, acoef, bcoef, X, Y, lam=lam, w0=0.2, steps=40)
    for u in range(m.shape[0]):
        A, b = _reference_system(m, acoef, bcoef, Y, lam, u, w0=0.2)
        np.testing.assert_allclose(got[u], np.linalg.solve(A, b), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(cg[u], np.linalg.solve(A, b), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(loss, _reference_loss(m, acoef, bcoef, got, Y, w0=0.2), rtol=1e-5)


def test_cost_bounds_balance_nnz():
    indptr = np.r_[0, np.cumsum([100, 1, 1, 1, 1, 100, 1, 1, 1, 100])].astype(np.int64)
    bounds = kern.cost_bounds(indptr, 0, 3)
    assert bounds[0] == 0 and bounds[-1] == 10
    costs = [indptr[b] - indptr[a] for a, b in zip(bounds[:-1], bounds[1:])]
    assert max(costs) <= 104


# ---------------------------------------------------------------- the model

@pytest.fixture(scope="module")
def split():
    data = lr.synthetic_implicit(n_users=300, n_items=200, n_interactions=12_000, random_state=3)
    return random_split(data, test_size=0.2, random_state=0)


def test_beats_popularity_and_records_learning_curve(split):
    train, test = split
    model = ImplicitALS(n_factors=8, regularization=10.0, n_epochs=8, random_state=0).fit(train, eval_set=test)
    hist = model.history_frame()
    assert list(hist["epoch"]) == list(range(1, 9))
    assert {"train_loss", "val_ndcg", "val_precision", "val_map", "epoch_s"} <= set(hist.columns)
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    assert model.score(test) > Popularity().fit(train).score(test) + 0.03


def test_cholesky_loss_never_increases(split):
    model = ImplicitALS(n_factors=8, regularization=5.0, solver="cholesky", n_epochs=6, random_state=0)
    losses = model.fit(split[0]).history_frame()["train_loss"].to_numpy()
    assert np.all(np.diff(losses) <= 1e-6 * losses[0])


def test_thread_count_does_not_change_the_factors(split):
    one = ImplicitALS(n_factors=8, n_epochs=3, n_threads=1, random_state=0).fit(split[0])
    two = ImplicitALS(n_factors=8, n_epochs=3, n_threads=2, random_state=0).fit(split[0])
    np.testing.assert_array_equal(one.user_factors_, two.user_factors_)


def test_recovers_planted_structure():
    data = lr.synthetic_implicit(n_users=400, n_items=150, n_interactions=15_000, rank=3, random_state=5)
    model = ImplicitALS(n_factors=5, regularization=5.0, alpha=0.0, n_epochs=15, random_state=0).fit(data)
    # the planted item factors are (nearly) a linear image of the learned ones (one learned
    # direction goes to popularity, hence two spare factors)
    Q = data.planted["Q"][data.items.ids.astype(int)]
    V = model.item_factors_
    coef, *_ = np.linalg.lstsq(np.c_[V, np.ones(len(V))], Q, rcond=None)
    resid = Q - np.c_[V, np.ones(len(V))] @ coef
    r2 = 1 - resid.var(axis=0) / Q.var(axis=0)
    assert r2.min() > 0.75, r2


@pytest.mark.parametrize("w0,nu", [(1.0, 0.0), (0.3, 0.5)])
def test_fold_in_of_full_history_equals_fitted_user(split, w0, nu):
    train = split[0]
    model = ImplicitALS(n_factors=8, regularization=3.0 if nu == 0 else 0.3, alpha=2.0, unobserved_weight=w0,
                        nu=nu, solver="cholesky", n_epochs=4, random_state=0).fit(train)
    for code in (0, 5, 17):
        row = model.seen_[code]
        folded = model._fold_in_factors(row.indices.astype(np.int32), row.data)
        np.testing.assert_allclose(folded, model.user_factors_[code], rtol=1e-3, atol=1e-4)
        ids, _ = model.recommend_for_interactions(model.items_.take(row.indices), row.data, n=10)
        ref, _ = model.recommend(model.users_.ids[code], n=10)
        assert list(ids[:5]) == list(ref[:5])


def test_fold_in_bad_and_empty_input(split):
    model = ImplicitALS(n_factors=8, n_epochs=2, random_state=0).fit(split[0])
    items = model.items_.ids[:3]
    with pytest.raises(lr.DataError, match=">= 0"):
        model.recommend_for_interactions(items, [1.0, -1.0, 1.0])
    with pytest.raises(lr.DataError, match="finite"):
        model.recommend_for_interactions(items, [1.0, np.nan, 1.0])
    with pytest.raises(lr.UnknownIdError):  # an unknown item is an error, not silently dropped
        model.recommend_for_interactions([items[0], 10**9], n=5)
    np.testing.assert_array_equal(model.recommend_for_interactions([items[0], 10**9], n=5, unknown="ignore")[0],
                                  model.recommend_for_interactions([items[0]], n=5)[0])
    ids, _ = model.recommend_for_interactions([], n=5)  # no item: most popular
    assert list(ids) == list(model.items_.take(np.argsort(-model.item_popularity_, kind="stable")[:5]))


def test_bad_training_weights():
    frame = pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 1], "rating": [1.0, -2.0, 1.0]})
    with pytest.raises(lr.DataError, match=">= 0"):
        ImplicitALS(n_epochs=1).fit(frame)
    data = lr.Interactions.from_arrays([1, 1, 2], [1, 2, 1], [1.0, 1.0, 1.0], implicit=True)
    data.values[1] = np.nan
    with pytest.raises(lr.DataError, match="finite"):
        ImplicitALS(n_epochs=1).fit(data)
    with pytest.raises(lr.ModelError, match="solver must be one of"):
        ImplicitALS(solver="lu").fit(frame.assign(rating=1.0))


def test_user_with_only_zero_weights_gets_zero_factors():
    frame = pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [1, 2, 1, 3, 2], "rating": [1.0, 2.0, 1.0, 1.0, 0.0]})
    model = ImplicitALS(n_factors=2, n_epochs=3, solver="cholesky", random_state=0).fit(frame)
    np.testing.assert_allclose(model.user_factors_[model.users_.code(3)], 0.0, atol=1e-7)
    ids, _ = model.recommend(3, n=5)
    assert 2 not in set(ids) and len(ids) == 2


def test_log_confidence_and_epsilon(split):
    train = split[0]
    counts = lr.Interactions(train.users, train.items, train.user_codes, train.item_codes,
                             1.0 + (np.arange(len(train)) % 5).astype(np.float32))
    a = ImplicitALS(n_factors=4, n_epochs=2, confidence="log", epsilon=1.0, random_state=0).fit(counts)
    b = ImplicitALS(n_factors=4, n_epochs=2, confidence="log", epsilon=0.1, random_state=0).fit(counts)
    assert not np.allclose(a.user_factors_, b.user_factors_)


def test_partial_fit_users_matches_fold_in_and_appends_new_users(split):
    train = split[0]
    model = ImplicitALS(n_factors=8, n_epochs=3, solver="cholesky", random_state=0).fit(train)
    n_users = len(model.users_)
    items = model.items_.ids[[1, 4, 9, 30]]
    before = model.item_factors_.copy()
    model.partial_fit_users([10**6, model.users_.ids[0]],
                            pd.DataFrame({"user": [10**6] * 4 + [model.users_.ids[0]],
                                          "item": list(items) + [items[0]], "rating": [1, 2, 1, 1, 3.0]}))
    assert len(model.users_) == n_users + 1 and model.user_factors_.shape[0] == n_users + 1
    np.testing.assert_array_equal(model.item_factors_, before)
    new = model.users_.code(10**6)
    expect = model._fold_in_factors(model.items_.codes(items), np.array([1, 2, 1, 1], np.float32))
    np.testing.assert_allclose(model.user_factors_[new], expect, rtol=1e-3, atol=1e-4)
    assert set(model.items_.take(model.seen_[0].indices)) == {items[0]}  # history replaced
    ids, _ = model.recommend(10**6, n=5)
    assert not set(ids) & set(items)


def test_partial_fit_items_with_a_sparse_matrix(split):
    model = ImplicitALS(n_factors=8, n_epochs=3, solver="cholesky", random_state=0).fit(split[0])
    n_items = len(model.items_)
    users = np.arange(0, 40, 2)
    rows = sp.csr_matrix((np.ones(len(users), np.float32), (np.zeros(len(users), int), users)),
                         shape=(1, len(model.users_)))
    model.partial_fit_items(["brand-new"] if model.items_.ids.dtype == object else [10**7], rows)
    assert model.item_factors_.shape == (n_items + 1, 8)
    assert model.seen_.shape == (len(model.users_), n_items + 1)
    assert model.seen_[int(users[0]), n_items] == 1.0
    # a user who has the new item does not get it recommended; others can
    ids, _ = model.recommend(model.users_.ids[users[0]], n=n_items)
    assert 10**7 not in set(ids)
    with pytest.raises(lr.DataError, match="shape"):
        model.partial_fit_items([10**7], sp.csr_matrix((1, 3)))


def test_recommend_bad_input(split):
    model = ImplicitALS(n_factors=8, n_epochs=2, random_state=0).fit(split[0])
    with pytest.raises(lr.UnknownIdError):
        model.recommend(model.users_.ids[0], n=5, items=[10**9])
    with pytest.raises(lr.UnknownIdError):
        model.recommend(10**9)
    ids, _ = model.recommend([10**9], unknown="popular", n=3)
    assert ids.shape == (1, 3)
    ids, scores = model.recommend(model.users_.ids[:2], n=10**6, exclude_seen=False)
    assert ids.shape == (2, len(model.items_))


def test_fused_topn_matches_dense_scoring(split):
    from latentrec.models.kernels.topn import topn_masked

    model = ImplicitALS(n_factors=8, n_epochs=2, random_state=0).fit(split[0])
    users = np.arange(len(model.users_), dtype=np.int32)
    mask = np.zeros(len(model.items_), bool)
    mask[::2] = True
    codes, scores = model._topn_codes(users, 10, exclude_seen=True, item_mask=mask)
    dense = model.user_factors_ @ model.item_factors_.T
    ref_c, ref_s = topn_masked(dense, 10, users, model.seen_, mask)
    np.testing.assert_allclose(scores, ref_s, rtol=1e-5, atol=1e-6)
    assert np.mean(codes == ref_c) > 0.99  # float ties aside


@pytest.mark.parametrize("cls, params", [(ImplicitALS, dict(n_factors=16, regularization=0.01, n_epochs=25)),
                                         (lr.models.BPR, dict(n_factors=16, learning_rate=0.1, regularization=0.0, n_epochs=60,
                                                              n_threads=1))],
                         ids=["ImplicitALS", "BPR"])
def test_ranking_models_stop_early_on_validation_ndcg(split, cls, params):
    # issue 13: early_stopping_rounds existed on some iterative models only
    train, valid = split
    full = cls(**params, random_state=0).fit(train, eval_set=valid)
    scores = [h["val_ndcg"] for h in full.history_]
    stopped = cls(**params, early_stopping_rounds=2, random_state=0).fit(train, eval_set=valid)
    best = int(np.argmax(scores[:len(stopped.history_)]))
    assert len(stopped.history_) < len(full.history_), "overfits on purpose: it must stop"
    assert len(stopped.history_) - 1 - best >= 2  # stopped after 2 epochs without improvement
    assert stopped.score(valid) == pytest.approx(max(scores[:len(stopped.history_)]), abs=1e-6)  # best restored
    unchanged = cls(**params, early_stopping_rounds=2, random_state=0).fit(train)  # no eval_set: every epoch
    np.testing.assert_array_equal(unchanged.user_factors_, cls(**params, random_state=0).fit(train).user_factors_)
