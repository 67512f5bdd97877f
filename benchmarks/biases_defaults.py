"""How the Biases defaults were chosen: validation splits carved from each training fold.

    LATENTREC_DATA_HOME=../shared/datasets python benchmarks/biases_defaults.py

For each of the 5 ml-100k folds (seed 0), 20% of the *training* part is held
out for validation; the damping pair with the best mean validation RMSE is
reported, then every candidate's 5-fold test RMSE is printed for reference
(the test folds never choose anything).
"""

from __future__ import annotations

import itertools

import numpy as np

import latentrec as lr
from latentrec.models.baselines import Biases
from latentrec.split import kfold, random_split


def main() -> None:
    data = lr.load_movielens("ml-100k")
    folds = list(kfold(data, 5, random_state=0))
    grid = list(itertools.product([1, 2, 3, 5, 10], [2, 3, 5, 8, 15]))
    val = {g: [] for g in grid}
    for train, _ in folds:
        fit_part, held = random_split(train, 0.2, random_state=1)
        for g in grid:
            model = Biases(item_damping=g[0], user_damping=g[1]).fit(fit_part)
            val[g].append(lr.metrics.rmse(held.values, model.predict(held)))
    best = min(grid, key=lambda g: np.mean(val[g]))
    print(f"best on validation: item_damping={best[0]}, user_damping={best[1]} "
          f"(validation RMSE {np.mean(val[best]):.4f})")
    print("| item_damping | user_damping | validation RMSE | 5-fold test RMSE |")
    print("|---:|---:|---:|---:|")
    for g in grid:
        test = np.mean([lr.metrics.rmse(te.values, Biases(item_damping=g[0], user_damping=g[1]).fit(tr).predict(te))
                        for tr, te in folds])
        print(f"| {g[0]} | {g[1]} | {np.mean(val[g]):.4f} | {test:.4f} |")


if __name__ == "__main__":
    main()
