"""Neighbourhood models and truncated SVD on the canonical ml-100k u1 split: quality ceilings.

Measured here (u1.base -> u1.test, 20,000 ratings): ItemKNN defaults 0.926 RMSE,
UserKNN defaults 0.929, TruncatedSVD(20) 1.017; Surprise's KNNBaseline
(pearson_baseline, item-based) gives 0.936 on the same split. ImplicitItemKNN on
ml-100k as implicit feedback (per-user 20 % holdout, users >= 10 interactions,
seed 0): NDCG@10 0.364 (cosine), 0.386 (tf-idf); Popularity 0.216.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import require_dataset

import latentrec as lr
from latentrec.metrics import rmse
from latentrec.models.baselines import Biases, Popularity
from latentrec.models import ImplicitItemKNN, ItemKNN, UserKNN
from latentrec.models import TruncatedSVD
from latentrec.split import user_holdout

pytestmark = pytest.mark.realdata

COLUMNS = ["user", "item", "rating", "timestamp"]


@pytest.fixture(scope="module")
def u1():
    folder = require_dataset("ml-100k")
    train = pd.read_csv(folder / "u1.base", sep="\t", names=COLUMNS)
    test = pd.read_csv(folder / "u1.test", sep="\t", names=COLUMNS)
    return train[["user", "item", "rating"]], test


def test_item_knn_baseline_corrected_ceiling(u1):
    train, test = u1
    model = ItemKNN().fit(train)
    score = rmse(test["rating"], model.predict(test[["user", "item"]]))
    biases = rmse(test["rating"], Biases().fit(train).predict(test[["user", "item"]]))
    assert score <= 0.93, score
    assert score <= biases - 0.01, (score, biases)


@pytest.mark.parametrize("similarity", ["pearson", "adjusted_cosine"])
def test_item_knn_other_similarities_ceiling(u1, similarity):
    train, test = u1
    score = rmse(test["rating"], ItemKNN(similarity=similarity).fit(train).predict(test[["user", "item"]]))
    assert score <= 0.935, score


def test_user_knn_ceiling(u1):
    train, test = u1
    assert rmse(test["rating"], UserKNN().fit(train).predict(test[["user", "item"]])) <= 0.935
    means = UserKNN(baseline=False, similarity="pearson").fit(train)
    assert rmse(test["rating"], means.predict(test[["user", "item"]])) <= 0.96


def test_truncated_svd_ceiling(u1):
    train, test = u1
    assert rmse(test["rating"], TruncatedSVD(n_factors=20, random_state=0).fit(train)
                .predict(test[["user", "item"]])) <= 1.03


def test_implicit_item_knn_beats_popularity():
    folder = require_dataset("ml-100k")
    data = lr.load_movielens(path=folder).to_implicit()
    train, test = user_holdout(data, 0.2, 10, random_state=0)
    pop = Popularity().fit(train).score(test)
    knn = ImplicitItemKNN().fit(train).score(test)
    tfidf = ImplicitItemKNN(weighting="tfidf").fit(train).score(test)
    assert knn >= 0.34 and tfidf >= 0.36, (knn, tfidf)
    assert knn >= pop + 0.1, (knn, pop)
