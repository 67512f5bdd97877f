"""Grid/random search: validation carved from training only, one run per setting, curves, refit."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import uniform
from sklearn.model_selection import GridSearchCV, KFold

import latentrec as lr
from latentrec.models.baselines import Biases
from latentrec.models import BiasedMF
from latentrec.tuning import grid_search, nested_cv, parse_grid, random_search
from test_evaluate import FitRecorder, _pairs


@pytest.fixture
def small():
    return lr.synthetic_ratings(200, 120, 4000, random_state=1)


def test_parse_grid():
    grid = parse_grid("n_factors=20,50 regularization=0.01,0.5 method=cg  verbose=false seed=none")
    assert grid == {"n_factors": [20, 50], "regularization": [0.01, 0.5], "method": ["cg"], "verbose": [False],
                    "seed": [None]}
    assert isinstance(grid["n_factors"][0], int)
    with pytest.raises(lr.DataError, match="name=v1,v2"):
        parse_grid("n_factors")


def test_grid_results_curves_and_refit(small):
    res = grid_search(Biases(n_epochs=5), small, {"user_damping": [0.0, 5.0, 50.0], "item_damping": [1.0, 20.0]},
                      cv=2)
    table = res.results
    assert len(table) == 6 and {"user_damping", "item_damping", "mean_score", "std_score", "rank"} <= set(table)
    assert table["rank"].min() == 1 and res.metric == "rmse" and not res.greater_is_better
    best = table.loc[table["rank"] == 1].iloc[0]
    assert best["mean_score"] == table["mean_score"].min() == pytest.approx(res.best_score)
    assert res.best_params == {"user_damping": best["user_damping"], "item_damping": best["item_damping"]}
    # one learning curve per (setting, fold): 5 epochs of validation RMSE each
    val = res.curves[res.curves["metric"] == "val_rmse"]
    assert len(val) == 6 * 2 * 5
    assert val.groupby(["setting", "fold"])["epoch"].apply(list).map(lambda e: e == [1, 2, 3, 4, 5]).all()
    # the best setting refitted on all the data given
    est = res.best_estimator
    assert est.get_params()["user_damping"] == res.best_params["user_damping"]
    assert est.train_checksum_ == small.checksum()


def test_final_curve_point_is_the_score(small):
    res = grid_search(Biases(n_epochs=3), small, {"user_damping": [1.0, 9.0]}, cv=1)
    last = res.curves[(res.curves["metric"] == "val_rmse") & (res.curves["epoch"] == 3)]
    np.testing.assert_allclose(last.sort_values("setting")["value"], res.results["mean_score"], rtol=1e-5)


def test_validation_comes_from_the_training_data_only(small):
    train, test = lr.split.random_split(small, 0.2, random_state=0)
    FitRecorder.fits = []
    grid_search(FitRecorder(), train, {"random_state": [1, 2]}, cv=3)
    assert len(FitRecorder.fits) == 2 * 3 + 1  # one run per (setting, fold), then the refit
    test_pairs, train_pairs = _pairs(test), _pairs(train)
    for fit in FitRecorder.fits[:-1]:
        assert fit["pairs"] <= train_pairs and not fit["pairs"] & test_pairs
        assert fit["eval"] <= train_pairs and not fit["eval"] & fit["pairs"]
    assert FitRecorder.fits[-1]["pairs"] == train_pairs


def test_parallel_equals_serial(small):
    grid = {"user_damping": [0.0, 10.0], "item_damping": [5.0, 25.0]}
    a = grid_search(Biases(), small, grid, n_jobs=1, refit=False)
    b = grid_search(Biases(), small, grid, n_jobs=2, refit=False)
    pd.testing.assert_frame_equal(a.results.drop(columns="fit_s"), b.results.drop(columns="fit_s"))
    assert a.best_estimator is None


def test_random_search_is_seeded(small):
    dist = {"user_damping": uniform(0, 30), "item_damping": [1.0, 10.0]}
    a = random_search(Biases(), small, dist, n_iter=4, random_state=5, refit=False)
    b = random_search(Biases(), small, dist, n_iter=4, random_state=5, refit=False)
    assert len(a.results) == 4
    pd.testing.assert_frame_equal(a.results.drop(columns="fit_s"), b.results.drop(columns="fit_s"))


def test_ranking_model_scored_by_ndcg(small):
    res = grid_search("ease", small, {"regularization": [10.0, 500.0]}, cv=1, k=5)
    assert res.metric == "ndcg@5" and res.greater_is_better
    assert res.results["mean_score"].between(0, 1).all()
    assert res.best_estimator.task == "implicit"


def test_bad_parameter_name(small):
    with pytest.raises(lr.ModelError, match="has no parameter"):
        grid_search(Biases(), small, {"n_factors": [10]})
    with pytest.raises(lr.ModelError, match="does not apply"):
        grid_search("popularity", small, {}, metric="rmse")


def test_works_with_sklearn_grid_search(small):
    df = small.to_frame()
    search = GridSearchCV(Biases(), {"user_damping": [0.0, 25.0]}, cv=KFold(3, shuffle=True, random_state=0))
    search.fit(df[["user", "item"]], df["rating"])
    assert search.best_score_ < 0  # -RMSE
    assert set(search.best_params_) == {"user_damping"}
    ours = grid_search(Biases(), small, {"user_damping": [0.0, 25.0]}, cv=3)
    assert search.best_params_ == ours.best_params


def test_early_stopping_does_not_depend_on_the_curves_flag(small):
    """Regression: eval_set (which drives early stopping) was passed only with curves=True, so the same
    grid scored differently with curves on and off; the refit ran every epoch, not the scored model."""
    model = BiasedMF(n_factors=8, n_epochs=40, learning_rate=0.05, early_stopping_rounds=2, n_threads=1,
                     random_state=0)
    grid = {"regularization": [0.0, 0.05]}
    on = grid_search(model, small, grid, cv=2, curves=True)
    off = grid_search(model, small, grid, cv=2, curves=False)
    pd.testing.assert_series_equal(on.results["mean_score"], off.results["mean_score"])
    assert off.curves.empty and not on.curves.empty
    assert off.refit_params["early_stopping_rounds"] is None
    assert 1 <= off.refit_params["n_epochs"] < 40 and "early stopping" in off.refit_rule
    assert len(off.best_estimator.history_) == off.refit_params["n_epochs"]


def test_edge_of_grid_winner_is_warned(small):
    res = grid_search(Biases(), small, {"user_damping": [1000.0, 2000.0]}, cv=2)
    assert any("user_damping=1000.0 is the smallest" in w for w in res.edge)


def test_nested_cv_scores_each_outer_fold_on_data_it_never_tuned_on(small):
    table = nested_cv(Biases(), small, {"user_damping": [1.0, 25.0]}, outer=3, cv=2)
    assert len(table) == 3 and set(table["metric"]) == {"rmse"}
    assert table["test_score"].between(0.3, 2.0).all() and "user_damping" in table.columns
