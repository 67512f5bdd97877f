"""Neural models on real MovieLens: the README's ml-latest-small figures (80/20, seed 0), pinned.

benchmarks/neural.py measures them (epochs by early stopping on a validation part of the
training rows, then a refit); here the same procedure must land within ±0.002 RMSE of
benchmarks/expected_figures.json.
"""

import sys
from pathlib import Path

import pytest

from conftest import readme_figure, require_dataset
from latentrec import metrics
from latentrec.data.movielens import load_movielens
from latentrec.split import random_split

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import neural as bench  # noqa: E402

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def split():
    data = load_movielens(path=require_dataset("ml-latest-small"))
    return random_split(data, 0.2, random_state=0)


@pytest.mark.parametrize("name", ["BiasedDotProduct", "MLP"])
def test_readme_figure_on_ml_latest_small(split, name):
    train, test = split
    factory = bench.explicit_models(threads=2)[name]
    model, _, _ = bench.fit_with_early_stopping(factory, train, max_epochs=60)
    value, tol = readme_figure("neural", "ml-latest-small", name, "80/20", "rmse")
    assert metrics.measure_ratings(model, test, ["rmse"])["rmse"] == pytest.approx(value, abs=tol)
