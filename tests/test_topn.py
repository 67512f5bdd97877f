"""Top-n kernels against a NumPy reference (stable sort, ties to the lower code)."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from latentrec._util import kernel_threads
from latentrec.models.kernels.topn import topn_factors, topn_masked


def _reference(scores, k, rows=None, seen=None, mask=None):
    s = np.array(scores, dtype=np.float64)
    if seen is not None:
        dense = np.zeros(s.shape, bool)
        sub = seen[rows]
        for r in range(len(rows)):
            dense[r, sub[r].indices] = True
        s[dense] = -np.inf
    if mask is not None:
        s[:, ~mask] = -np.inf
    s[np.isnan(s)] = -np.inf
    codes = np.full((len(s), k), -1)
    vals = np.full((len(s), k), -np.inf)
    for r in range(len(s)):
        order = np.argsort(-s[r], kind="stable")
        order = order[np.isfinite(s[r][order])][:k]
        codes[r, :len(order)] = order
        vals[r, :len(order)] = s[r][order]
    return codes, vals


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    U = rng.normal(size=(57, 6)).astype(np.float32)
    V = rng.normal(size=(40, 6)).astype(np.float32)
    V[7] = V[3]  # exact ties
    seen = sp.random(80, 40, density=0.2, format="csr", random_state=1)
    seen.sort_indices()
    rows = rng.integers(0, 80, 57)
    mask = rng.random(40) < 0.7
    return U, V, seen, rows, mask


@pytest.mark.parametrize("block", [1, 5, 128])
def test_topn_factors_matches_reference(problem, block):
    U, V, seen, rows, mask = problem
    ia = np.linspace(-1, 1, 40).astype(np.float32)
    ra = np.arange(57, dtype=np.float32)
    with kernel_threads(0):
        c, s = topn_factors(U, V, 10, rows, seen, mask, item_add=ia, row_add=ra, block=block)
    scores = (U @ V.T + ia).astype(np.float32)
    rc, rs = _reference(scores, 10, rows, seen, mask)
    np.testing.assert_array_equal(c, rc)
    np.testing.assert_allclose(s, rs + ra[:, None], rtol=1e-5, atol=1e-5)


def test_topn_masked_matches_reference_and_pads(problem):
    U, V, seen, rows, mask = problem
    scores = (U @ V.T).astype(np.float32)
    scores[0, 5] = np.nan  # never recommended
    c, s = topn_masked(scores.copy(), 45, rows, seen, mask)
    rc, rs = _reference(scores, 45, rows, seen, mask)
    np.testing.assert_array_equal(c, rc)
    np.testing.assert_allclose(s, rs, rtol=1e-6)
    assert (c[:, -1] == -1).all() and np.isneginf(s[:, -1]).all()


def test_ties_break_towards_lower_code():
    scores = np.zeros((2, 6), np.float32)
    c, _ = topn_masked(scores, 3)
    np.testing.assert_array_equal(c, [[0, 1, 2], [0, 1, 2]])
    with kernel_threads(1):
        c, _ = topn_factors(np.zeros((2, 3), np.float32), np.ones((6, 3), np.float32), 3)
    np.testing.assert_array_equal(c, [[0, 1, 2], [0, 1, 2]])


def test_empty_inputs():
    c, s = topn_factors(np.zeros((0, 3), np.float32), np.ones((6, 3), np.float32), 3)
    assert c.shape == (0, 3)
    c, s = topn_masked(np.zeros((2, 4), np.float32), 0)
    assert c.shape == (2, 0)


def test_rating_models_recommend_predicted_ratings_clipped_to_the_scale():
    # issue 17: recommend printed 5.4956 on a 1-5 scale; fold-in scores had no stated meaning
    import latentrec as lr

    data = lr.synthetic_ratings(80, 40, 2000, random_state=3)
    model = lr.models.BiasedMF(n_factors=8, n_epochs=80, regularization=0.0, random_state=0).fit(data)
    lo, hi = model.rating_scale_
    ids, raw = model.recommend(model.users_.ids, n=40, raw_scores=True, exclude_seen=False)
    assert raw.max() > hi
    ids2, clipped = model.recommend(model.users_.ids, n=40, exclude_seen=False)
    np.testing.assert_array_equal(ids, ids2)  # same order
    np.testing.assert_allclose(clipped, np.clip(raw, lo, hi))
    assert model.score_kind() == "rating" and model.score_kind(fold_in=True) == "rating"
    items = model.items_.ids[:5]
    pred = model.recommend_for_interactions(items, [5, 5, 5, 5, 5], n=10)[1]
    assert pred.max() <= hi and pred.min() >= lo
    # ranking models' scores are scores, never clipped
    implicit = lr.models.EASE().fit(data.to_implicit())
    assert implicit.score_kind() == "score"
    # a rating model whose fold-in is a similarity sum says so and is not clipped
    knn = lr.models.UserKNN().fit(data)
    assert knn.score_kind() == "rating" and knn.score_kind(fold_in=True) == "score"


def test_rating_baselines_fold_in_predicts_ratings_not_popularity():
    import latentrec as lr

    data = lr.synthetic_ratings(60, 30, 1200, random_state=2)
    model = lr.models.ItemMean().fit(data)
    ids, scores = model.recommend_for_interactions(model.items_.ids[:2], [4, 4], n=5)
    assert model.score_kind(fold_in=True) == "rating"
    np.testing.assert_allclose(scores, model.predict(pd.DataFrame({"user": [-999] * 5, "item": ids})), rtol=1e-5)
