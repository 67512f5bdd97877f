"""Real-data checks of the explicit MF models: default settings on ml-100k's canonical u1 split.

Ceilings sit a little above what the defaults measure (benchmarks/explicit.py
prints the full table): BiasedMF ~0.915, ALS ~0.92, SVDpp ~0.915 on u1; Surprise's
SVD gets ~0.95 there. Wall-clock is not asserted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from conftest import require_dataset
from latentrec.models.mf import ALS, SVDpp, BiasedMF

pytestmark = pytest.mark.realdata


def _read(path):
    frame = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "timestamp"])
    return lr.Interactions.from_frame(frame, rating_scale=(1, 5))


@pytest.fixture(scope="module")
def u1():
    folder = require_dataset("ml-100k")
    return _read(folder / "u1.base"), _read(folder / "u1.test")


@pytest.mark.parametrize("model, ceiling", [
    (BiasedMF(random_state=0), 0.94),
    (ALS(random_state=0), 0.94),
    (SVDpp(random_state=0), 0.94),
], ids=["BiasedMF", "ALS", "SVDpp"])
def test_defaults_beat_the_ceiling_on_u1(model, ceiling, u1):
    train, test = u1
    model.fit(train)
    pred = model.predict(test.to_frame()[["user", "item"]])
    rmse = lr.metrics.rmse(test.values, pred)
    assert rmse <= ceiling, rmse
    # and clearly better than the regularised biases alone (~0.96 on u1)
    biases = lr.models.Biases().fit(train)
    assert rmse < lr.metrics.rmse(test.values, biases.predict(test.to_frame()[["user", "item"]])) - 0.02
    assert model.unknown_counts_["rows"] == np.sum(~test.to_frame()["item"].isin(train.items.ids))
