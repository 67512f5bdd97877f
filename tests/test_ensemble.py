"""Ensemble: weights fitted on a validation slice of the training rows, blend, persistence, the contract."""

import numpy as np
import pytest

import latentrec as lr
from latentrec.models.ensemble import Ensemble, simplex_grid
from latentrec.models import EASE
from latentrec.split import user_holdout
from model_suite import ModelSuite

MEMBERS = ("ease", "rp3beta")
PARAMS = {"ease": {"regularization": 500.0}, "rp3beta": {"beta": 0.6, "n_neighbors": 100}}


class TestEnsemble(ModelSuite):
    model_factory = staticmethod(lambda: Ensemble(models=MEMBERS, model_params=PARAMS, step=0.25))
    task = "implicit"
    quality = 0.2  # EASE 0.2075, RP3beta 0.203 alone on this split
    varied_params = {"weights": (0.0, 1.0), "model_params": {"ease": {"regularization": 5.0}}}


def test_simplex_grid():
    g = simplex_grid(3, 0.5)
    np.testing.assert_allclose(g.sum(1), 1.0)
    assert len(g) == 6 and np.all(g >= 0)
    assert len(simplex_grid(3, 0.1)) == 66


def test_fixed_corner_weights_rank_like_the_member(implicit_data):
    ens = Ensemble(models=MEMBERS, model_params=PARAMS, weights=(1.0, 0.0)).fit(implicit_data)
    ease = EASE(regularization=500.0).fit(implicit_data)
    users = ease.users_.ids[:20]
    np.testing.assert_array_equal(ens.recommend(users, n=10)[0], ease.recommend(users, n=10)[0])
    assert np.isnan(ens.validation_ndcg_)


def test_fitted_weights_beat_every_single_member_on_the_validation_slice(implicit_data):
    ens = Ensemble(models=("popularity", "ease"), model_params={"ease": {"regularization": 500.0}}, step=0.1,
                   random_state=4).fit(implicit_data)
    assert ens.weights_[1] > 0.5  # the planted structure is EASE's, not popularity's
    # the grid holds both corners, so the chosen blend scores at least as well as each member there;
    # recompute the corners on the same slice the ensemble carved (same seed chain)
    rest, val = user_holdout(implicit_data.compact(), test_size=0.2, min_interactions=5,
                             random_state=lr._util.seed_from(lr._util.check_random_state(4)))
    corners = [Ensemble(models=("popularity", "ease"), model_params={"ease": {"regularization": 500.0}},
                        weights=w).fit(rest).score(val) for w in [(1.0, 0.0), (0.0, 1.0)]]
    assert ens.validation_ndcg_ >= max(corners) - 1e-9, (ens.validation_ndcg_, corners)


def test_bad_params(implicit_data):
    with pytest.raises(lr.ModelError, match="unknown model"):
        Ensemble(models=("ease", "nope")).fit(implicit_data)
    with pytest.raises(lr.ModelError, match="not an implicit"):
        Ensemble(models=("ease", "biased-mf")).fit(implicit_data)
    with pytest.raises(lr.ModelError, match="weights must be 2"):
        Ensemble(models=MEMBERS, weights=(1.0,)).fit(implicit_data)
    with pytest.raises(lr.ModelError, match="model_params names"):
        Ensemble(models=MEMBERS, model_params={"bpr": {}}).fit(implicit_data)


def test_registered_and_fold_in(implicit_data):
    model = lr.registry.create("ensemble", models=MEMBERS, model_params=PARAMS, step=0.5).fit(implicit_data)
    row = model.seen_[3]
    ids, _ = model.recommend_for_interactions(model.items_.take(row.indices), row.data, n=10)
    np.testing.assert_array_equal(ids, model.recommend(model.users_.ids[3], n=10)[0])
