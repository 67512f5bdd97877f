"""Plots and HTML reports: files written, images embedded, graceful notes, missing extra."""

import base64
import re
import sys

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec import plots
from latentrec.evaluate import evaluate
from latentrec.models.baselines import Biases, Popularity
from latentrec.report import compare_report, explore_report, tune_report
from latentrec.tuning import grid_search

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    d = lr.synthetic_ratings(150, 80, 3000, random_state=2)
    genres = np.array(["Drama", "Comedy|Drama", "Action", "Comedy"])[np.arange(80) % 4]
    d.item_metadata = pd.DataFrame({"title": [f"Film {i}" for i in range(80)], "genres": genres},
                                   index=pd.Index(np.arange(80), name="item"))
    return d


@pytest.fixture(scope="module")
def results(data):
    return evaluate({"biases": Biases(n_epochs=4), "popularity": Popularity()}, data, "3fold")


def _check_report(folder, expected_pngs):
    html = (folder / "report.html").read_text()
    for name in expected_pngs:
        png = (folder / name).read_bytes()
        assert png.startswith(PNG) and len(png) > 5000, name
        assert base64.b64encode(png).decode() in html, f"{name} not embedded"
    assert not re.search(r'src="(?!data:)', html), "report must not link external files"
    return html


def test_compare_report(results, data, tmp_path):
    path = compare_report(results, data, tmp_path / "out")
    html = _check_report(tmp_path / "out", ["compare_explicit_rmse.png", "compare_implicit_ndcg_at_10.png",
                                            "time_vs_explicit.png", "convergence_explicit.png",
                                            "eda_rating_histogram.png", "eda_long_tail.png",
                                            "eda_genre_means.png", "eda_activity.png"])
    assert path.name == "report.html"
    assert "biases (baseline)" in html and "RMSE" in html and "NDCG@10" in html
    assert (tmp_path / "out" / "results.csv").stat().st_size > 0
    assert (tmp_path / "out" / "run.json").stat().st_size > 0
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temporary files left behind


def test_explore_report_without_genres_or_time(tmp_path):
    d = lr.synthetic_implicit(100, 60, 1500, random_state=0, with_timestamps=False)
    explore_report(d, tmp_path)
    html = _check_report(tmp_path, ["eda_long_tail.png"])
    assert "activity not drawn: the data have no timestamps" in html
    assert not (tmp_path / "eda_rating_histogram.png").exists()


def test_tune_report_with_heatmap(data, tmp_path):
    res = grid_search(Biases(n_epochs=3), data, {"user_damping": [0.0, 10.0], "item_damping": [1.0, 5.0, 25.0]},
                      cv=2)
    tune_report(res, tmp_path, test_score=0.9)
    _check_report(tmp_path, ["tune_learning_curves.png", "tune_heatmap.png"])
    assert len(pd.read_csv(tmp_path / "tuning.csv")) == 6
    assert set(pd.read_csv(tmp_path / "curves.csv")["metric"]) >= {"val_rmse", "train_loss"}


def test_metric_labels_have_units():
    assert "rating points" in plots.metric_label("rmse")
    assert plots.metric_label("ndcg@10").startswith("NDCG@10 (0–1; higher")
    assert plots.metric_label("val_rmse").startswith("validation RMSE")


def test_chart_errors_name_the_problem(results):
    with pytest.raises(lr.DataError, match="no results for metric 'mae@3'"):
        plots.comparison_chart(results.results, "mae@3")


def test_missing_matplotlib_names_the_extra(results, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(lr.MissingDependencyError, match=r"latentrec\[plots\]"):
        plots.comparison_chart(results.results, "rmse")
