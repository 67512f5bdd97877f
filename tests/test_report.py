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


# ---------------------------------------------------------------- issue 17: readable figures and honest tables
def _fake_results(points, metric="rmse", folds=(0,)):
    """Tidy results rows of models at (fit seconds, metric value)."""
    rows = [{"model": name, "fold": f, "metric": metric, "value": v, "fit_s": t, "baseline": False}
            for name, (t, v) in points.items() for f in folds]
    return pd.DataFrame(rows)


def test_scatter_labels_overlap_no_other_label_or_point():
    # ml-100k 5-fold means: svdpp, biased-mf and als sit within 0.002 RMSE and a factor 2 of fit time
    points = {"svdpp": (1.18, 0.9075), "biased-mf": (1.69, 0.9084), "als": (2.23, 0.9097),
              "item-knn": (0.25, 0.9116), "user-knn": (0.12, 0.9165), "biases": (0.020, 0.9401),
              "user-item-mean": (0.0052, 0.9826), "truncated-svd": (0.057, 0.9892), "item-mean": (0.0060, 1.0245),
              "user-mean": (0.0062, 1.0421), "global-mean": (0.0072, 1.1257), "twin": (1.20, 0.9078)}
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plots.time_accuracy_chart(_fake_results(points), "rmse")
    canvas = FigureCanvasAgg(fig)  # the boxes as a PNG render draws them
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    labels = {t.get_text(): t for t in ax.texts}
    assert set(labels) == set(points)
    boxes = {n: t.get_window_extent(renderer) for n, t in labels.items()}
    frame = ax.get_window_extent(renderer)
    marker = np.sqrt(50) / 2 * fig.dpi / 72  # radius in pixels of the scatter markers (s=50)
    for name, box in boxes.items():
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, name
        for other, b2 in boxes.items():
            assert other == name or not box.overlaps(b2), (name, other)
        for other, (t, v) in points.items():
            px, py = ax.transData.transform((t, v))
            dx, dy = max(box.x0 - px, 0, px - box.x1), max(box.y0 - py, 0, py - box.y1)
            assert np.hypot(dx, dy) >= marker - 0.5, (name, "covers the point of", other)
    # the same input places the labels at the same spots
    again = plots.time_accuracy_chart(_fake_results(points), "rmse")
    assert [t.xyann for t in again.axes[0].texts] == [t.xyann for t in ax.texts]


def test_convergence_limits_ignore_a_first_epoch_outlier():
    hist = {"sgd": [{"epoch": e, "val_rmse": v} for e, v in enumerate([3.4, 0.99, 0.95, 0.93, 0.92], 1)],
            "als": [{"epoch": e, "val_rmse": v} for e, v in enumerate([0.97, 0.94, 0.925, 0.921], 1)]}
    fig = plots.convergence_chart(hist, "val_rmse")
    lo, hi = fig.axes[0].get_ylim()
    assert hi < 1.01 and lo > 0.9, (lo, hi)  # the curves fill the plot, not 0.9-3.4
    assert 0.97 < hi  # a first epoch near the rest (als's 0.97) stays on the scale
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert notes == ["epoch 1: 3.4"]  # the off-scale point is still shown, with its value


def test_log_axes_have_at_least_three_labelled_ticks(data):
    fig = plots.long_tail(data)
    fig.canvas.draw()
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        shown = [t.get_text() for t in ax.yaxis.get_ticklabels() if lo <= t.get_position()[1] <= hi and t.get_text()]
        assert len(shown) >= 3, (ax.get_ylabel(), (lo, hi), shown)
    # a short range (ml-100k's 20..737 ratings per user) gets the 1-2-5 series
    assert plots._log_ticks(16.0, 900.0) == [20.0, 50.0, 100.0, 200.0, 500.0]
    assert plots._log_ticks(0.8, 600.0) == [1.0, 10.0, 100.0]


def test_one_fold_spread_is_na_not_zero(data, tmp_path):
    run = evaluate({"biases": Biases(n_epochs=3)}, data, "holdout", curves=False)
    compare_report(run, None, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "± n/a" in html and "± 0.0000" not in html
    from latentrec.evaluate import format_summary, summarize

    assert "± n/a" in format_summary(summarize(run.results))


def test_only_the_registry_baselines_are_tagged(data, tmp_path):
    from latentrec import registry
    from latentrec.evaluate import default_models

    tagged = {e.name for e in registry.entries() if e.baseline}
    assert tagged == {"global-mean", "user-mean", "item-mean", "user-item-mean", "biases", "popularity"}
    assert {"item-knn", "ease", "implicit-item-knn"} <= set(default_models("explicit"))  # still compared
    run = evaluate("biases,ease", data, "holdout", curves=False)
    compare_report(run, None, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "biases (baseline)" in html and "ease (baseline)" not in html and ">ease<" in html
