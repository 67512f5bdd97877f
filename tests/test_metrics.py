"""Metrics: hand-checked examples, a slow pure-Python reference, hypothesis properties (seeded)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from latentrec import metrics
from latentrec.errors import DataError

SETTINGS = settings(derandomize=True, max_examples=80, deadline=None)


def csr(rows_of_items, n_items):
    """CSR whose row r holds a 1 at each item of rows_of_items[r]."""
    m = sp.lil_matrix((len(rows_of_items), n_items), dtype=np.float32)
    for r, items in enumerate(rows_of_items):
        for i in items:
            m[r, i] = 1.0
    return m.tocsr()


# ---------------------------------------------------------------- rating metrics
def test_rating_metrics_hand_example():
    y, p = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 1.0, 4.0]
    # errors 1, 0, -2, 0 -> squares 1, 0, 4, 0
    assert metrics.mse(y, p) == pytest.approx(5 / 4)
    assert metrics.rmse(y, p) == pytest.approx(math.sqrt(5 / 4))
    assert metrics.mae(y, p) == pytest.approx(3 / 4)
    # mean(y) = 2.5, SS_tot = 2.25 + .25 + .25 + 2.25 = 5, SS_res = 5 -> R² = 0
    assert metrics.r2(y, p) == pytest.approx(0.0)
    assert metrics.r2(y, y) == 1.0
    assert metrics.r2([3, 3], [3, 3]) == 1.0 and metrics.r2([3, 3], [3, 4]) == 0.0


def test_rating_metrics_agree_with_sklearn():
    from sklearn import metrics as skm

    rng = np.random.default_rng(0)
    y, p = rng.uniform(1, 5, 200), rng.uniform(1, 5, 200)
    assert metrics.mse(y, p) == pytest.approx(skm.mean_squared_error(y, p))
    assert metrics.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert metrics.r2(y, p) == pytest.approx(skm.r2_score(y, p))


@pytest.mark.parametrize("fn", [metrics.rmse, metrics.mse, metrics.mae, metrics.r2])
def test_rating_metrics_validate_input(fn):
    with pytest.raises(DataError, match="3 values but y_pred has 2"):
        fn([1, 2, 3], [1, 2])
    with pytest.raises(DataError, match="empty"):
        fn([], [])


# ---------------------------------------------------------------- ranking: hand-checked
def test_ranking_hand_example():
    # k = 3, 5 items.
    # user 0: relevant {1, 3}, list [1, 2, 3] -> hits 1,0,1
    #   P = 2/3, R = 2/2, Rcap = 2/2, DCG = 1/log2(2) + 1/log2(4) = 1.5,
    #   IDCG = 1 + 1/log2(3), AP = (P@1 + P@3) / min(2,3) = (1 + 2/3) / 2 = 5/6, hit 1, RR 1
    # user 1: relevant {0, 4}, list [2, 4, -1] -> hits 0,1,0
    #   P = 1/3, R = 1/2, Rcap = 1/2, DCG = 1/log2(3), IDCG = 1 + 1/log2(3),
    #   AP = (P@2) / 2 = (1/2) / 2 = 1/4, hit 1, RR 1/2
    # user 2: no relevant item -> left out of every average
    # user 3: relevant {0, 1, 2, 4} (4 > k), list [3, 0, 1] -> hits 0,1,1
    #   P = 2/3, R = 2/4, Rcap = 2/3, DCG = 1/log2(3) + 1/log2(4),
    #   IDCG = 1 + 1/log2(3) + 1/2, AP = (P@2 + P@3) / min(4,3) = (1/2 + 2/3) / 3 = 7/18, hit 1, RR 1/2
    rec = np.array([[1, 2, 3], [2, 4, -1], [0, 1, 2], [3, 0, 1]])
    truth = csr([[1, 3], [0, 4], [], [0, 1, 2, 4]], 5)
    l3 = 1 / math.log2(3)
    expected = {
        "precision": [2 / 3, 1 / 3, 2 / 3],
        "recall": [1.0, 0.5, 0.5],
        "recall_capped": [1.0, 0.5, 2 / 3],
        "ndcg": [1.5 / (1 + l3), l3 / (1 + l3), (l3 + 0.5) / (1.5 + l3)],
        "map": [5 / 6, 1 / 4, 7 / 18],
        "hit_rate": [1.0, 1.0, 1.0],
        "mrr": [1.0, 0.5, 0.5],
    }
    per_user = metrics.ranking_metrics(rec, truth, k=3, metrics=metrics.RANKING_METRICS, per_user=True)
    np.testing.assert_array_equal(per_user["users"], [0, 1, 3])
    means = metrics.ranking_metrics(rec, truth, k=3, metrics=metrics.RANKING_METRICS)
    for name, values in expected.items():
        np.testing.assert_allclose(per_user[name], values, err_msg=name)
        assert means[name] == pytest.approx(np.mean(values)), name


def test_ranking_default_keys_and_miss_everything():
    rec = np.array([[0, 1]])
    out = metrics.ranking_metrics(rec, csr([[2]], 3), k=2)
    assert list(out) == list(metrics.DEFAULT_RANKING)
    assert all(v == 0.0 for v in out.values())


def test_ranking_repeated_item_counts_once_and_short_lists_are_padded():
    # list [1, 1] against {1}: one hit at rank 1, the repeat is a miss -> P@2 = 1/2 (not 1)
    out = metrics.ranking_metrics(np.array([[1, 1]]), csr([[1]], 2), k=2)
    assert out["precision"] == 0.5 and out["map"] == 1.0
    # a list of one column at k = 3: P = 1/3
    assert metrics.ranking_metrics(np.array([[1]]), csr([[1]], 2), k=3)["precision"] == pytest.approx(1 / 3)


def test_explicit_zeros_in_truth_are_not_relevant():
    truth = sp.csr_matrix((np.array([1.0, 0.0], dtype=np.float32), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    out = metrics.ranking_metrics(np.array([[1, 0]]), truth, k=2, metrics=("recall", "mrr"))
    assert out == {"recall": 1.0, "mrr": 0.5}


def test_no_user_with_relevant_items_gives_nan():
    out = metrics.ranking_metrics(np.array([[0]]), csr([[]], 2), k=1)
    assert all(math.isnan(v) for v in out.values())


def test_coverage_hand_example():
    rec = np.array([[0, 1, 2], [1, 3, -1]])
    assert metrics.coverage(rec, 10) == pytest.approx(4 / 10)  # items 0, 1, 2, 3
    assert metrics.coverage(rec, 10, k=1) == pytest.approx(2 / 10)  # items 0, 1
    with pytest.raises(DataError, match="n_items is 3"):
        metrics.coverage(rec, 3)


@pytest.mark.parametrize("rec, truth, k, match", [
    (np.array([[0, 1]]), csr([[0], [1]], 3), 2, "1 rows .* truth has 2"),
    (np.array([[0, 5]]), csr([[0]], 3), 2, "item code 5"),
    (np.array([[0.5, 1]]), csr([[0]], 3), 2, "integer array"),
    (np.array([[0, 1]]), csr([[0]], 3), 0, "k must"),
    (np.array([[0, 1]]), np.ones((1, 3)), 2, "sparse"),
])
def test_ranking_bad_input(rec, truth, k, match):
    with pytest.raises(DataError, match=match):
        metrics.ranking_metrics(rec, truth, k=k)


def test_unknown_metric_name():
    with pytest.raises(DataError, match="unknown ranking metric"):
        metrics.ranking_metrics(np.array([[0]]), csr([[0]], 1), metrics=("auc",))


# ---------------------------------------------------------------- ranking: reference + properties
def reference(rec_row, relevant, k):
    """Slow pure-Python definitions (the module docstring), one user."""
    seen, hits = set(), []
    for j in range(k):
        item = rec_row[j] if j < len(rec_row) else -1
        hits.append(1 if item >= 0 and item in relevant and item not in seen else 0)
        if item >= 0:
            seen.add(item)
    n_hits, n_rel, capped = sum(hits), len(relevant), min(len(relevant), k)
    dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
    idcg = sum(1 / math.log2(j + 2) for j in range(capped))
    ap = sum(hits[j] * sum(hits[: j + 1]) / (j + 1) for j in range(k)) / capped
    first = next((j + 1 for j, h in enumerate(hits) if h), None)
    return {"precision": n_hits / k, "recall": n_hits / n_rel, "recall_capped": n_hits / capped,
            "ndcg": dcg / idcg, "map": ap, "hit_rate": float(n_hits > 0), "mrr": 1 / first if first else 0.0}


@st.composite
def ranking_case(draw):
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 12))
    width = draw(st.integers(0, 8))
    k = draw(st.integers(1, 8))
    rec = np.array(draw(st.lists(st.lists(st.integers(-1, n_items - 1), min_size=width, max_size=width),
                                 min_size=n_users, max_size=n_users)), dtype=np.int64).reshape(n_users, width)
    relevant = draw(st.lists(st.sets(st.integers(0, n_items - 1)), min_size=n_users, max_size=n_users))
    return rec, relevant, n_items, k


@SETTINGS
@given(ranking_case())
def test_agrees_with_reference(case):
    rec, relevant, n_items, k = case
    got = metrics.ranking_metrics(rec, csr(relevant, n_items), k=k, metrics=metrics.RANKING_METRICS, per_user=True)
    users = [u for u, rel in enumerate(relevant) if rel]
    np.testing.assert_array_equal(got["users"], users)
    for name in metrics.RANKING_METRICS:
        want = [reference(list(rec[u]), relevant[u], k)[name] for u in users]
        np.testing.assert_allclose(got[name], want, atol=1e-12, err_msg=name)
        assert np.all((got[name] >= 0) & (got[name] <= 1 + 1e-12)), name


@SETTINGS
@given(ranking_case())
def test_recall_monotone_in_k(case):
    rec, relevant, n_items, _ = case
    truth = csr(relevant, n_items)
    recalls = [metrics.ranking_metrics(rec, truth, k=k, metrics=("recall", "hit_rate"), per_user=True)
               for k in range(1, rec.shape[1] + 2)]
    for a, b in zip(recalls, recalls[1:]):
        assert np.all(b["recall"] >= a["recall"] - 1e-12) and np.all(b["hit_rate"] >= a["hit_rate"])


@SETTINGS
@given(st.integers(1, 12), st.integers(1, 10), st.randoms(use_true_random=False), st.data())
def test_ndcg_is_one_when_top_k_are_the_relevant_items(n_items, k, rnd, data):
    n_rel = data.draw(st.integers(1, min(k, n_items)))
    relevant = rnd.sample(range(n_items), n_rel)  # a random order of the relevant items
    others = [i for i in range(n_items) if i not in relevant]
    truth = csr([relevant], n_items)
    for tail in ([-1] * (k - n_rel), (others + [-1] * k)[: k - n_rel]):  # padding, or misses after them
        out = metrics.ranking_metrics(np.array([relevant + tail]), truth, k=k)
        assert out["ndcg"] == pytest.approx(1.0) and out["recall"] == 1.0 and out["map"] == pytest.approx(1.0)
    if others and n_rel < k:  # a miss ahead of a relevant item costs ndcg
        row = ([others[0]] + relevant + [-1] * k)[:k]
        assert metrics.ranking_metrics(np.array([row]), truth, k=k)["ndcg"] < 1.0


def test_fast_on_a_batch_matches_slow_reference():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 300, 500, 10
    truth = (sp.random(n_users, n_items, density=0.03, random_state=1, format="csr") > 0).astype(np.float32)
    rec = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    got = metrics.ranking_metrics(rec, truth, k=k, metrics=metrics.RANKING_METRICS)
    rel = [set(truth.indices[truth.indptr[u]:truth.indptr[u + 1]].tolist()) for u in range(n_users)]
    users = [u for u in range(n_users) if rel[u]]
    for name in metrics.RANKING_METRICS:
        want = np.mean([reference(list(rec[u]), rel[u], k)[name] for u in users])
        assert got[name] == pytest.approx(want), name
