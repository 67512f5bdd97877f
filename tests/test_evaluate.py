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
    res = evaluate({"biases": Biases(), "item-mean": ItemMean()}, small, "3fold").results
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
    a = evaluate("baselines", small, "3fold", random_state=7, curves=False).results
    b = evaluate("baselines", small, "3fold", random_state=7, curves=False).results
    c = evaluate("baselines", small, "3fold", random_state=8, curves=False).results
    pd.testing.assert_series_equal(a["value"], b["value"])
    assert not np.allclose(a["value"], c["value"])


def test_model_seed_comes_from_evaluate(small):
    FitRecorder.fits = []
    evaluate({"rec": FitRecorder()}, small, "holdout", random_state=11)
    assert FitRecorder.fits[0]["random_state"] == 11


def test_parallel_equals_serial(small):
    models = {"biases": Biases(), "popularity": Popularity()}
    serial = evaluate(models, small, "3fold", n_jobs=1, curves=False).results
    parallel = evaluate(models, small, "3fold", n_jobs=2, curves=False).results
    pd.testing.assert_frame_equal(serial[["model", "fold", "metric", "value"]],
                                  parallel[["model", "fold", "metric", "value"]])


def test_ranking_models_on_explicit_data(small):
    res = evaluate({"popularity": Popularity()}, small, "holdout", k=5).results
    assert set(res["metric"]) == {"precision@5", "recall@5", "ndcg@5", "map@5"}
    assert res["task"].eq("implicit").all()
    assert res["value"].between(0, 1).all()


def test_custom_metrics_and_folds(small):
    train, test = lr.split.random_split(small, 0.25, random_state=0)
    res = evaluate({"biases": Biases()}, small, [(train, test)], metrics=["rmse", "r2", "ndcg"]).results
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
    res = evaluate({"biases": Biases(user_damping=3.0)}, small, "3fold", record=tmp_path / "run").results
    table = pd.read_csv(tmp_path / "run" / "results.csv")
    assert len(table) == len(res)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["dataset"]["checksum"] == small.checksum()
    assert run["protocol"] == "3fold"
    assert run["models"]["biases"]["params"]["user_damping"] == 3.0
    assert {"latentrec", "numpy", "scikit-learn"} <= set(run["versions"])
    assert run["summary"][0]["model"] == "biases"


def test_histories_are_validation_curves(small):
    res = evaluate({"biases": Biases(n_epochs=4)}, small, "3fold")
    hist = res.histories["biases"]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert all("val_rmse" in h and "train_loss" in h for h in hist)
    assert not any(key.startswith("test_") for h in hist for key in h)
    assert "validation slice" in res.run["curves"]


class EpochRecorder(Recommender):
    """An iterative model that records every (user, item) pair it is shown during fit: the training
    rows, the eval_set rows and whether any callback was handed in (a way to reach other data)."""

    shown: list = []

    def __init__(self, *, n_epochs=3, random_state=None):
        self.n_epochs = n_epochs
        self.random_state = random_state

    def _fit(self, data, eval_data):
        EpochRecorder.shown.append({"train": _pairs(data), "eval": set() if eval_data is None else _pairs(eval_data),
                                    "callbacks": len(self._callbacks)})
        self._run_epochs(self.n_epochs, lambda e: {"train_loss": 1.0},
                         evaluate=lambda: self._eval_metrics(eval_data))

    def _predict_codes(self, u, i):
        return np.full(len(u), self.global_mean_, dtype=np.float32)


@pytest.mark.parametrize("protocol", ["3fold", "holdout"])
def test_no_test_row_reaches_fit_even_with_curves(small, protocol):
    EpochRecorder.shown = []
    res = evaluate({"rec": EpochRecorder()}, small, protocol, random_state=2, curves=True)
    folds = make_folds(small, protocol, random_state=2)
    test0 = _pairs(folds[0][1])
    assert len(EpochRecorder.shown) == len(folds) + 1  # one fit per fold + the curve fit on fold 0
    for seen in EpochRecorder.shown:
        assert seen["callbacks"] == 0
    fold_fits = [EpochRecorder.shown[0], *EpochRecorder.shown[2:]]  # fold 0, its curve fit, folds 1...
    for seen, (train, test) in zip(fold_fits, folds):
        assert seen["train"] == _pairs(train) and not seen["eval"]
        assert not seen["train"] & _pairs(test)
    curve_fit = EpochRecorder.shown[1]
    assert not (curve_fit["train"] | curve_fit["eval"]) & test0
    assert curve_fit["eval"] and curve_fit["eval"] <= _pairs(folds[0][0])
    assert [h["epoch"] for h in res.histories["rec"]] == [1, 2, 3]
    assert all("val_rmse" in h for h in res.histories["rec"])


def test_summarize_sorted_and_marked(small):
    class Shifted(Biases):  # a non-baseline that is worse than Biases
        def _predict_codes(self, u, i):
            return super()._predict_codes(u, i) + np.float32(0.7)

    res = evaluate({"shifted": Shifted(), "biases": Biases(), "popularity": Popularity()}, small, "3fold").results
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
    res = lr.evaluate.evaluate({"biases": Biases()}, small, "holdout", curves=False).results
    assert set(res["metric"]) == {"rmse", "mae"}


def test_cold_test_items_stay_in_the_ranking_denominators():
    """Regression: evaluate re-coded the test set through the model's vocabularies and dropped every
    test row whose item the model never saw, so recall/NDCG lost them from |R_u|."""
    # user u rated items 0..3 in training; the test holds one known item (4, never hit: the
    # lists are fixed) and one item no training row has (99)
    train = lr.Interactions.from_arrays([0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 4, 2])
    test = lr.Interactions.from_arrays([0, 0, 1], [2, 99, 4])
    res = evaluate({"pop": Popularity()}, train, [(train, test)], k=3, metrics=["recall", "precision"])
    table = res.results.set_index("metric")
    model = Popularity().fit(train)
    ids, _ = model.recommend([0, 1], n=3)
    hits = [len(set(np.ma.compressed(ids[0])) & {2, 99}), len(set(np.ma.compressed(ids[1])) & {4})]
    expected_recall = (hits[0] / 2 + hits[1] / 1) / 2  # user 0's |R_u| is 2, item 99 included
    assert table.loc["recall@3", "value"] == pytest.approx(expected_recall)
    assert table.loc["recall@3", "cold_items"] == 1 and table.loc["recall@3", "cold_users"] == 0
    m = lr.metrics.measure_topn(model, test, 3)
    assert m.n_rows == 3 and m.n_users == 2 and m.cold_items == 1


def test_cold_users_are_counted_and_get_the_popular_items():
    train = lr.Interactions.from_arrays([0, 0, 1, 1], [0, 1, 1, 2])
    test = lr.Interactions.from_arrays([0, 7], [2, 1])  # user 7 never trained
    m = lr.metrics.measure_topn(Popularity().fit(train), test, 2, metrics=["recall"])
    assert m.cold_users == 1 and m.n_users == 2
    # user 7 gets the most popular item (1) first: a hit; user 0 has seen 0 and 1, gets 2: a hit
    assert m["recall@2"] == pytest.approx(1.0)


def test_rating_measure_keeps_every_row_and_counts_fallbacks(small):
    train, test = lr.split.random_split(small, 0.3, random_state=0)
    model = Biases().fit(train.subset(train.item_codes != 0))
    m = lr.metrics.measure_ratings(model, test, ["rmse"])
    pred = model.predict(test)
    assert m.n_rows == len(test) and m["rmse"] == pytest.approx(lr.metrics.rmse(test.values, pred))
    assert m.cold_items == int(np.sum(test.item_codes == 0)) > 0 and m.fallback_rows >= m.cold_items


def test_score_topn_reads_lists_from_any_recommender():
    test = lr.Interactions.from_arrays(["a", "a", "b"], ["x", "y", "z"])
    long = pd.DataFrame({"user": ["a", "a", "b", "b"], "item": ["y", "q", "q", "z"], "rank": [1, 2, 1, 2]})
    m = lr.metrics.score_topn(long, test, 2, metrics=["recall", "precision"])
    assert m["recall@2"] == pytest.approx((1 / 2 + 1 / 1) / 2) and m["precision@2"] == pytest.approx(0.5)
    pair = lr.metrics.score_topn((np.array(["a"]), np.array([["y", "q"]], dtype=object)), test, 2, metrics=["recall"])
    assert pair["recall@2"] == pytest.approx((1 / 2 + 0) / 2)  # user b has no list: scores 0
    with pytest.raises(lr.DataError, match="need columns user and item"):
        lr.metrics.score_topn(pd.DataFrame({"u": [1]}), test, 2)


def test_models_whose_extra_is_missing_are_skipped_not_crashed(monkeypatch, small):
    """Regression (issue 17): after a plain `pip install .`, the torch and Spark models imported (they load
    torch lazily), so `--models all` counted them available and crashed at their first fit."""
    import importlib.util

    from latentrec import registry
    from latentrec.evaluate import resolve_models

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("torch", "pyspark")
                        else real(name, *a))
    assert registry.missing_packages("mlp") == ["torch"] and not registry.available("mlp")
    assert registry.available("biased-mf")
    skipped = []
    models = resolve_models("all", "explicit", skipped)
    assert "mlp" not in models and "biased-mf" in models
    assert "mlp (needs latentrec[neural])" in skipped
    with pytest.raises(lr.ModelError, match="install latentrec\\[neural\\]"):
        resolve_models("mlp")


def test_an_interrupted_run_resumes_from_its_journal(small, tmp_path, capsys, monkeypatch):
    """Regression (issue 17): results were written only at the end, so a timeout or Ctrl-C lost them all."""
    monkeypatch.delenv("LATENTREC_QUIET", raising=False)  # CI sets it; the progress lines are checked here
    journal = tmp_path / "run.partial.jsonl"

    class Boom(FitRecorder):
        interrupt = True

        def _fit(self, data, eval_data):
            if Boom.interrupt:
                raise KeyboardInterrupt  # Ctrl-C during the fourth task
            super()._fit(data, eval_data)

    with pytest.raises(KeyboardInterrupt):
        evaluate({"biases": Biases(), "boom": Boom()}, small, "3fold", curves=False, journal=journal)
    assert len(journal.read_text().splitlines()) == 1 + 3  # header + the three folds of biases
    Boom.interrupt, FitRecorder.fits = False, []
    res = evaluate({"biases": Biases(), "boom": Boom()}, small, "3fold", curves=False, journal=journal,
                   resume=True)
    assert res.run["resumed_tasks"] == 3 and len(FitRecorder.fits) == 3  # only boom's folds ran
    fresh = evaluate({"biases": Biases()}, small, "3fold", curves=False).results
    kept = res.results[res.results["model"] == "biases"].reset_index(drop=True)
    pd.testing.assert_series_equal(kept["value"], fresh["value"])
    err = capsys.readouterr().err
    assert "[3/6] resumed from the journal" in err and "boom fold 3/3" in err
    with pytest.raises(lr.DataError, match="written by another run"):
        evaluate({"biases": Biases(user_damping=1.0)}, small, "3fold", curves=False, journal=journal, resume=True)


def test_dir_of_the_package_lists_the_public_api():
    """Regression (issue 17): dir(latentrec) showed five names, so tab completion found nothing."""
    names = dir(lr)
    assert {"load_movielens", "Interactions", "evaluate", "metrics", "DataError", "load_model"} <= set(names)


def test_lr_evaluate_is_callable_and_still_the_module():
    """Regression (issue 17): lr.evaluate(...) failed, the name being the module."""
    import latentrec.evaluate as module

    data = lr.synthetic_ratings(40, 20, 500, random_state=0)
    a = lr.evaluate(["biases"], data, "holdout", verbose=False)
    b = module.evaluate(["biases"], data, "holdout", verbose=False)
    pd.testing.assert_frame_equal(a.results.drop(columns=["fit_s", "predict_s"]),
                                  b.results.drop(columns=["fit_s", "predict_s"]))
    assert lr.evaluate is module and callable(lr.evaluate) and lr.evaluate.make_folds is module.make_folds
