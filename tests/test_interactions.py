"""Interactions and Vocabulary: building, validation, derived sets, memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.data.interactions import Interactions, as_interactions
from latentrec.data.vocab import Vocabulary
from latentrec.errors import DataError, UnknownIdError
from latentrec.models import BiasedMF, Biases, ImplicitALS


def frame(**cols):
    base = {"user": [1, 1, 2, 3], "item": ["a", "b", "a", "c"], "rating": [4.0, 3.0, 5.0, 1.0]}
    base.update(cols)
    return pd.DataFrame(base)


def test_from_frame_codes_vocab_and_csr():
    data = lr.Interactions.from_frame(frame())
    assert (data.n_users, data.n_items, len(data)) == (3, 3, 4)
    assert data.user_codes.dtype == np.int32 and data.values.dtype == np.float32
    assert list(data.items.ids) == ["a", "b", "c"]
    csr = data.to_csr()
    assert csr[data.users.code(2), data.items.code("a")] == 5.0
    assert data.rating_scale == (1.0, 5.0)
    assert data.density == pytest.approx(4 / 9)
    assert data.describe()["histogram"] == {1.0: 1, 3.0: 1, 4.0: 1, 5.0: 1}


@pytest.mark.parametrize("bad, message", [
    ("x", "column 'rating' at row 1 is 'x'; expected a number"),
    (np.nan, "is nan; expected a finite number"),
    (np.inf, "is inf; expected a finite number"),
])
def test_bad_rating_values_name_the_row(bad, message):
    df = frame(rating=[4.0, bad, 5.0, 1.0])
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lr.Interactions.from_frame(df)


def test_rating_outside_declared_scale():
    with pytest.raises(DataError, match=r"row 0 is 4, outside the declared rating scale \[1, 3\]"):
        lr.Interactions.from_frame(frame(), rating_scale=(1, 3))


def test_missing_column_lists_the_columns():
    with pytest.raises(DataError, match=r"item column 'item' not found.*\['user', 'movie', 'rating'\]"):
        lr.Interactions.from_frame(frame().rename(columns={"item": "movie"}))


def test_empty_frame():
    with pytest.raises(DataError, match="has no rows"):
        lr.Interactions.from_frame(frame().iloc[:0], name="empty.csv")


def test_mixed_id_types_name_rows():
    df = frame(user=np.array([1, "x", 2, 3], dtype=object))
    with pytest.raises(DataError, match=r"user ids are of mixed types \(int at row 0, str at row 1\)"):
        lr.Interactions.from_frame(df)


@pytest.mark.parametrize("policy, expected", [("first", 4.0), ("last", 2.0), ("mean", 3.0), ("sum", 6.0)])
def test_duplicate_policies(policy, expected):
    df = pd.DataFrame({"user": [1, 1, 2], "item": [7, 7, 7], "rating": [4.0, 2.0, 5.0]})
    data = lr.Interactions.from_frame(df, duplicates=policy, rating_scale=None if policy != "sum" else (0, 10))
    assert len(data) == 2
    assert data.to_csr()[data.users.code(1), data.items.code(7)] == expected


def test_duplicates_error_names_the_pair():
    df = pd.DataFrame({"user": [1, 1], "item": [7, 7], "rating": [4.0, 2.0]})
    with pytest.raises(DataError, match=r"\(user 1, item 7\) appears more than once"):
        lr.Interactions.from_frame(df)


def test_implicit_without_rating_counts_repeats():
    df = pd.DataFrame({"user": [1, 1, 1, 2], "item": [5, 5, 6, 5]})
    data = lr.Interactions.from_frame(df, rating=None)
    assert data.is_implicit and len(data) == 3
    assert data.to_csr()[data.users.code(1), data.items.code(5)] == 2.0


def test_negative_implicit_weight_is_refused():
    with pytest.raises(DataError, match="weights must be >= 0"):
        lr.Interactions.from_frame(frame(rating=[1.0, -2.0, 1.0, 1.0]), implicit=True)


def test_subset_compact_recode_keep_every_row_accounted_for():
    data = lr.synthetic_ratings(n_users=50, n_items=40, n_ratings=600, random_state=1)
    mask = data.user_codes < 10
    part = data.subset(mask)
    assert part.users is data.users and len(part) == mask.sum()
    small = part.compact()
    assert small.n_users == len(np.unique(part.user_codes))
    pd.testing.assert_frame_equal(small.to_frame(), part.to_frame())
    back, known = data.recode(small.users, small.items)
    assert known.sum() == len(back)
    assert np.all(np.isin(data.users.take(data.user_codes[known]), small.users.ids))


def test_to_implicit_threshold():
    data = lr.Interactions.from_frame(frame())
    likes = data.to_implicit(threshold=4)
    assert likes.is_implicit and len(likes) == 2 and np.all(likes.values == 1)


def test_checksum_changes_with_values():
    data = lr.Interactions.from_frame(frame())
    other = lr.Interactions.from_frame(frame(rating=[4.0, 3.0, 5.0, 2.0]))
    assert data.checksum() != other.checksum()
    assert data.checksum() == lr.Interactions.from_frame(frame()).checksum()


def test_memory_is_20_bytes_a_row():
    n = 1_000_000
    rng = np.random.default_rng(0)
    data = lr.Interactions(Vocabulary(np.arange(1000)), Vocabulary(np.arange(500)),
                           rng.integers(0, 1000, n), rng.integers(0, 500, n),
                           rng.random(n), np.arange(n), rating_scale=(0, 1))
    # int32 + int32 + float32 + int64 per row: 25M rows stay under 1 GB (~0.5 GB)
    assert data.nbytes - data.users.ids.nbytes - data.items.ids.nbytes == 20 * n


def test_memory_counts_string_ids():
    ints = lr.Interactions(Vocabulary(np.arange(3)), Vocabulary(np.arange(2)), [0, 1, 2], [0, 1, 1], [1.0, 2.0, 3.0])
    names = np.array(["a-rather-long-user-name-%d" % i for i in range(3)], dtype=object)
    strs = lr.Interactions(Vocabulary(names), Vocabulary(np.arange(2)), [0, 1, 2], [0, 1, 1], [1.0, 2.0, 3.0])
    assert strs.users.nbytes >= names.nbytes + 3 * len(names[0])  # the characters, not only the pointers
    assert strs.nbytes - ints.nbytes == strs.users.nbytes - ints.users.nbytes


def test_as_interactions_names_columns_and_takes_y():
    X = pd.DataFrame({"user": [1, 2], "item": [3, 4]})
    data = as_interactions(X, [5.0, 4.0])
    assert list(data.users.ids) == [1, 2] and data.values.tolist() == [5.0, 4.0]
    with pytest.raises(DataError, match="y has 1 values for 2 rows"):
        as_interactions(X, [5.0])


def test_as_interactions_never_guesses_a_column_by_position():
    """Regression: unnamed columns were read by position, so (user, item, timestamp) trained Biases on
    timestamps (a mean of 874724736)."""
    with pytest.raises(DataError, match="columns named 'user' and 'item'.*\\['u', 'i'\\]"):
        as_interactions(pd.DataFrame({"u": [1, 2], "i": [3, 4]}), [5.0, 4.0])
    frame = pd.DataFrame({"user": [1, 2], "item": [3, 4], "stamp": [874724736, 874724737]})
    with pytest.raises(DataError, match="\\['stamp'\\] that are not read"):
        as_interactions(frame)
    with pytest.raises(DataError, match="predicts ratings.*no ratings"):
        Biases().fit(pd.DataFrame({"user": [1, 2], "item": [3, 4], "timestamp": [874724736, 874724737]}))


@pytest.mark.parametrize("X", [
    pd.DataFrame({"user": [1, 2, 2], "item": [3, 4, 3]}),
    np.array([[1, 3], [2, 4], [2, 3]]),
    "interactions",
])
def test_rating_model_refuses_unrated_data_and_names_implicit_models(X):
    """Regression: a frame without a rating column trained an explicit model on all 1s."""
    if isinstance(X, str):
        X = Interactions.from_arrays([1, 2, 2], [3, 4, 3])  # implicit feedback
    with pytest.raises(DataError, match="BiasedMF predicts ratings.*implicit-als, bpr, ease"):
        BiasedMF(n_epochs=1).fit(X)
    model = ImplicitALS(n_factors=2, n_epochs=1).fit(X)  # the implicit model takes the same data
    assert len(model.items_) == 2


def test_array_columns_follow_the_documented_order():
    arr = np.array([[1, 3, 4.0, 874724736], [2, 4, 2.0, 874724737]])
    data = as_interactions(arr)
    assert data.values.tolist() == [4.0, 2.0] and data.timestamps.tolist() == [874724736, 874724737]
    with pytest.raises(DataError, match="2 to 4 columns"):
        as_interactions(np.ones((2, 5)))


def test_vocabulary_lookup_both_ways():
    vocab, codes = Vocabulary.factorize(np.array(["b", "a", "b"], dtype=object))
    assert list(vocab.ids) == ["a", "b"] and codes.tolist() == [1, 0, 1]
    assert vocab.codes(["b", "zz"], missing="ignore").tolist() == [1, -1]
    with pytest.raises(UnknownIdError, match="'zz' is not known"):
        vocab.codes(["zz"])
    with pytest.raises(DataError, match="unique"):
        Vocabulary(["a", "a"])
    # float ids that are whole numbers look up integer vocabularies
    ints, _ = Vocabulary.factorize(np.array([10, 20]))
    assert ints.codes(np.array([20.0, 10.5]), missing="ignore").tolist() == [1, -1]


def test_scikit_learn_splits_interactions_by_rows():
    # issue 17: GridSearchCV / cross_val_score on an Interactions failed with a scalar-array TypeError
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

    data = lr.synthetic_ratings(80, 40, 2000, random_state=1)
    assert data.shape == (len(data),) and data.matrix_shape == (80, 40)
    cv = KFold(3, shuffle=True, random_state=0)
    model = lr.models.BiasedMF(n_factors=4, n_epochs=5, n_threads=1, random_state=0)
    scores = cross_val_score(model, data, cv=cv)
    by_hand = []
    for train, test in cv.split(np.zeros(len(data))):
        fitted = lr.models.BiasedMF(n_factors=4, n_epochs=5, n_threads=1, random_state=0).fit(data[train])
        by_hand.append(-lr.metrics.rmse(data[test].values, fitted.predict(data[test])))
    np.testing.assert_allclose(scores, by_hand, rtol=1e-6)
    search = GridSearchCV(model, {"n_factors": [2, 4]}, cv=cv).fit(data)
    assert search.best_params_["n_factors"] in (2, 4) and np.isfinite(search.best_score_)
    implicit = cross_val_score(lr.models.EASE(), data.to_implicit(), cv=cv)
    assert np.all((implicit > 0) & (implicit <= 1))  # NDCG@10


def test_indexing_an_interactions():
    data = lr.synthetic_ratings(30, 20, 300, random_state=1)
    assert len(data[:10]) == 10 and len(data[np.arange(len(data)) % 2 == 0]) == 150
    np.testing.assert_array_equal(data[[3, 1]].values, data.values[[3, 1]])
    with pytest.raises(lr.DataError, match="single number 3"):
        data[3]


def test_sparse_matrix_input():
    import scipy.sparse as sp

    m = sp.csr_matrix(np.array([[0, 4.0, 0], [5.0, 0, 1.0]]))
    data = as_interactions(m)
    assert sorted(zip(data.users.ids[data.user_codes], data.items.ids[data.item_codes], data.values)) == [
        (0, 1, 4.0), (1, 0, 5.0), (1, 2, 1.0)]
    with pytest.raises(lr.DataError, match="give no y"):
        as_interactions(m, y=[1, 2, 3])
    with pytest.raises(lr.DataError, match="scipy.sparse user-item matrix .* got a value of type object"):
        as_interactions(object())
