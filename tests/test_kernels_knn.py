"""The KNN numba kernels agree with plain NumPy references on small random matrices."""

import numpy as np
import pytest
import scipy.sparse as sp

from latentrec.models.kernels.knn import COSINE, PEARSON, SCALED_DOT, predict_pairs, sparse_topk_similarity


def random_rows(n=30, m=25, density=0.4, seed=0, positive=False):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, m)) < density
    values = rng.uniform(0.5, 5.0, (n, m)) if positive else rng.normal(size=(n, m))
    dense = np.where(mask, values, 0.0).astype(np.float32)
    return dense, mask


# ------------------------------------------------------------------ NumPy references
def reference_similarity(dense, mask, mode, shrinkage=0.0, min_support=1, scale=None):
    """Full n x n similarity matrix computed pair by pair (float64), non-positive set to 0."""
    n = dense.shape[0]
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            common = mask[i] & mask[j]
            f = int(common.sum())
            if f < min_support or f == 0:
                continue
            a, b = dense[i, common].astype(np.float64), dense[j, common].astype(np.float64)
            if mode == COSINE:
                den = np.sqrt((a * a).sum() * (b * b).sum())
                s = (a * b).sum() / den if den > 0 else 0.0
            elif mode == PEARSON:
                ac, bc = a - a.mean(), b - b.mean()
                den = np.sqrt((ac * ac).sum() * (bc * bc).sum())
                s = (ac * bc).sum() / den if den > 1e-9 else 0.0
            else:
                s = float(dense[i].astype(np.float64) @ dense[j]) * scale[i] * scale[j]
            s *= f / (f + shrinkage)
            out[i, j] = s if s > 0 else 0.0
    return out


def reference_topk(full, k):
    """Per row: the k largest positive entries, ties to the lower column."""
    rows = []
    for row in full:
        cand = np.flatnonzero(row > 0)
        order = cand[np.lexsort((cand, -row[cand]))][:k]
        rows.append((order, row[order]))
    return rows


def reference_predict(sim_rows, context_dense, context_mask, targets, contexts, offsets, k, min_k, den_reg=0.0):
    out = np.empty(len(targets))
    for p, (t, c) in enumerate(zip(targets, contexts)):
        idx, sims = sim_rows[t]
        used = [(s, context_dense[c, j]) for j, s in zip(idx, sims) if context_mask[c, j]][:k]
        est = offsets[p]
        if len(used) >= max(min_k, 1):
            s = np.array([x[0] for x in used])
            e = np.array([x[1] for x in used])
            est += (s * e).sum() / (s.sum() + den_reg)
        out[p] = est
    return out


# ------------------------------------------------------------------ agreement
@pytest.mark.parametrize("mode", [COSINE, PEARSON])
@pytest.mark.parametrize("shrinkage,min_support,k,n", [(0.0, 1, 5, 30), (10.0, 3, 8, 30), (2.0, 1, 100, 30),
                                                       (0.0, 2, 90, 130)])
def test_similarity_matches_reference(mode, shrinkage, min_support, k, n):
    # k <= 64 keeps a heap per row, larger k collects and selects: both paths are covered
    dense, mask = random_rows(n=n, seed=mode * 10 + k, positive=n > 100)  # positive: > k candidates
    if mode == PEARSON:
        # one-pass float32 sums lose digits when a pair's variance over 1-2 common
        # contexts is tiny; the models shrink such pairs to nearly nothing anyway
        min_support = max(min_support, 3)  # the model centres rows before calling the kernel; do the same
        means = dense.sum(1) / np.maximum(mask.sum(1), 1)
        dense = np.where(mask, dense - means[:, None], 0).astype(np.float32)
    S = sparse_topk_similarity(sp.csr_matrix(dense * mask), mode, shrinkage=shrinkage,
                               min_support=min_support, max_keep=k)
    # explicit zeros (a value exactly 0 that is observed) never occur with continuous data
    ref = reference_topk(reference_similarity(dense, mask, mode, shrinkage, min_support), k)
    for i, (idx, sims) in enumerate(ref):
        got_idx = S.indices[S.indptr[i]:S.indptr[i + 1]]
        got_sim = S.data[S.indptr[i]:S.indptr[i + 1]]
        np.testing.assert_allclose(got_sim, sims, rtol=2e-4, atol=2e-5)
        # the order of (near-)ties is float rounding; elsewhere the neighbours must be identical
        distinct = np.abs(np.diff(np.r_[np.inf, sims, -np.inf])) > 1e-4
        clear = distinct[:-1] & distinct[1:]
        np.testing.assert_array_equal(got_idx[clear], idx[clear])
        assert set(got_idx) == set(idx) or len(idx) == k


@pytest.mark.parametrize("normalise", [True, False])
def test_scaled_dot_matches_reference(normalise):
    dense, mask = random_rows(n=40, m=30, density=0.3, seed=5, positive=True)
    norms = np.sqrt((dense.astype(np.float64) ** 2).sum(1))
    scale = (1 / np.maximum(norms, 1e-12)) if normalise else np.ones(len(dense))
    S = sparse_topk_similarity(sp.csr_matrix(dense), SCALED_DOT, max_keep=6, scale=scale.astype(np.float32))
    ref = reference_topk(reference_similarity(dense, mask, SCALED_DOT, scale=scale), 6)
    for i, (idx, sims) in enumerate(ref):
        np.testing.assert_array_equal(S.indices[S.indptr[i]:S.indptr[i + 1]], idx)
        np.testing.assert_allclose(S.data[S.indptr[i]:S.indptr[i + 1]], sims, rtol=2e-4)


def test_similarity_never_forms_self_pairs_and_rows_sorted():
    dense, mask = random_rows(n=50, m=40, seed=9)
    S = sparse_topk_similarity(sp.csr_matrix(dense), COSINE, max_keep=10)
    for i in range(50):
        row = S.data[S.indptr[i]:S.indptr[i + 1]]
        assert i not in set(S.indices[S.indptr[i]:S.indptr[i + 1]])
        assert np.all(np.diff(row) <= 0) and np.all(row > 0) and len(row) <= 10


@pytest.mark.parametrize("k,min_k,den_reg", [(3, 1, 0.0), (10, 2, 0.5), (1, 0, 0.0), (5, 4, 0.0)])
def test_predict_matches_reference(k, min_k, den_reg):
    rng = np.random.default_rng(k + min_k)
    dense, mask = random_rows(n=20, m=35, seed=k)  # 20 targets (items) x 35 contexts (users)
    S = sparse_topk_similarity(sp.csr_matrix(dense), COSINE, max_keep=12)
    sim_rows = [(S.indices[S.indptr[i]:S.indptr[i + 1]], S.data[S.indptr[i]:S.indptr[i + 1]]) for i in range(20)]
    context_dense = rng.normal(size=(35, 20)).astype(np.float32)  # residuals users x items
    context_mask = rng.random((35, 20)) < 0.5
    C = sp.csr_matrix(np.where(context_mask, context_dense, 0))
    C.eliminate_zeros()
    targets = rng.integers(0, 20, 200).astype(np.int32)
    contexts = rng.integers(0, 35, 200).astype(np.int32)
    offsets = rng.normal(3, 0.3, 200).astype(np.float32)
    out, cnt = predict_pairs(targets, contexts, offsets, S, C, k, min_k, den_reg)
    ref = reference_predict(sim_rows, context_dense, context_mask, targets, contexts, offsets, k, min_k, den_reg)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert cnt.max() <= k


def test_predict_ties_go_to_the_lower_code():
    # target 0 has neighbours 1, 2, 3 all at similarity 0.5; k = 2 takes 1 and 2
    S = sp.csr_matrix((np.full(3, 0.5, np.float32), [1, 2, 3], [0, 3, 3, 3, 3]), shape=(4, 4))
    C = sp.csr_matrix(np.array([[0, 1.0, 2.0, 10.0]], dtype=np.float32))
    out, cnt = predict_pairs(np.array([0]), np.array([0]), np.array([3.0]), S, C, 2, 1)
    assert out[0] == pytest.approx(3.0 + 1.5) and cnt[0] == 2
