"""Filters: k-core against a plain-Python reference, its invariants (hypothesis), rating scale, dedupe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latentrec.data import Interactions
from latentrec.data.filters import FilterReport, deduplicate, filter_rating_scale, kcore
from latentrec.errors import DataError


def reference_kcore(pairs, ku, ki):
    """Remove one offending user or item at a time until none is left (plain Python)."""
    rows = set(pairs)
    while True:
        ucount, icount = {}, {}
        for u, i in rows:
            ucount[u] = ucount.get(u, 0) + 1
            icount[i] = icount.get(i, 0) + 1
        bad_u = next((u for u, c in ucount.items() if c < ku), None)
        if bad_u is not None:
            rows = {(u, i) for u, i in rows if u != bad_u}
            continue
        bad_i = next((i for i, c in icount.items() if c < ki), None)
        if bad_i is None:
            return rows
        rows = {(u, i) for u, i in rows if i != bad_i}


def make(pairs):
    u, i = zip(*pairs)
    return Interactions.from_arrays(np.array(u), np.array(i), np.arange(len(pairs), dtype=np.float32) % 5 + 1)


_pairs = st.lists(st.tuples(st.integers(0, 25), st.integers(0, 25)), min_size=1, max_size=200, unique=True)


@settings(derandomize=True, max_examples=80, deadline=None)
@given(pairs=_pairs, ku=st.integers(1, 6), ki=st.integers(1, 6))
def test_kcore_matches_reference_and_invariants(pairs, ku, ki):
    data = make(pairs)
    out, rep = kcore(data, user_k=ku, item_k=ki, return_report=True)
    got = set(zip(out.users.take(out.user_codes).tolist(), out.items.take(out.item_codes).tolist()))
    assert got == reference_kcore(pairs, ku, ki)  # the k-core is unique: same as one-at-a-time removal
    if len(out):
        assert out.user_counts().min() >= ku and out.item_counts().min() >= ki
    assert out.n_users == len(set(u for u, _ in got)) and out.n_items == len(set(i for _, i in got))  # compacted
    again = kcore(out, user_k=ku, item_k=ki)
    assert len(again) == len(out)  # stable: applying it again removes nothing
    assert rep.rows_before == len(pairs) and rep.removed_rows == len(pairs) - len(out)
    assert len(rep.removed_users) == data.n_users - out.n_users
    assert not set(rep.removed_users.tolist()) & set(out.users.ids.tolist())


def test_kcore_cascades_over_rounds():
    # round 1 drops items 2 and 9 (2 ratings < 3); that leaves users 2 and 3 with one rating each,
    # so round 2 drops them; items 0 and 1 keep 3 ratings each and the rest is stable.
    pairs = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 1), (2, 9), (3, 9), (3, 0), (0, 2), (1, 2), (4, 0), (4, 1)]
    out, rep = kcore(make(pairs), user_k=2, item_k=3, return_report=True)
    got = set(zip(out.users.take(out.user_codes).tolist(), out.items.take(out.item_codes).tolist()))
    assert got == {(0, 0), (0, 1), (1, 0), (1, 1), (4, 0), (4, 1)}
    assert rep.rounds == 3 and sorted(rep.removed_users.tolist()) == [2, 3]
    assert sorted(rep.removed_items.tolist()) == [2, 9]
    assert "kcore(user_k=2, item_k=3): removed 6 of 12 rows" in str(rep)


def test_kcore_keeps_values_timestamps_and_metadata(ratings):
    out = kcore(ratings, 15)
    frame_in = ratings.to_frame().set_index(["user", "item"])
    frame_out = out.to_frame().set_index(["user", "item"])
    np.testing.assert_array_equal(frame_in.loc[frame_out.index, "rating"].to_numpy(), frame_out["rating"].to_numpy())
    assert out.timestamps is not None and out.rating_scale == ratings.rating_scale


def test_kcore_does_not_modify_input(ratings):
    before = (len(ratings), ratings.n_users, ratings.user_codes.copy())
    kcore(ratings, 40)
    assert (len(ratings), ratings.n_users) == before[:2]
    np.testing.assert_array_equal(ratings.user_codes, before[2])


def test_kcore_can_be_empty():
    out = kcore(make([(0, 0), (1, 1)]), 2)
    assert len(out) == 0 and out.n_users == 0 and out.n_items == 0


@pytest.mark.parametrize("kwargs", [{}, {"k": 0}, {"k": 2.5}, {"user_k": -1}, {"k": True}])
def test_kcore_rejects_bad_thresholds(kwargs):
    with pytest.raises(DataError, match="k"):
        kcore(make([(0, 0)]), **kwargs)


def test_filter_rating_scale_reports_and_declares():
    data = Interactions.from_arrays([1, 1, 2, 3], [1, 2, 1, 3], [0.0, 3.0, 6.0, 5.0])
    out, rep = filter_rating_scale(data, (1, 5), return_report=True)
    assert out.values.tolist() == [3.0, 5.0] and out.rating_scale == (1.0, 5.0)
    assert isinstance(rep, FilterReport) and rep.removed_rows == 2 and rep.users_after == 2
    assert data.rating_scale == (0.0, 6.0)  # the input keeps its own scale
    with pytest.raises(DataError, match="low <= high"):
        filter_rating_scale(data, (5, 1))


def test_deduplicate_report():
    data = Interactions.from_arrays([1, 1, 2], [1, 1, 1], [1.0, 3.0, 2.0], duplicates="sum")
    assert len(data) == 2
    raw = Interactions(data.users, data.items, np.array([0, 0, 1]), np.array([0, 0, 0]), np.array([1.0, 3.0, 2.0]),
                       rating_scale=(1, 5))
    out, rep = deduplicate(raw, "mean", return_report=True)
    assert sorted(out.values.tolist()) == [2.0, 2.0] and rep.removed_rows == 1
