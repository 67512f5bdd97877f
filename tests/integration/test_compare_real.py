"""Real-data comparison: `latentrec compare` reproduces the README's figures (benchmarks/expected_figures.json).

The README tables come from the benchmarks (benchmarks/figures.py); here the CLI's
main job measures the same protocols and must land within the stated tolerances
(±0.002 RMSE, ±0.005 NDCG and the other ranking metrics), so the two cannot drift
apart and no model can fall behind its published figure while CI stays green.
"""

import json

import pytest

from conftest import readme_figure, require_dataset
from latentrec.cli import main

pytestmark = pytest.mark.realdata

RATING_MODELS = {"biases": "Biases", "biased-mf": "BiasedMF", "als": "ALS", "svdpp": "SVDpp",
                 "item-knn": "ItemKNN", "user-knn": "UserKNN"}
#: the default comparison's BayesianFM is benchmarks/bayesian.py's ids-only row (same folds, seed 0)
FIVE_FOLD_MODELS = {**RATING_MODELS, "bayesian-fm": "BayesianFM (ids only)"}


def _compare(tmp_path, monkeypatch, *args) -> dict:
    folder = require_dataset("ml-100k")
    monkeypatch.setenv("LATENTREC_DATA_HOME", str(folder.parent))
    monkeypatch.setenv("LATENTREC_QUIET", "1")
    out = tmp_path / "res.json"
    assert main(["compare", "ml-100k", *args, "--no-curves", "-o", str(out)]) == 0
    return json.loads(out.read_text())


def test_compare_5fold_reproduces_the_readme_rating_table(tmp_path, monkeypatch, capsys):
    doc = _compare(tmp_path, monkeypatch, "--protocol", "5fold", "--models", ",".join(FIVE_FOLD_MODELS))
    summary = {row["model"]: row for row in doc["summary"]}
    for name, label in FIVE_FOLD_MODELS.items():
        value, tol = readme_figure("bayesian" if name == "bayesian-fm" else "rating", "ml-100k", label, "5fold", "rmse")
        assert summary[name]["rmse"] == pytest.approx(value, abs=tol), name
    assert "biases *" in capsys.readouterr().out


def test_compare_u1_u5_uses_the_published_folds_and_reproduces_the_readme(tmp_path, monkeypatch):
    doc = _compare(tmp_path, monkeypatch, "--protocol", "u1-u5", "--models", "biased-mf,svdpp")
    assert doc["folds"] == [{"train": 80_000, "test": 20_000}] * 5
    summary = {row["model"]: row for row in doc["summary"]}
    for name in ("biased-mf", "svdpp"):
        value, tol = readme_figure("rating", "ml-100k", RATING_MODELS[name], "u1-u5", "rmse")
        assert summary[name]["rmse"] == pytest.approx(value, abs=tol), name


def test_compare_user_holdout_reproduces_the_readme_ranking_table(tmp_path, monkeypatch):
    """The benchmark's per-user 20 % holdout (seed 0) is compare's ``user-holdout``; with the validated
    defaults both print the same figures, cold test items counted in the denominators."""
    doc = _compare(tmp_path, monkeypatch, "--protocol", "user-holdout", "--models", "ease,implicit-als,popularity")
    summary = {row["model"]: row for row in doc["summary"]}
    for name, label in (("ease", "EASE"), ("implicit-als", "ImplicitALS"), ("popularity", "Popularity")):
        for metric in ("precision@10", "recall@10", "ndcg@10", "map@10"):
            value, tol = readme_figure("ranking", "ml-100k", label, "holdout", metric)
            assert summary[name][metric] == pytest.approx(value, abs=tol), (name, metric)
    cold = {r["model"]: r["cold_items"] for r in doc["results"] if r["metric"] == "ndcg@10"}
    assert cold["ease"] > 0  # the holdout has test items no training row has: they stay in |R_u|
