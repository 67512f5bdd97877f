"""evaluate / summarize: tidy results, no leakage into fit, reproducibility, run records."""

import json

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.evaluate import evaluate, format_summary, make_folds, summarize
from latentrec.models.base import Recommender
from latentrec.models.baselines import Biases, ItemMean, Popularity


def _pairs(data):
    return set(zip(data.users.take(data.user_codes).tolist(), data.items.take(data.item_codes).tolist()))


class FitRecorder(Recommender):
    """Predicts μ, and records exactly which (user, item) pairs each fit received."""

    fits: list = []

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def _fit(self, data, eval_data):
        FitRecorder.fits.append({"pairs": _pairs(data), "rows": len(data), "checksum": data.checksum(),
                                 "eval": None if eval_data is None else _pairs(eval_data),
                                 "random_state": self.random_state})

    def _predict_codes(self, u, i):
        return np.full(len(u), self.global_mean_, dtype=np.float32)


@pytest.fixture
def small():
    return lr.synthetic_ratings(200, 120, 4000, random_state=1)


def test_tidy_frame(small):
    res = evaluate({"biases": Biases(), "item-mean": ItemMean()}, small, "3fold")
    assert list(res.columns[:6]) == ["model", "fold", "metric", "value", "fit_s", "predict_s"]
    assert set(res["model"]) == {"biases", "item-mean"}
    assert sorted(res["fold"].unique()) == [0, 1, 2]
    assert set(res["metric"]) == {"rmse", "mae"}
    assert len(res) == 2 * 3 * 2
    assert (res["fit_s"] >= 0).all() and res["value"].between(0, 4).all()
    assert res["n_train"].iloc[0] + res["n_test"].iloc[0] == len(small)


@pytest.mark.parametrize("protocol", ["5fold", "holdout", "user-holdout"])
def test_models_only_see_the_training_part(small, protocol):
    FitRecorder.fits = []
    evaluate({"rec": FitRecorder()}, small, protocol, random_state=3)
    folds = make_folds(small, protocol, random_state=3)
    assert len(FitRecorder.fits) == len(folds)
    for fit, (train, test) in zip(FitRecorder.fits, folds):
        assert fit["pairs"] == _pairs(train)
        assert not fit["pairs"] & _pairs(test)
        assert fit["eval"] is None
        assert fit["checksum"] == train.compact().checksum()


def test_folds_cover_the_data_once(small):
    folds = make_folds(small, "5fold", random_state=0)
    tests = [_pairs(te) for _, te in folds]
    assert sum(len(t) for t in tests) == len(small)
    assert set().union(*tests) == _pairs(small)


def test_reproducible_from_the_seed(small):
    a = evaluate("baselines", small, "3fold", random_state=7, curves=False)
    b = evaluate("baselines", small, "3fold", random_state=7, curves=False)
    c = evaluate("baselines", small, "3fold", random_state=8, curves=False)
    pd.testing.assert_series_equal(a["value"], b["value"])
    assert not np.allclose(a["value"], c["value"])


def test_model_seed_comes_from_evaluate(small):
    FitRecorder.fits = []
    evaluate({"rec": FitRecorder()}, small, "holdout", random_state=11)
    assert FitRecorder.fits[0]["random_state"] == 11


def test_parallel_equals_serial(small):
    models = {"biases": Biases(), "popularity": Popularity()}
    serial = evaluate(models, small, "3fold", n_jobs=1, curves=False)
    parallel = evaluate(models, small, "3fold", n_jobs=2, curves=False)
    pd.testing.assert_frame_equal(serial[["model", "fold", "metric", "value"]],
                                  parallel[["model", "fold", "metric", "value"]])


def test_ranking_models_on_explicit_data(small):
    res = evaluate({"popularity": Popularity()}, small, "holdout", k=5)
    assert set(res["metric"]) == {"precision@5", "recall@5", "ndcg@5", "map@5"}
    assert res["task"].eq("implicit").all()
    assert res["value"].between(0, 1).all()


def test_custom_metrics_and_folds(small):
    train, test = lr.split.random_split(small, 0.25, random_state=0)
    res = evaluate({"biases": Biases()}, small, [(train, test)], metrics=["rmse", "r2", "ndcg"])
    assert set(res["metric"]) == {"rmse", "r2", "ndcg@10"}
    expected = lr.metrics.rmse(test.values, Biases().fit(train).predict(test))
    assert res.loc[res["metric"] == "rmse", "value"].item() == pytest.approx(expected, rel=1e-6)


def test_bad_protocol_and_metric(small):
    with pytest.raises(lr.DataError, match="unknown protocol 'nope'"):
        evaluate("biases", small, "nope")
    with pytest.raises(lr.ModelError, match="unknown metric 'acc'"):
        evaluate("biases", small, "holdout", metrics=["acc"])
    with pytest.raises(lr.ModelError, match="unknown model 'magic'"):
        evaluate("magic", small, "holdout")


def test_record_writes_table_and_run(small, tmp_path):
    res = evaluate({"biases": Biases(user_damping=3.0)}, small, "3fold", record=tmp_path / "run")
    table = pd.read_csv(tmp_path / "run" / "results.csv")
    assert len(table) == len(res)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["dataset"]["checksum"] == small.checksum()
    assert run["protocol"] == "3fold"
    assert run["models"]["biases"]["params"]["user_damping"] == 3.0
    assert {"latentrec", "numpy", "scikit-learn"} <= set(run["versions"])
    assert run["summary"][0]["model"] == "biases"


def test_histories_with_test_curve(small):
    res = evaluate({"biases": Biases(n_epochs=4)}, small, "3fold")
    hist = res.attrs["histories"]["biases"]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert all("test_rmse" in h and "train_loss" in h for h in hist)


def test_summarize_sorted_and_marked(small):
    class Shifted(Biases):  # a non-baseline that is worse than Biases
        def _predict_codes(self, u, i):
            return super()._predict_codes(u, i) + np.float32(0.7)

    res = evaluate({"shifted": Shifted(), "biases": Biases(), "popularity": Popularity()}, small, "3fold")
    table = summarize(res)
    explicit = table[table["task"] == "explicit"]
    assert list(explicit["model"]) == ["biases", "shifted"]
    assert list(explicit["rank"]) == [1, 2]
    assert explicit.set_index("model")["baseline"].to_dict() == {"biases": True, "shifted": False}
    rm = res[(res["model"] == "biases") & (res["metric"] == "rmse")]["value"]
    row = explicit.iloc[0]
    assert row["rmse"] == pytest.approx(rm.mean()) and row["rmse_std"] == pytest.approx(rm.std())
    text = format_summary(table)
    assert "biases *" in text and "±" in text and "NDCG@10" in text


def test_groups_skip_models_that_do_not_import(monkeypatch):
    from latentrec import registry
    from latentrec.evaluate import resolve_models

    real = registry.available
    monkeypatch.setattr(registry, "available", lambda name: name != "biases" and real(name))
    skipped = []
    models = resolve_models("baselines,global-mean", skipped=skipped)
    assert "biases" not in models and "global-mean" in models and "popularity" in models
    assert skipped == ["biases (not importable)"]
    with pytest.raises(lr.ModelError, match="'biases' cannot be imported"):
        resolve_models("biases")


def test_parallel_workers_share_the_cores():
    from latentrec.evaluate import share_cores
    from latentrec.models.base import Interval

    class Threaded(Biases):
        _constraints = {**Biases._constraints, "n_threads": Interval(int, 0, None)}

        def __init__(self, *, n_threads=0, **kw):
            super().__init__(**kw)
            self.n_threads = n_threads

    assert share_cores(Threaded(), 1).n_threads == 0
    assert share_cores(Threaded(), 2).n_threads >= 1
    assert share_cores(Threaded(n_threads=3), 2).n_threads == 3
    assert share_cores(Biases(), 2).get_params() == Biases().get_params()


def test_package_attribute_is_the_module_before_and_after_its_import(small):
    before = lr.evaluate
    import latentrec.evaluate  # noqa: F401

    assert lr.evaluate is before
    res = lr.evaluate.evaluate({"biases": Biases()}, small, "holdout", curves=False)
    assert set(res["metric"]) == {"rmse", "mae"}
