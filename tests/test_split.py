"""Splitters: every guarantee of latentrec.split tested on random small Interactions (hypothesis, seeded)."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latentrec import split
from latentrec.data.interactions import Interactions
from latentrec.data.vocab import Vocabulary
from latentrec.errors import DataError

SETTINGS = settings(derandomize=True, max_examples=60, deadline=None)


def make(users, items, timestamps=None, n_users=None, n_items=None) -> Interactions:
    """Interactions whose value is the row number: every row is unique and traceable."""
    users = np.asarray(users, dtype=np.int32)
    items = np.asarray(items, dtype=np.int32)
    n_users = n_users or (int(users.max()) + 1 if len(users) else 1)
    n_items = n_items or (int(items.max()) + 1 if len(items) else 1)
    return Interactions(Vocabulary(np.arange(n_users)), Vocabulary(np.arange(n_items)), users, items,
                        np.arange(len(users), dtype=np.float32),
                        None if timestamps is None else np.asarray(timestamps, dtype=np.int64),
                        rating_scale=(0.0, 1e6))


@st.composite
def interactions(draw, min_rows=0, max_rows=60):
    n = draw(st.integers(min_rows, max_rows))
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 10))
    users = draw(st.lists(st.integers(0, n_users - 1), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))  # small range: many ties
    return make(users, items, ts, n_users, n_items)


def rows(data: Interactions) -> np.ndarray:
    """The rows as a sorted (n, 4) array of (user, item, value, timestamp): a multiset."""
    ts = data.timestamps if data.timestamps is not None else np.zeros(len(data), dtype=np.int64)
    a = np.column_stack([data.user_codes, data.item_codes, data.values, ts]).astype(np.float64)
    return a[np.lexsort(a.T[::-1])] if len(a) else a.reshape(0, 4)


def assert_partition(data: Interactions, *parts: Interactions) -> None:
    """Disjoint as row sets, union is the input, vocabularies shared."""
    tags = [set(p.values.tolist()) for p in parts]
    for a in range(len(parts)):
        assert len(tags[a]) == len(parts[a])  # no row duplicated inside a part
        assert parts[a].users is data.users and parts[a].items is data.items
        for b in range(a + 1, len(parts)):
            assert not tags[a] & tags[b]
    union = Interactions(data.users, data.items, np.concatenate([p.user_codes for p in parts]),
                         np.concatenate([p.item_codes for p in parts]), np.concatenate([p.values for p in parts]),
                         np.concatenate([p.timestamps for p in parts]))
    np.testing.assert_array_equal(rows(union), rows(data))


def test_hand_example_random_split_counts_exactly():
    data = make(np.arange(10) % 3, np.arange(10))
    train, test = split.random_split(data, 0.25, random_state=0)
    assert len(test) == 2 and len(train) == 8  # round(2.5) = 2 (half to even)
    train, test = split.random_split(data, 0.35, random_state=0)
    assert len(test) == 4  # round(3.5) = 4


@SETTINGS
@given(interactions(), st.floats(0.05, 0.95), st.integers(0, 2**31))
def test_random_split(data, test_size, seed):
    s = split.random_split(data, test_size, random_state=seed)
    assert_partition(data, *s)
    assert len(s.test) == int(round(test_size * len(data)))
    again = split.random_split(data, test_size, random_state=seed)
    np.testing.assert_array_equal(s.test.values, again.test.values)


def test_different_seeds_differ():
    data = make(np.arange(200) % 17, np.arange(200) % 23)
    for fn in (lambda d, s: split.random_split(d, 0.2, random_state=s),
               lambda d, s: split.user_holdout(d, 0.2, 5, random_state=s),
               lambda d, s: split.leave_k_out(d, 2, random_state=s),
               lambda d, s: next(split.kfold(d, 5, random_state=s))):
        assert not np.array_equal(fn(data, 1).test.values, fn(data, 2).test.values)
    a = split.strong_generalization_split(data, 0.3, random_state=1)
    b = split.strong_generalization_split(data, 0.3, random_state=2)
    assert not np.array_equal(a.test.values, b.test.values)


def test_generator_random_state_accepted_and_global_rng_untouched():
    data = make(np.arange(50) % 5, np.arange(50))
    state = np.random.get_state()
    a = split.random_split(data, 0.2, random_state=np.random.default_rng(3))
    b = split.random_split(data, 0.2, random_state=3)
    np.testing.assert_array_equal(a.test.values, b.test.values)
    assert np.array_equal(np.random.get_state()[1], state[1])


@SETTINGS
@given(interactions(min_rows=5), st.integers(2, 5), st.integers(0, 2**31))
def test_kfold_every_row_in_exactly_one_test_fold(data, n_splits, seed):
    folds = list(split.kfold(data, n_splits, random_state=seed))
    assert len(folds) == n_splits
    for train, test in folds:
        assert_partition(data, train, test)
    assert_partition(data, *[test for _, test in folds])
    sizes = [len(t) for _, t in folds]
    assert max(sizes) - min(sizes) <= 1
    again = list(split.kfold(data, n_splits, random_state=seed))
    for (_, a), (_, b) in zip(folds, again):
        np.testing.assert_array_equal(a.values, b.values)


@SETTINGS
@given(interactions(), st.integers(0, 2**31))
def test_train_val_test(data, seed):
    parts = split.train_val_test_split(data, 0.1, 0.3, random_state=seed)
    assert_partition(data, *parts)
    assert len(parts.val) == int(round(0.1 * len(data))) and len(parts.test) == int(round(0.3 * len(data)))


@SETTINGS
@given(interactions(), st.integers(1, 3), st.integers(0, 2**31))
def test_leave_k_out(data, k, seed):
    s = split.leave_k_out(data, k, random_state=seed)
    assert_partition(data, *s)
    counts = data.user_counts()
    test_counts = np.bincount(s.test.user_codes, minlength=data.n_users)
    np.testing.assert_array_equal(test_counts, np.where(counts > k, k, 0))


@SETTINGS
@given(interactions(), st.floats(0.05, 0.95), st.integers(2, 6), st.integers(0, 2**31))
def test_user_holdout(data, test_size, m, seed):
    s = split.user_holdout(data, test_size, m, random_state=seed)
    assert_partition(data, *s)
    counts = data.user_counts()
    test_counts = np.bincount(s.test.user_codes, minlength=data.n_users)
    train_counts = np.bincount(s.train.user_codes, minlength=data.n_users)
    below = counts < m
    assert np.all(test_counts[below] == 0)  # users below m keep everything in train
    eligible = ~below & (counts > 0)
    assert np.all(test_counts[eligible] >= 1) and np.all(train_counts[eligible] >= 1)
    expected = np.clip(np.round(test_size * counts), 1, counts - 1)
    np.testing.assert_array_equal(test_counts[eligible], expected[eligible])
    again = split.user_holdout(data, test_size, m, random_state=seed)
    np.testing.assert_array_equal(s.test.values, again.test.values)


def test_user_holdout_hand_example():
    # user 0: 10 rows -> round(0.2*10)=2 test; user 1: 4 rows < m=5 -> all train; user 2: 5 rows -> 1 test
    users = [0] * 10 + [1] * 4 + [2] * 5
    s = split.user_holdout(make(users, np.arange(19)), 0.2, 5, random_state=0)
    np.testing.assert_array_equal(np.bincount(s.test.user_codes, minlength=3), [2, 0, 1])


@SETTINGS
@given(interactions(), st.integers(1, 3))
def test_leave_last_out_orders_by_time(data, n):
    s = split.leave_last_out(data, n)
    assert_partition(data, *s)
    counts = data.user_counts()
    np.testing.assert_array_equal(np.bincount(s.test.user_codes, minlength=data.n_users),
                                  np.where(counts > n, n, 0))
    for u in np.unique(s.test.user_codes):
        assert s.test.timestamps[s.test.user_codes == u].min() >= s.train.timestamps[s.train.user_codes == u].max()
    np.testing.assert_array_equal(split.leave_last_out(data, n).test.values, s.test.values)  # deterministic


def test_leave_last_out_ties_broken_by_row_order():
    data = make([0, 0, 0, 1, 1], [0, 1, 2, 0, 1], timestamps=[5, 9, 9, 1, 0])
    _, test = split.leave_last_out(data, 1)
    assert sorted(test.values.tolist()) == [2.0, 3.0]  # user 0: rows 1,2 tie at 9 -> later row 2; user 1: row 3


@SETTINGS
@given(interactions(min_rows=1), st.floats(0.05, 0.95))
def test_temporal_split_quantile(data, test_size):
    s = split.temporal_split(data, test_size)
    assert_partition(data, *s)
    assert len(s.test) == int(round(test_size * len(data)))
    if len(s.test) and len(s.train):
        assert s.train.timestamps.max() <= s.test.timestamps.min()


@SETTINGS
@given(interactions(min_rows=1), st.integers(0, 21))
def test_temporal_split_at(data, at):
    s = split.temporal_split(data, at=at)
    assert_partition(data, *s)
    assert np.all(s.train.timestamps < at) and np.all(s.test.timestamps >= at)


@pytest.mark.parametrize("at", [
    86400, 86400.0, 86399.5, np.int64(86400), np.float32(86400.0),
    "1970-01-02", "1970-01-02T00:00:00Z", "1970-01-02 01:00:00+01:00",
    datetime.datetime(1970, 1, 2), datetime.datetime(1970, 1, 2, tzinfo=datetime.timezone.utc),
    np.datetime64("1970-01-02"), pd.Timestamp("1970-01-02"),
])
def test_temporal_split_at_a_timestamp_or_a_date(at):
    """Regression: a float ``at`` (1.0e9) was read as nanoseconds and sent every row to test."""
    day = 86400
    data = make([0, 0, 1, 1], [0, 1, 0, 1], timestamps=[0, 2 * day, day, day - 1])
    train, test = split.temporal_split(data, at=at)
    assert sorted(test.timestamps.tolist()) == [day, 2 * day]
    assert sorted(train.timestamps.tolist()) == [0, day - 1]


def test_temporal_split_float_seconds_of_movielens_era():
    data = make([0, 0, 1], [0, 1, 0], timestamps=[874_724_710, 1_000_000_001, 999_999_999])
    train, test = split.temporal_split(data, at=1.0e9)
    assert test.timestamps.tolist() == [1_000_000_001] and len(train) == 2


@pytest.mark.parametrize("at", [float("nan"), float("inf"), True, "not a date", [1, 2]])
def test_temporal_split_bad_cut(at):
    data = make([0, 1], [0, 1], timestamps=[0, 1])
    with pytest.raises(DataError, match="at must"):
        split.temporal_split(data, at=at)


def test_temporal_split_at_date():
    day = 86400
    data = make([0, 0, 1], [0, 1, 0], timestamps=[0, 2 * day, day])
    train, test = split.temporal_split(data, at="1970-01-02")
    assert sorted(test.values.tolist()) == [1.0, 2.0] and train.values.tolist() == [0.0]


@SETTINGS
@given(interactions(), st.floats(0.1, 0.9), st.integers(0, 2**31))
def test_strong_generalization(data, test_users, seed):
    s = split.strong_generalization_split(data, test_users, 0.2, min_interactions=2, random_state=seed)
    assert_partition(data, *s)
    heldout = np.union1d(s.fold_in.user_codes, s.test.user_codes)
    assert not np.intersect1d(heldout, s.train.user_codes).size  # held-out users have no train row
    counts = data.user_counts()
    n_eligible = int(np.sum(counts >= 2))
    assert np.unique(s.test.user_codes).size == int(round(test_users * n_eligible))
    assert np.array_equal(np.unique(s.fold_in.user_codes), np.unique(s.test.user_codes))  # both parts non-empty
    rep = s.report()
    assert rep["cold_users"] == rep["heldout_users"] == np.unique(s.test.user_codes).size


def test_strong_generalization_count_and_fraction_of_rows():
    users = np.repeat(np.arange(20), 10)
    data = make(users, np.tile(np.arange(10), 20))
    s = split.strong_generalization_split(data, 4, 0.2, random_state=0)
    assert np.unique(s.test.user_codes).size == 4
    assert len(s.test) == 4 * 2 and len(s.fold_in) == 4 * 8 and len(s.train) == 16 * 10
    with pytest.raises(DataError, match="test_users=30"):
        split.strong_generalization_split(data, 30)


def test_mask_split_and_report_counts_cold_start():
    # rows: (u0,i0) (u0,i1) (u1,i0) (u2,i2) ; mask keeps the first two in train
    data = make([0, 0, 1, 2], [0, 1, 0, 2])
    s = split.mask_split(data, np.array([True, True, False, False]))
    assert s.train.values.tolist() == [0.0, 1.0] and s.test.values.tolist() == [2.0, 3.0]
    rep = s.report()
    # test users 1 and 2 are both absent from train; item 0 is known, item 2 is cold
    assert rep == {"train_rows": 2, "test_rows": 2, "test_users": 2, "test_items": 2, "cold_users": 2,
                   "cold_items": 1, "cold_user_rows": 2, "cold_item_rows": 1}
    assert len(s.test) == 2  # cold rows are kept, not removed
    # the same report when test was rebuilt in other vocabularies (compared by id)
    other = Interactions.from_arrays([1, 2], [0, 2], [3.0, 4.0])
    assert split.split_report(s.train, other) == rep


def test_train_val_test_report():
    data = make(np.arange(30) % 6, np.arange(30) % 7)
    rep = split.train_val_test_split(data, random_state=0).report()
    assert rep["val"]["test_rows"] == 3 and rep["test"]["test_rows"] == 6


@pytest.mark.parametrize("call, match", [
    (lambda d: split.random_split(d, 1.0), "test_size"),
    (lambda d: split.random_split(d, 0), "test_size"),
    (lambda d: split.kfold(d, 1), "n_splits"),
    (lambda d: split.kfold(d, 99), "n_splits=99"),
    (lambda d: split.train_val_test_split(d, 0.5, 0.5), "val_size \\+ test_size"),
    (lambda d: split.leave_k_out(d, 0), "k must"),
    (lambda d: split.user_holdout(d, 0.2, 1), "min_interactions"),
    (lambda d: split.leave_last_out(Interactions(d.users, d.items, d.user_codes, d.item_codes, d.values)),
     "timestamps"),
    (lambda d: split.temporal_split(d, at="not a date"), "at must"),
    (lambda d: split.mask_split(d, np.ones(3, dtype=bool)), "mask must"),
    (lambda d: split.random_split(d.to_frame(), 0.2), "Interactions"),
])
def test_bad_arguments_name_the_parameter(call, match):
    data = make(np.arange(10) % 3, np.arange(10), timestamps=np.arange(10))
    with pytest.raises(DataError, match=match):
        call(data)


def test_cold_start_rows_are_kept_on_real_shapes(ratings):
    s = split.random_split(ratings, 0.5, random_state=0)
    rep = s.report()
    assert rep["train_rows"] + rep["test_rows"] == len(ratings)
    assert rep["cold_user_rows"] == int(np.sum(np.bincount(s.train.user_codes, minlength=ratings.n_users)[
        s.test.user_codes] == 0))
