import math

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.models.baselines import Biases
from latentrec.models import ImplicitItemKNN, ItemKNN, UserKNN
from model_suite import ModelSuite

EXPLICIT_VARIED = {"n_neighbors": 3, "shrinkage": 0.0, "min_support": 8, "min_neighbors": 12,
                   "damping": 2.0, "similarity": "pearson", "baseline": False, "max_similarities": 40,
                   "item_damping": 50.0, "user_damping": 100.0}


# ------------------------------------------------------------------ the shared suite
class TestItemKNN(ModelSuite):
    model_factory = staticmethod(lambda: ItemKNN())
    varied_params = {**EXPLICIT_VARIED, "similarity": "adjusted_cosine"}
    quality = 0.60  # Biases: 0.633 on this split, this model 0.584


class TestItemKNNPearson(ModelSuite):
    model_factory = staticmethod(lambda: ItemKNN(similarity="pearson", baseline=False, n_neighbors=20))
    varied_params = {"similarity": "cosine", "baseline": True, "n_neighbors": 5, "shrinkage": 5.0}
    quality = 0.61


class TestItemKNNAdjustedCosine(ModelSuite):
    model_factory = staticmethod(lambda: ItemKNN(similarity="adjusted_cosine", baseline=False))
    varied_params = {"similarity": "cosine", "min_neighbors": 30}
    quality = 0.625


class TestUserKNN(ModelSuite):
    model_factory = staticmethod(lambda: UserKNN())
    varied_params = {**EXPLICIT_VARIED, "similarity": "adjusted_cosine"}
    quality = 0.60


class TestUserKNNPearsonMeans(ModelSuite):
    model_factory = staticmethod(lambda: UserKNN(similarity="pearson", baseline=False))
    varied_params = {"similarity": "cosine", "n_neighbors": 5, "shrinkage": 0.0}
    quality = 0.63


class TestImplicitItemKNN(ModelSuite):
    model_factory = staticmethod(lambda: ImplicitItemKNN())
    task = "implicit"
    varied_params = {"n_neighbors": 3, "weighting": "tfidf"}
    quality = 0.16  # Popularity: 0.136 on this split, this model 0.183


class TestImplicitItemKNNBM25(ModelSuite):
    model_factory = staticmethod(lambda: ImplicitItemKNN(weighting="bm25", n_neighbors=30))
    task = "implicit"
    varied_params = {"k1": 0.2, "b": 0.0, "weighting": "none", "n_neighbors": 5}
    quality = 0.17  # Popularity 0.136, this model 0.206

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):  # counts, so that k1 matters
        return lr.synthetic_implicit(n_users=300, n_items=200, n_interactions=12_000, counts=True,
                                     random_state=3)


# ------------------------------------------------------------------ known answers by hand
@pytest.fixture
def tiny():
    # users A, B, C; items x, y, z; (A, z) is missing
    return lr.Interactions.from_arrays(
        ["A", "A", "B", "B", "B", "C", "C", "C"],
        ["x", "y", "x", "y", "z", "x", "y", "z"],
        [5.0, 3.0, 4.0, 2.0, 1.0, 1.0, 5.0, 4.0], rating_scale=(1, 5))


def test_item_cosine_by_hand(tiny):
    # item means: x = 10/3, y = 10/3, z = 5/2; over their common users (B, C):
    # s_zx = (1*4 + 4*1) / (sqrt(17) sqrt(17)) = 8/17, s_zy = (1*2 + 4*5) / (sqrt(17) sqrt(29))
    s_zx, s_zy = 8 / 17, 22 / math.sqrt(17 * 29)
    expected = 2.5 + (s_zx * (5 - 10 / 3) + s_zy * (3 - 10 / 3)) / (s_zx + s_zy)
    model = ItemKNN(similarity="cosine", baseline=False, shrinkage=0, damping=0).fit(tiny)
    assert model.predict([["A", "z"]])[0] == pytest.approx(expected, abs=1e-5)
    # the learned similarity is the same number
    ids, sims = model.similar_items("z", n=2)
    assert list(ids) == ["y", "x"]
    np.testing.assert_allclose(sims, [s_zy, s_zx], rtol=1e-5)


def test_item_pearson_by_hand_drops_negative_neighbours(tiny):
    # over B, C: z = (1, 4), x = (4, 1) -> pearson -1 (dropped); y = (2, 5) -> +1
    model = ItemKNN(similarity="pearson", baseline=False, shrinkage=0, damping=0).fit(tiny)
    assert model.predict([["A", "z"]])[0] == pytest.approx(2.5 + (3 - 10 / 3), abs=1e-5)
    # shrinkage n/(n+λ) with n = 2 common users scales the similarity, not a one-neighbour estimate
    shrunk = ItemKNN(similarity="pearson", baseline=False, shrinkage=2, damping=0).fit(tiny)
    _, sims = shrunk.similar_items("z", n=1)
    assert sims[0] == pytest.approx(2 / (2 + 2), rel=1e-5)
    # damping adds pseudo-mass at the offset: correction * s / (s + d)
    damped = ItemKNN(similarity="pearson", baseline=False, shrinkage=0, damping=1.0).fit(tiny)
    assert damped.predict([["A", "z"]])[0] == pytest.approx(2.5 + (3 - 10 / 3) / 2, abs=1e-5)


def test_user_cosine_by_hand(tiny):
    # user means A = 4, B = 7/3, C = 10/3; over items x, y:
    s_ab = (5 * 4 + 3 * 2) / math.sqrt(34 * 20)
    s_ac = (5 * 1 + 3 * 5) / math.sqrt(34 * 26)
    expected = 4 + (s_ab * (1 - 7 / 3) + s_ac * (4 - 10 / 3)) / (s_ab + s_ac)
    model = UserKNN(similarity="cosine", baseline=False, shrinkage=0, damping=0).fit(tiny)
    assert model.predict([["A", "z"]])[0] == pytest.approx(expected, abs=1e-5)
    one = UserKNN(similarity="cosine", baseline=False, shrinkage=0, damping=0, n_neighbors=1).fit(tiny)
    assert one.predict([["A", "z"]])[0] == pytest.approx(4 + (1 - 7 / 3), abs=1e-5)


def test_baseline_variant_uses_the_biases_model(tiny):
    model = ItemKNN(similarity="cosine", shrinkage=0, damping=0).fit(tiny)
    biases = Biases(item_damping=3.0, user_damping=5.0).fit(tiny)
    mu = biases.global_mean_
    uc = {u: k for k, u in enumerate(biases.users_.ids)}
    ic = {i: k for k, i in enumerate(biases.items_.ids)}
    b = {(u, i): mu + biases.user_bias_[uc[u]] + biases.item_bias_[ic[i]] for u in uc for i in ic}
    r = {("A", "x"): 5, ("A", "y"): 3, ("B", "x"): 4, ("B", "y"): 2, ("B", "z"): 1, ("C", "x"): 1,
         ("C", "y"): 5, ("C", "z"): 4}
    e = {k: v - b[k] for k, v in r.items()}

    def cos(i, j):
        common = [u for u in "ABC" if (u, i) in e and (u, j) in e]
        a = np.array([e[u, i] for u in common])
        c = np.array([e[u, j] for u in common])
        return float(a @ c / np.sqrt((a @ a) * (c @ c)))

    sims = {j: cos("z", j) for j in "xy"}
    pos = {j: s for j, s in sims.items() if s > 0}
    expected = b["A", "z"] + (sum(s * e["A", j] for j, s in pos.items()) / sum(pos.values()) if pos else 0.0)
    assert model.predict([["A", "z"]])[0] == pytest.approx(np.clip(expected, 1, 5), abs=1e-4)
    np.testing.assert_allclose(model.user_bias_, biases.user_bias_, rtol=1e-6)


def test_min_neighbors_falls_back_to_offset(tiny):
    model = ItemKNN(baseline=False, shrinkage=0, min_neighbors=3).fit(tiny)
    assert model.predict([["A", "z"]])[0] == pytest.approx(2.5)  # the item mean
    assert model.fallback_rate([["A", "z"]]) == 1.0 and model.neighbor_counts([["A", "z"]]).tolist() == [2]  # < 3
    model = ItemKNN(baseline=False, shrinkage=0, min_support=3).fit(tiny)  # z shares 2 users with x, y
    assert model.predict([["A", "z"]])[0] == pytest.approx(2.5)


def test_implicit_cosine_by_hand():
    data = lr.Interactions.from_arrays([0, 0, 1, 1, 2], ["a", "b", "a", "c", "b"])
    model = ImplicitItemKNN(n_neighbors=5).fit(data)
    # a = users {0, 1}, b = {0, 2}, c = {1}: cos(a, b) = 1/2, cos(a, c) = 1/sqrt(2), cos(b, c) = 0
    ids, sims = model.similar_items("a", n=2)
    assert list(ids) == ["c", "b"]
    np.testing.assert_allclose(sims, [1 / math.sqrt(2), 0.5], rtol=1e-6)
    # user 2 saw b: score(a) = 1/2, score(c) = 0 (not similar to b)
    pairs = pd.DataFrame({"user": [2, 2], "item": ["a", "c"]})
    assert model.predict(pairs).tolist() == pytest.approx([0.5, 0.0])
    rec, scores = model.recommend(2, n=2)
    assert rec[0] == "a" and scores[0] == pytest.approx(0.5)


def test_implicit_fold_in_uses_similarities():
    data = lr.Interactions.from_arrays([0, 0, 1, 1, 2], ["a", "b", "a", "c", "b"])
    model = ImplicitItemKNN().fit(data)
    ids, scores = model.recommend_for_interactions(["c"], n=1)
    assert list(ids) == ["a"] and scores[0] == pytest.approx(1 / math.sqrt(2), rel=1e-6)


def test_similarities_are_sparse_top_k(ratings):
    model = ItemKNN(n_neighbors=5, max_similarities=7).fit(ratings)
    S = model.similarity_
    assert S.shape == (ratings.n_items, ratings.n_items)
    assert np.diff(S.indptr).max() <= 7 and np.all(S.data > 0)
    for r in range(0, S.shape[0], 37):
        assert np.all(np.diff(S.data[S.indptr[r]:S.indptr[r + 1]]) <= 0)


def test_recommend_ranks_close_to_predict(ratings):
    # recommend's two-product score drops the k cut; with k = all stored neighbours it equals predict
    model = ItemKNN(n_neighbors=60, max_similarities=60).fit(ratings)
    codes = np.arange(ratings.n_items)
    user = ratings.users.ids[3]
    pairs = np.c_[np.full(len(codes), user), ratings.items.ids]
    pred = model.predict(pairs)
    dense = model._score_block(np.array([3], dtype=np.int32))[0]
    np.testing.assert_allclose(np.clip(dense, 1, 5), pred, rtol=1e-4, atol=1e-4)


def test_fit_is_deterministic_across_thread_counts(ratings):
    a = ItemKNN(n_threads=1).fit(ratings)
    b = ItemKNN(n_threads=2).fit(ratings)
    np.testing.assert_array_equal(a.similarity_.indices, b.similarity_.indices)
    np.testing.assert_array_equal(a.similarity_.data, b.similarity_.data)


# ------------------------------------------------------------------ bad parameters
@pytest.mark.parametrize("cls,params,message", [
    (ItemKNN, {"n_neighbors": 0}, "n_neighbors must be an integer >= 1"),
    (ItemKNN, {"similarity": "jaccard"}, "similarity must be one of"),
    (UserKNN, {"shrinkage": -1.0}, "shrinkage must be a number >= 0"),
    (UserKNN, {"shrinkage": float("nan")}, "shrinkage must be a number"),
    (ItemKNN, {"min_support": 0}, "min_support must be an integer >= 1"),
    (ItemKNN, {"baseline": "yes"}, "baseline must be one of"),
    (ItemKNN, {"damping": -0.5}, "damping must be a number >= 0"),
    (ItemKNN, {"n_neighbors": 50, "max_similarities": 10}, "max_similarities \\(10\\) must be >= n_neighbors"),
    (ImplicitItemKNN, {"weighting": "idf"}, "weighting must be one of"),
    (ImplicitItemKNN, {"B": 2.0}, "B must be a number >= 0 and <= 1"),
    (ImplicitItemKNN, {"k1": 0.0}, "k1 must be a number > 0"),
])
def test_bad_params(cls, params, message, ratings):
    with pytest.raises(lr.ModelError, match=message):
        cls(**params).fit(ratings)


def test_item_knn_fold_in_matches_a_fitted_user(ratings):
    # a visitor with the same ratings as a training user gets that user's ranking (user bias aside)
    model = ItemKNN(baseline=False).fit(ratings)
    row = model.seen_[7]
    ids, scores = model.recommend_for_interactions(model.items_.ids[row.indices], row.data, n=10)
    ref_ids, ref_scores = model.recommend(model.users_.ids[7], n=10)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5)


def test_bm25_upper_case_names_still_work_with_a_deprecation_warning():
    # issue 13: K1 / B were the only upper-case hyper-parameters
    data = lr.synthetic_implicit(n_users=60, n_items=40, n_interactions=800, random_state=1)
    new = ImplicitItemKNN(weighting="bm25", k1=0.5, b=0.3).fit(data)
    with pytest.warns(DeprecationWarning) as caught:
        old = ImplicitItemKNN(weighting="bm25", K1=0.5, B=0.3).fit(data)
    messages = [str(w.message) for w in caught]
    assert any("K1=...) is deprecated; use k1" in m for m in messages)
    assert any("B=...) is deprecated; use b" in m for m in messages)
    assert (new.similarity_ != old.similarity_).nnz == 0
