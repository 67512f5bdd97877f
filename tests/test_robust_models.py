"""Models under bad arguments and divergence (issue 16, part A).

Every public query method checks its arguments through one helper
(``Recommender._check_call`` / ``as_id_array``) and answers with the library's
errors; iterative models stop with a ModelError naming the epoch and the
hyper-parameter to change when a parameter turns non-finite or a solve fails;
the top-N kernel never writes through an index outside its block.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

import latentrec as lr
from latentrec.errors import DataError, ModelError, UnknownIdError
from latentrec.models import BPR, ImplicitALS
from latentrec.models.kernels.topn import topn_factors, topn_masked
from latentrec.models import ALS, SVDpp, BiasedMF


@pytest.fixture(scope="module")
def explicit():
    data = lr.synthetic_ratings(n_users=80, n_items=50, n_ratings=1500, random_state=3)
    return data, ALS(n_factors=4, n_epochs=2, random_state=0).fit(data)


@pytest.fixture(scope="module")
def implicit():
    data = lr.synthetic_implicit(n_users=80, n_items=50, n_interactions=1500, random_state=3)
    return data, ImplicitALS(n_factors=4, n_epochs=2, random_state=0).fit(data)


def _user(model):
    return model.users_.ids[0]


def _items(model, k=3):
    return model.items_.ids[:k]


# ---------------------------------------------------------------- bad arguments

BAD_N = [-2, -1, 0, 2.5, 3.0, "3", True, False, None, np.array([3]), [3], 1e9]

METHODS = {
    "recommend": lambda m, n: m.recommend(_user(m), n=n),
    "recommend batch": lambda m, n: m.recommend(m.users_.ids[:4], n=n),
    "recommend_for_interactions": lambda m, n: m.recommend_for_interactions(_items(m), [4.0, 2.0, 5.0], n=n),
    "similar_items": lambda m, n: m.similar_items(m.items_.ids[0], n=n),
    "similar_users": lambda m, n: m.similar_users(_user(m), n=n),
}


@pytest.mark.parametrize("n", BAD_N, ids=repr)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_bad_n_is_a_model_error_everywhere(explicit, method, n):
    """Regression (issue 16): recommend_for_interactions(n=-2) raised numpy's "negative dimensions
    are not allowed", n=2.5 was truncated and n=0 returned nothing where recommend(n=0) raised."""
    _, model = explicit
    with pytest.raises(ModelError, match="n must be a positive integer"):
        METHODS[method](model, n)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_numpy_integer_n_is_accepted(explicit, method):
    _, model = explicit
    ids, scores = METHODS[method](model, np.int64(2))
    assert ids.shape[-1] == 2 and scores.shape[-1] == 2


BAD_CALLS = {
    "recommend exclude_seen string": (lambda m: m.recommend(_user(m), exclude_seen="no"), ModelError,
                                      "exclude_seen must be True or False"),
    "recommend exclude_seen int": (lambda m: m.recommend(_user(m), exclude_seen=1), ModelError, "exclude_seen"),
    "fold-in exclude_seen string": (lambda m: m.recommend_for_interactions(_items(m), [4.0, 2.0, 5.0],
                                                                           exclude_seen="yes"),
                                    ModelError, "exclude_seen"),
    "recommend unknown option": (lambda m: m.recommend(_user(m), unknown="ignore"), ModelError,
                                 "unknown must be 'raise' or 'popular'"),
    "recommend 2-d users": (lambda m: m.recommend(np.array([[_user(m)]])), DataError, "1-d sequence"),
    "recommend unknown user": (lambda m: m.recommend("nobody"), UnknownIdError, "nobody"),
    "recommend items 2-d": (lambda m: m.recommend(_user(m), items=np.array([_items(m)])), DataError, "1-d"),
    "recommend items a scalar": (lambda m: m.recommend(_user(m), items=_items(m)[0]), DataError,
                                 "must be a sequence of ids"),
    "recommend items unknown": (lambda m: m.recommend(_user(m), items=[10**9]), UnknownIdError, "item"),
    "similar_items unknown": (lambda m: m.similar_items(10**9), UnknownIdError, "item"),
    "similar_items 2-d": (lambda m: m.similar_items(np.array([_items(m)])), DataError, "1-d"),
    "similar_users unknown": (lambda m: m.similar_users(-5), UnknownIdError, "user"),
    "fold-in 2-d items": (lambda m: m.recommend_for_interactions(np.array([_items(m)])), DataError, "1-d"),
    "fold-in weights length": (lambda m: m.recommend_for_interactions(_items(m), [1.0, 2.0]), DataError,
                               "2 ratings for 3 items"),
    "fold-in weights NaN": (lambda m: m.recommend_for_interactions(_items(m), [1.0, np.nan, 2.0]), DataError,
                            "finite"),
    "fold-in weights text": (lambda m: m.recommend_for_interactions(_items(m), ["a", "b", "c"]), DataError,
                             "ratings must be numbers"),
    "fold-in weights 2-d": (lambda m: m.recommend_for_interactions(_items(m), [[1.0, 2.0, 3.0]]), DataError,
                            "1-d"),
    "fold-in ratings missing": (lambda m: m.recommend_for_interactions(_items(m)), DataError,
                                "rating model: give the visitor's rating"),
    "predict 1-d X": (lambda m: m.predict(np.array([1, 2, 3])), DataError, r"an \(n, 2\) array"),
    "predict 3 dims": (lambda m: m.predict(np.zeros((2, 2, 2))), DataError, r"an \(n, 2\) array"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_arguments_give_library_errors(explicit, case):
    fn, error, words = BAD_CALLS[case]
    _, model = explicit
    with pytest.raises(error, match=words):
        fn(model)


IMPLICIT_CALLS = {
    "partial_fit_users 2-d ids": (lambda m, d: m.partial_fit_users(np.array([[1, 2]]), d), DataError, "1-d"),
    "partial_fit_items 2-d ids": (lambda m, d: m.partial_fit_items(np.array([[1, 2]]), d), DataError, "1-d"),
    "partial_fit_users repeated ids": (lambda m, d: m.partial_fit_users([1, 1], d), DataError, "repeat"),
    "partial_fit_users wrong shape": (lambda m, d: m.partial_fit_users([1, 2], sp.csr_matrix((3, 3))),
                                      DataError, "interactions has shape"),
    "recommend n=0": (lambda m, d: m.recommend(_user(m), n=0), ModelError, "positive integer"),
    "fold-in negative weights": (lambda m, d: m.recommend_for_interactions(_items(m), [-1.0, 1.0, 1.0]),
                                 DataError, "recommend_for_interactions"),
}


@pytest.mark.parametrize("case", sorted(IMPLICIT_CALLS))
def test_bad_arguments_implicit_models(implicit, case):
    fn, error, words = IMPLICIT_CALLS[case]
    data, model = implicit
    with pytest.raises(error, match=words):
        fn(model, data)


def test_unfitted_models_say_so():
    from sklearn.exceptions import NotFittedError

    for call in (lambda m: m.recommend(1), lambda m: m.recommend_for_interactions([1]),
                 lambda m: m.similar_items(1)):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call(ALS())


# ---------------------------------------------------------------- divergence

@pytest.fixture(scope="module")
def bigger_implicit():
    return lr.synthetic_implicit(random_state=0)


def test_bpr_divergence_names_epoch_and_learning_rate(bigger_implicit):
    """Regression (issue 16): BPR with a learning rate far too large returned NaN factors
    silently (a finite reported loss, empty recommendations)."""
    with pytest.raises(ModelError, match=r"BPR diverged at epoch \d+: \w+_factors_ has NaN or infinite values; "
                                         r"try to lower learning_rate \(now 50\.0\)"):
        BPR(learning_rate=50.0, n_epochs=5, random_state=0).fit(bigger_implicit)


@pytest.mark.realdata
def test_bpr_issue_example_on_ml100k():
    """Regression (issue 16), the reported case: BPR(learning_rate=0.5) on ml-100k returned
    normally with NaN factors, a finite loss and empty recommendations. Its factors overflow
    within the first dozen epochs (epoch 10 or 11 with random_state=0 on one thread, depending on the
    CPU's floating-point instructions)."""
    from conftest import require_dataset

    from latentrec.data.movielens import load_movielens

    data = load_movielens(path=require_dataset("ml-100k"))
    with pytest.raises(ModelError, match=r"BPR diverged at epoch (\d+): \w+_factors_ has NaN or infinite values; "
                                         r"try to lower learning_rate \(now 0\.5\)") as exc:
        BPR(learning_rate=0.5, random_state=0, n_threads=1).fit(data)
    assert 5 <= int(re.search(r"epoch (\d+)", str(exc.value)).group(1)) <= 15


@pytest.mark.parametrize("cls", [BiasedMF, SVDpp], ids=lambda c: c.__name__)
def test_sgd_models_divergence_names_learning_rate(ratings, cls):
    with pytest.raises(ModelError, match=r"diverged at epoch 1: .*lower learning_rate \(now 1000\.0\)"):
        cls(learning_rate=1000.0, n_factors=8, n_epochs=3, random_state=0).fit(ratings)


def test_als_huge_init_is_a_model_error_not_a_system_error(ratings):
    """Regression (issue 16): ALS with a huge init died with "SystemError: CPUDispatcher(...)
    returned a result with an exception set" from the kernel."""
    with pytest.raises(ModelError, match=r"ALS at epoch 1: the normal equations of (user|item) .* are singular "
                                         r"or not positive definite; raise regularization \(now 0\.1\) "
                                         r"or lower init_std \(now 1e\+30\)"):
        # 64 factors: most users rated fewer items, so Z^T Z is rank-deficient and the ridge term
        # (0.1 n) vanishes next to entries of 1e60: numerically singular in float64
        ALS(init_std=1e30, n_factors=64, n_epochs=2, random_state=0).fit(ratings)


def test_als_tiny_regularization_never_escapes_as_system_error(ratings):
    """Regression (issue 16): ALS(regularization=1e-9), allowed by its constraint, died with a
    SystemError (the hand-written Cholesky patched a non-positive pivot under fastmath). In
    float64 with LAPACK the ridge system stays solvable: the fit ends with finite factors."""
    model = ALS(regularization=1e-9, n_factors=20, n_epochs=3, random_state=0).fit(ratings)
    assert np.isfinite(model.user_factors_).all() and np.isfinite(model.item_factors_).all()
    assert np.isfinite(model.history_[-1]["train_loss"])


def test_implicit_als_singular_system_says_raise_regularization():
    """Without regularization, more factors than items makes every user's system singular."""
    data = lr.synthetic_implicit(n_users=40, n_items=6, n_interactions=150, random_state=0)
    with pytest.raises(ModelError, match=r"ImplicitALS at epoch 1: the normal equations of user .* are singular "
                                         r"or not positive definite; raise regularization \(now 0\.0\)"):
        ImplicitALS(solver="cholesky", regularization=0.0, n_factors=8, n_epochs=2, random_state=0).fit(data)


def test_partial_fit_error_leaves_the_model_unchanged(implicit):
    data, _ = implicit
    model = ImplicitALS(solver="cholesky", regularization=0.0, n_factors=4, n_epochs=1, random_state=0).fit(data)
    users, factors = model.users_, model.user_factors_.copy()
    model.item_factors_[:] = 0.0  # every new user's system is now exactly 0 x = b: singular
    with pytest.raises(ModelError, match="raise regularization"):
        model.partial_fit_users([10**6], sp.csr_matrix(np.ones((1, len(model.items_)), np.float32)))
    assert model.users_ is users
    np.testing.assert_array_equal(model.user_factors_, factors)


def test_implicit_fold_in_singular_system_is_a_model_error(implicit):
    data, _ = implicit
    model = ImplicitALS(regularization=0.0, n_factors=4, n_epochs=1, random_state=0).fit(data)
    model.item_factors_ = np.zeros_like(model.item_factors_)  # Y^T Y = 0 and no penalty: singular
    model._build_caches()  # as fit and load do once the factors are learned
    with pytest.raises(ModelError, match="the visitor folded in are singular .* raise regularization"):
        model.recommend_for_interactions(_items(model))


# ---------------------------------------------------------------- top-N kernel bounds

def _reference_topk(scores, k, seen_rows):
    """Plain NumPy: exclude the valid seen columns of each row, then the k best (ties: lower code)."""
    s = scores.astype(np.float64).copy()
    for r, cols in enumerate(seen_rows):
        cols = [c for c in cols if 0 <= c < s.shape[1]]
        s[r, cols] = -np.inf
    order = np.lexsort((np.arange(s.shape[1])[None, :].repeat(len(s), 0), -s), axis=1)[:, :k]
    return np.where(np.take_along_axis(s, order, 1) > -np.inf, order, -1)


def test_topn_kernels_skip_out_of_range_seen_indices():
    """Regression (issue 16): out-of-range seen_.indices segfaulted the top-N kernel, which
    wrote s[indices[p]] without a bounds check."""
    rng = np.random.default_rng(0)
    n_items = 30
    U = rng.normal(size=(5, 4)).astype(np.float32)
    V = rng.normal(size=(n_items, 4)).astype(np.float32)
    rows = [[1, 2, 10**7], [-3, 4], [29, 30, 31], [], [0]]
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])]
    bad = sp.csr_matrix((np.ones(indptr[-1], np.float32), np.zeros(indptr[-1], np.int32), indptr),
                        shape=(5, n_items))
    bad.indices = np.array([c for r in rows for c in r], dtype=np.int64).astype(np.int32)  # past the check
    expect = _reference_topk(U @ V.T, 6, rows)
    c_fused, _ = topn_factors(U, V, 6, np.arange(5), bad)
    c_block, _ = topn_masked(U @ V.T, 6, np.arange(5), bad)
    np.testing.assert_array_equal(c_fused, expect)
    np.testing.assert_array_equal(c_block, expect)
    c_rows, _ = topn_masked(U @ V.T, 6, np.array([0, 7, -1, 3, 4]), bad)  # rows outside seen: nothing excluded
    np.testing.assert_array_equal(c_rows[1], _reference_topk((U @ V.T)[1:2], 6, [[]])[0])


def test_topn_rejects_a_mask_of_the_wrong_length():
    with pytest.raises(ValueError, match="item_mask has shape"):
        topn_masked(np.zeros((2, 5), np.float32), 2, item_mask=np.ones(4, bool))
    with pytest.raises(ValueError, match="item_mask has shape"):
        topn_factors(np.zeros((2, 3), np.float32), np.zeros((5, 3), np.float32), 2, item_mask=np.ones(6, bool))


@pytest.mark.parametrize("name", [n for n in lr.registry.names() if n not in ("ensemble",)])
def test_a_bad_random_state_is_a_model_error_like_every_bad_hyper_parameter(name):
    # issue 13: one error class per kind of problem (it was a TypeError from the seed helper)
    if not lr.registry.available(name) or "random_state" not in lr.registry.model_class(name)().get_params():
        pytest.skip("no random_state here")
    model = lr.registry.create(name, random_state="seven")
    data = lr.synthetic_ratings(30, 20, 200, random_state=0)
    with pytest.raises(lr.ModelError, match="random_state must be an int"):
        model.fit(data.to_implicit() if model.task == "implicit" else data)
