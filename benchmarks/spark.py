"""SparkALS (Spark MLlib, local[N]) side by side with latentrec's own ALS.

    python benchmarks/spark.py --accuracy            # ml-100k u1 split: RMSE and implicit NDCG@10
    python benchmarks/spark.py --crossover 1,2,5,10  # fit seconds vs data size (millions of ratings)

Both engines get the same rank, sweeps and split, and each engine's λ is chosen
on a validation split carved from the training data. Explicit: latentrec's ALS
and Spark both scale λ by each row's count (ALS-WR), so they share one grid and
the test RMSE at every λ of it is printed too. Implicit: ImplicitALS uses a fixed
λ and Spark a count-scaled one, so each has its own grid. Run with
LATENTREC_DATA_HOME pointing at the MovieLens files (../shared/datasets here).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import latentrec as lr
from latentrec import metrics
from latentrec.split import random_split, user_holdout

from _common import canonical_splits, load_ml, print_table  # noqa: E402  (benchmarks/ is the script's folder)

warnings.simplefilter("ignore")


def _ml100k_u1():
    _, train, test = next(iter(canonical_splits("ml-100k", ("u1",))))
    return train, test


def _tune(make, grid, train, *, implicit=False):
    fit_part, val = random_split(train, 0.2, random_state=1)
    best = None
    for reg in grid:
        model = make(reg).fit(fit_part)
        if implicit:
            score = model.score(val)
        else:
            score = -metrics.rmse(val.values, model.predict(val))
        if best is None or score > best[0]:
            best = (score, reg)
    return best[1]


def accuracy(master: str, n_factors: int, n_epochs: int) -> None:
    from latentrec.models import ALS, ImplicitALS
    from latentrec.spark import SparkALS, get_spark

    get_spark(master).sparkContext.setLogLevel("ERROR")
    train, test = _ml100k_u1()
    rows = []
    # explicit: both engines scale λ by each row's count (ALS-WR), so they share one grid
    grid = [0.05, 0.1, 0.125, 0.15, 0.175, 0.2, 0.3]
    engines = {
        "latentrec ALS": lambda reg: ALS(n_factors=n_factors, n_epochs=n_epochs, regularization=reg, random_state=0),
        "SparkALS": lambda reg: SparkALS(master=master, n_factors=n_factors, n_epochs=n_epochs, regularization=reg),
    }
    per_reg = {reg: {"regularization": reg} for reg in grid}
    for name, make in engines.items():
        reg = _tune(make, grid, train)
        for r in grid:
            t0 = time.perf_counter()
            model = make(r).fit(train)
            fit_s = time.perf_counter() - t0
            rmse = metrics.rmse(test.values, model.predict(test))
            per_reg[r][f"{name} RMSE"] = rmse
            if r == reg:
                rows.append({"engine": name, "task": "explicit (u1)", "regularization": reg, "RMSE": rmse,
                             "NDCG@10": np.nan, "fit_s": fit_s})
    for r in per_reg.values():
        r["gap"] = r["SparkALS RMSE"] - r["latentrec ALS RMSE"]
    print_table(list(per_reg.values()), title="u1 test RMSE at each λ (same semantics on both engines)")
    # implicit: all ml-100k ratings as likes, per-user 20% holdout (users with >= 10)
    itrain, itest = user_holdout(load_ml("ml-100k").to_implicit(), 0.2, min_interactions=10, random_state=0)
    engines = {
        "latentrec ImplicitALS": (lambda reg: ImplicitALS(n_factors=n_factors, n_epochs=n_epochs, regularization=reg,
                                                          alpha=1.0, random_state=0), [0.1, 1.0, 10.0, 50.0]),
        "SparkALS implicit": (lambda reg: SparkALS(master=master, implicit=True, alpha=1.0, n_factors=n_factors,
                                                   n_epochs=n_epochs, regularization=reg), [0.01, 0.05, 0.1, 0.5]),
    }
    for name, (make, grid) in engines.items():
        reg = _tune(make, grid, itrain, implicit=True)
        t0 = time.perf_counter()
        model = make(reg).fit(itrain)
        fit_s = time.perf_counter() - t0
        rows.append({"engine": name, "task": "implicit (user 20%)", "regularization": reg, "RMSE": np.nan,
                     "NDCG@10": model.score(itest), "fit_s": fit_s})
    print_table(rows, title="SparkALS vs latentrec ALS, ml-100k")


def crossover(master: str, sizes_m: list[float], n_factors: int, n_epochs: int) -> None:
    from latentrec.models import ALS
    from latentrec.spark import SparkALS, get_spark

    get_spark(master, driver_memory="8g").sparkContext.setLogLevel("ERROR")
    rows = []
    for size in sizes_m:
        n = int(size * 1_000_000)
        # shaped like ML-20M: 138k users x 27k items at 20M ratings, scaled down with the size
        scale = size / 20.0
        n_users, n_items = max(1000, int(138_000 * scale)), max(500, int(27_000 * scale ** 0.5))
        data = lr.synthetic_ratings(n_users=n_users, n_items=n_items, n_ratings=n, random_state=0,
                                    with_timestamps=False)
        timings = {}
        for name, make in (("latentrec ALS", lambda: ALS(n_factors=n_factors, n_epochs=n_epochs, random_state=0)),
                           ("SparkALS", lambda: SparkALS(master=master, n_factors=n_factors, n_epochs=n_epochs))):
            t0 = time.perf_counter()
            make().fit(data)
            timings[name] = time.perf_counter() - t0
        rows.append({"ratings (M)": size, "users": n_users, "items": n_items,
                     "latentrec ALS s": timings["latentrec ALS"], "SparkALS s": timings["SparkALS"],
                     "Spark / latentrec": timings["SparkALS"] / timings["latentrec ALS"]})
        print(rows[-1], flush=True)
    print_table(rows, title="fit seconds by data size")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--factors", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--crossover", default="", help="comma-separated sizes in millions of ratings")
    args = parser.parse_args()
    if args.accuracy:
        accuracy(args.master, args.factors, args.epochs)
    if args.crossover:
        crossover(args.master, [float(s) for s in args.crossover.split(",")], args.factors, args.epochs)


if __name__ == "__main__":
    main()
