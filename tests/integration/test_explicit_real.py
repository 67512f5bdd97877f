"""Real-data checks of the explicit MF models on ml-100k's canonical u1 split.

Their accuracy is pinned to the README's figures in test_compare_real.py (5-fold and
u1..u5, ±0.002 RMSE); here: u1 has test items that no training row has, and every one
of those rows is measured with the fallback and counted, never dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from conftest import require_dataset
from latentrec.models import ALS, SVDpp, BiasedMF

pytestmark = pytest.mark.realdata


def _read(path):
    frame = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "timestamp"])
    return lr.Interactions.from_frame(frame, rating_scale=(1, 5))


@pytest.fixture(scope="module")
def u1():
    folder = require_dataset("ml-100k")
    return _read(folder / "u1.base"), _read(folder / "u1.test")


@pytest.mark.parametrize("model", [BiasedMF(random_state=0), ALS(random_state=0), SVDpp(random_state=0)],
                         ids=["BiasedMF", "ALS", "SVDpp"])
def test_every_u1_test_row_is_measured_and_cold_items_counted(model, u1):
    train, test = u1
    model.fit(train)
    m = lr.metrics.measure_ratings(model, test, ["rmse"])
    cold = int(np.sum(~test.to_frame()["item"].isin(train.items.ids)))
    assert cold > 0 and m.cold_items == cold and m.fallback_rows == cold and m.n_rows == len(test) == 20_000
    assert m["rmse"] == pytest.approx(lr.metrics.rmse(test.values, model.predict(test)))
    # clearly better than the regularised biases alone (~0.96 on u1)
    assert m["rmse"] < lr.metrics.measure_ratings(lr.models.Biases().fit(train), test, ["rmse"])["rmse"] - 0.02
