"""EDLAE and RP3beta on real MovieLens: NDCG@10 on the per-user 20 % holdout of ml-100k (seed 0).

The expected figures are what benchmarks/implicit_feedback.py measured with the
hyper-parameters it chose on the validation split of the training part
(EDLAE dropout 0.67, regularization 300: 0.4497; RP3beta alpha 0.8, beta 0.5,
50 neighbours: 0.3983; EASE 500: 0.4477). Closed forms are deterministic, so
the tolerance only covers BLAS rounding.
"""

import numpy as np
import pytest

from conftest import require_dataset
from latentrec import metrics
from latentrec.data.movielens import load_movielens
from latentrec.models import RP3beta
from latentrec.models.linear import EDLAE
from latentrec.split import user_holdout

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def split():
    data = load_movielens(path=require_dataset("ml-100k")).to_implicit()
    return user_holdout(data, test_size=0.2, min_interactions=10, random_state=0)


def _ndcg(model, train, test):
    truth = test.to_csr()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    ids, _ = model.recommend(test.users.take(users), n=10)
    codes = train.items.codes(np.asarray(ids).ravel(), missing="ignore").reshape(ids.shape)
    return metrics.ranking_metrics(codes, truth[users], k=10, metrics=("ndcg",))["ndcg"]


def test_edlae_ml100k(split):
    train, test = split
    assert _ndcg(EDLAE(dropout=0.67, regularization=300.0).fit(train), train, test) == pytest.approx(0.4497, abs=5e-4)


def test_rp3beta_ml100k(split):
    train, test = split
    model = RP3beta(alpha=0.8, beta=0.5, n_neighbors=50).fit(train)
    assert _ndcg(model, train, test) == pytest.approx(0.3983, abs=5e-4)
