"""Implicit models on real MovieLens: the per-user 20 % holdout of ml-100k (seed 0).

EASE, ImplicitALS and Popularity are pinned to the README's ranking table in
test_compare_real.py (±0.005 on every metric); here the Cholesky solver of ImplicitALS
must land on the same figure as its default conjugate-gradient solver, and users
held out of training entirely are folded in from their history.
"""

import numpy as np
import pytest

from conftest import readme_figure, require_dataset
from latentrec.data.movielens import load_movielens
from latentrec.metrics import measure_topn
from latentrec.models import ImplicitALS
from latentrec.split import user_holdout

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def split():
    data = load_movielens(path=require_dataset("ml-100k")).to_implicit()
    return user_holdout(data, test_size=0.2, min_interactions=10, random_state=0)


def test_cholesky_solver_reaches_the_readme_figure_of_the_cg_solver(split):
    train, test = split
    model = ImplicitALS(n_factors=64, regularization=50.0, alpha=5.0, solver="cholesky", n_epochs=8,
                        random_state=0).fit(train)
    value, tol = readme_figure("ranking", "ml-100k", "ImplicitALS", "holdout", "ndcg@10")
    m = measure_topn(model, test, 10, metrics=["ndcg"])
    assert m["ndcg@10"] == pytest.approx(value, abs=tol)
    assert m.cold_items > 0 and m.n_rows == len(test)


def test_strong_generalization_fold_in(split):
    """Users unseen in training, folded in from their history, rank nearly as well as fitted ones."""
    train, _ = split
    rng = np.random.default_rng(0)
    users = rng.choice(train.n_users, 100, replace=False)
    held = np.isin(train.user_codes, users)
    model = ImplicitALS(n_factors=64, regularization=50.0, alpha=5.0, solver="cholesky", n_epochs=8,
                        random_state=0).fit(train.subset(~held))
    hits = 0
    total = 0
    for u in users:
        rows = np.flatnonzero(train.user_codes == u)
        rng.shuffle(rows)
        given, hidden = rows[: int(0.8 * len(rows))], rows[int(0.8 * len(rows)):]
        ids, _ = model.recommend_for_interactions(train.items.take(train.item_codes[given]), n=10,
                                                  unknown="ignore")  # items only the held-out users had
        hits += len(set(ids) & set(train.items.take(train.item_codes[hidden])))
        total += min(10, len(hidden))
    assert hits / total > 0.2
