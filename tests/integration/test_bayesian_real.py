"""Real-data check of BayesianFM: plain grouped Bayesian MF with the shipped defaults on ml-100k's u1.

The figure is the one benchmarks/bayesian.py prints for "plain" on u1 (same
data, same seed, same chain: results do not depend on the thread count);
the tolerance only absorbs floating-point differences between machines.
Wall-clock is not asserted.
"""

from __future__ import annotations

import pytest

import latentrec as lr
from conftest import require_dataset
from latentrec.evaluate import make_folds
from latentrec.models.bayesian import BayesianFM

pytestmark = pytest.mark.realdata

#: u1 test RMSE of BayesianFM(random_state=0) (loss="auto": the ordered probit on these star ratings,
#: 300 samples, all 280 kept samples saved): benchmarks/bayesian.py's "plain" u1 row (2026-12-03),
#: the same chain; the tolerance is the README figures' (benchmarks/figures.py TOLERANCE["rmse"])
U1_PLAIN = 0.9054
TOLERANCE = 0.002


def test_plain_defaults_on_u1_reproduce_the_benchmark():
    folder = require_dataset("ml-100k")
    data = lr.load_movielens("ml-100k", data_home=folder.parent, download=False)
    train, test = make_folds(data, "u1-u5", data_home=folder.parent)[0]
    model = BayesianFM(random_state=0).fit(train)
    rmse = lr.metrics.rmse(test.values, model.predict(test))
    assert rmse == pytest.approx(U1_PLAIN, abs=TOLERANCE)
    assert model.n_kept_samples_ == model.n_iter - model.n_burn_in
