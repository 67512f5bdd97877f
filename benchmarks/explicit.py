"""Explicit-rating benchmark: accuracy of every registered explicit model, speed against Surprise.

Accuracy (always): every model of ``latentrec.registry.names("explicit")`` (extras
that do not import and Spark are skipped) with its shipped defaults, on

* ml-100k, 5-fold over rows (seed 0),
* ml-100k, the canonical u1..u5 splits,
* ml-latest-small, one random 80/20 split (seed 0),

printing RMSE, MAE, fit s and predict s (means over the folds). ``--blend`` adds a
ridge blend of the MF, KNN and bias models (weights that also move with the
user's and item's number of ratings) fitted on a validation split carved from
each fold's *training* part (10 %, seed 1), never on the test fold.

Speed (``--peers``): Surprise's SVD, SVDpp, KNNBaseline and BaselineOnly run on
the same folds in the same process (accuracy rows), and BiasedMF / SVDpp are
timed against Surprise SVD / SVDpp at the *same* n_factors and n_epochs
(100 f x 20 ep and 20 f x 20 ep, Surprise's defaults); the table gives
latentrec / Surprise fit time per fold and its median. Numba compile time is
excluded by one small warm-up fit (``cache=True`` makes it a cache load anyway).

``--scale``: BiasedMF and ALS seconds per epoch and peak memory on a 20M-rating
synthetic set (138k users x 27k items, like ML-20M); each model runs in a
fresh subprocess so that ``ru_maxrss`` is its own peak.

``--tune MODEL``: the validation search the shipped defaults came from (folds 1-2
of the 5-fold split, a 10 % validation part of each training part, seed 1).

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/explicit.py --peers [--quick] [--models biased-mf,svdpp]
    python benchmarks/explicit.py --scale
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

import latentrec as lr  # noqa: E402
from latentrec import metrics, registry  # noqa: E402
from latentrec.split import random_split  # noqa: E402

PROTOCOLS = [("ml-100k", "5fold"), ("ml-100k", "u1-u5"), ("ml-latest-small", "80/20")]
BLEND = ["biased-mf", "als", "svdpp", "item-knn", "user-knn", "biases"]
TUNE_GRIDS = {
    "biased-mf": {"n_factors": [50, 100, 200], "regularization": [0.04, 0.06, 0.08, 0.1, 0.12],
                  "learning_rate": [0.007, 0.01, 0.015], "n_epochs": [60, 80], "lr_decay": [0.95, 0.97, 0.99]},
    "als": {"n_factors": [10, 20, 50, 100], "regularization": [0.05, 0.08, 0.1, 0.13, 0.2],
            "bias_regularization": [0.02, 0.05, 0.2]},
    "svdpp": {"n_factors": [20, 50, 100], "regularization": [0.02, 0.04, 0.08, 0.12],
              "learning_rate": [0.005, 0.01, 0.015], "n_epochs": [40, 60]},
}


def explicit_models(selected: str | None) -> list[str]:
    names = registry.expand(selected, task="explicit") if selected else registry.names("explicit")
    out = []
    for name in names:
        entry = registry.get(name)
        if entry.extra == "spark" or not registry.available(name):
            print(f"# skipping {name}: {'spark' if entry.extra == 'spark' else 'its module does not import'}")
            continue
        out.append(name)
    return out


def seeded(name: str):
    """The registry model with its shipped defaults, seeded 0 as `latentrec compare` seeds it."""
    model = registry.create(name)
    return model.set_params(random_state=0) if "random_state" in model.get_params() else model


def evaluate(model, train, test) -> dict:
    _, fit_s = c.timed(model.fit, train)
    m, pred_s = c.timed(metrics.measure_ratings, model, test, ["rmse", "mae"])
    return {**m.values, "fit_s": fit_s, "predict_s": pred_s}


def _blend_features(preds: np.ndarray, data, part) -> np.ndarray:
    """[1, p, p * log(1 + n_u) / 5, p * log(1 + n_i) / 5, log terms]: lets the weights move with the
    user's and item's support in ``data`` (the classic Netflix-prize blending trick)."""
    lu = (np.log1p(np.bincount(data.user_codes, minlength=data.n_users)[part.user_codes]) / 5)[:, None]
    li = (np.log1p(np.bincount(data.item_codes, minlength=data.n_items)[part.item_codes]) / 5)[:, None]
    return np.c_[np.ones(len(preds)), preds, preds * lu, preds * li, lu, li]


def blend(names: list[str], train, test, ridge: float = 1.0) -> dict:
    """Ridge blend of the models' predictions, fitted on a validation part of ``train`` (never ``test``).

    Each model is fitted on 90 % of ``train`` and predicts the other 10 % (seed 1);
    the blend weights are fitted there, then every model is refitted on all of
    ``train`` and the same weights combine its predictions of ``test``.
    """
    t0 = time.perf_counter()
    fit, val = random_split(train, 0.1, random_state=1)
    cols_val, cols_test = [], []
    for name in names:
        cols_val.append(seeded(name).fit(fit).predict(val))
        cols_test.append(seeded(name).fit(train).predict(test))
    A = _blend_features(np.array(cols_val, dtype=np.float64).T, fit, val)
    w = np.linalg.solve(A.T @ A + ridge * np.eye(A.shape[1]), A.T @ val.values.astype(np.float64))
    pred = np.clip(_blend_features(np.array(cols_test, dtype=np.float64).T, train, test) @ w, *train.rating_scale)
    return {"rmse": metrics.rmse(test.values, pred), "mae": float(np.mean(np.abs(test.values - pred))),
            "fit_s": time.perf_counter() - t0, "predict_s": 0.0, "weights": np.round(w[:len(names) + 1], 3).tolist()}


# ---------------------------------------------------------------- Surprise
def surprise_sets(train, test):
    from surprise import Dataset, Reader

    frame = train.to_frame()[["user", "item", "rating"]]
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=train.rating_scale)).build_full_trainset()
    t = test.to_frame()
    return trainset, list(zip(t["user"], t["item"], t["rating"].astype(float)))


def surprise_eval(algo, trainset, testset) -> dict:
    _, fit_s = c.timed(algo.fit, trainset)
    preds, pred_s = c.timed(algo.test, testset)
    est = np.array([p.est for p in preds])
    truth = np.array([p.r_ui for p in preds])
    return {"rmse": metrics.rmse(truth, est), "mae": float(np.mean(np.abs(truth - est))),
            "fit_s": fit_s, "predict_s": pred_s}


PEER_LABELS = {"surprise-svd": "SVD", "surprise-svdpp": "SVD++", "surprise-knnbaseline": "KNNBaseline (user-based)",
               "surprise-baselineonly": "BaselineOnly"}


def surprise_peers():
    from surprise import SVD, BaselineOnly, KNNBaseline, SVDpp

    return {"surprise-svd": lambda: SVD(random_state=0), "surprise-svdpp": lambda: SVDpp(random_state=0),
            "surprise-knnbaseline": lambda: KNNBaseline(verbose=False),
            "surprise-baselineonly": lambda: BaselineOnly(verbose=False)}


SPEED_PAIRS = [  # latentrec model at Surprise's default settings, the Surprise row it is timed against
    ("biased-mf", {"n_factors": 100, "n_epochs": 20, "learning_rate": 0.005, "regularization": 0.02,
                   "bias_regularization": 0.02, "lr_decay": 1.0}, "surprise-svd"),
    ("svdpp", {"n_factors": 20, "n_epochs": 20, "learning_rate": 0.007, "regularization": 0.02,
               "bias_regularization": 0.02, "lr_decay": 1.0}, "surprise-svdpp"),
]


def speed_rows(dataset: str, label: str, train, peer_fit_s: dict) -> list[dict]:
    """Fit BiasedMF / SVDpp at Surprise's defaults (all cores, then one thread) against the peer's fit time
    measured on the same fold moments before (the peer's accuracy row uses exactly those defaults)."""
    rows = []
    for name, params, peer in SPEED_PAIRS:
        for threads in (0, 1):
            _, ours_s = c.timed(registry.create(name, random_state=0, n_threads=threads, **params).fit, train)
            rows.append({"dataset": dataset, "fold": label, "model": name, "n_threads": threads or "all",
                         "peer": peer, "factors x epochs": f"{params['n_factors']} x {params['n_epochs']}",
                         "latentrec_s": ours_s, "surprise_s": peer_fit_s[peer], "ratio": ours_s / peer_fit_s[peer]})
    return rows


def warm_up(names):
    """One tiny fit per model so numba compilation / cache loading is not timed."""
    tiny = lr.synthetic_ratings(n_users=50, n_items=40, n_ratings=800, random_state=0)
    for name in names:
        registry.create(name).fit(tiny)
    for name, params, _ in SPEED_PAIRS:
        for threads in (0, 1):
            registry.create(name, n_threads=threads, **params).fit(tiny)


# ---------------------------------------------------------------- accuracy runs
def run(args) -> None:
    names = explicit_models(args.models)
    warm_up(names)
    speed, figures = [], []
    for dataset, proto in PROTOCOLS:
        if args.protocols and proto not in args.protocols.split(","):
            continue
        data = c.load_ml(dataset)
        rows = []
        for label, train, test in c.protocol(dataset, proto, quick=args.quick, data=data):
            for name in names:
                rows.append({"model": name, **evaluate(seeded(name), train, test)})
                print(f"#   {label} {name}: rmse {rows[-1]['rmse']:.4f} fit {rows[-1]['fit_s']:.2f}s",
                      file=sys.stderr, flush=True)
            if args.blend:
                members = [n for n in BLEND if n in names]
                res = blend(members, train, test)
                print(f"# {dataset} {label}: blend weights (intercept, {', '.join(members)}) = {res.pop('weights')}")
                rows.append({"model": "blend", **res})
                print(f"#   {label} blend: rmse {res['rmse']:.4f}", file=sys.stderr, flush=True)
            if args.peers:
                trainset, testset = surprise_sets(train, test)
                peer_fit = {}
                for name, make in surprise_peers().items():
                    rows.append({"model": name, **surprise_eval(make(), trainset, testset)})
                    peer_fit[name] = rows[-1]["fit_s"]
                if dataset == "ml-100k":
                    speed += speed_rows(dataset, f"{proto} {label}", train, peer_fit)
            print(f"# {dataset} {proto} {label} done", flush=True)
        table = c.mean_rows(rows, ["model"], ["rmse", "mae", "fit_s", "predict_s"])
        c.print_table(table, ["model", "rmse", "mae", "fit_s", "predict_s", "folds"],
                      title=f"{dataset}, {proto} (means over folds)")
        for r in table:
            library, model = (("Surprise 1.1.5", PEER_LABELS[r["model"]]) if r["model"] in PEER_LABELS
                              else ("latentrec", c.model_label(r["model"])))
            for metric in ("rmse", "mae"):
                figures.append(c.figure(dataset, library, model, proto, metric, r[metric]))
    if speed:
        c.print_table(speed, title="fit time at the same n_factors x n_epochs (ratio = latentrec / Surprise)")
        for name, threads in sorted({(r["model"], str(r["n_threads"])) for r in speed}):
            ratios = [r["ratio"] for r in speed if r["model"] == name and str(r["n_threads"]) == threads]
            print(f"# {name} (n_threads={threads}): median ratio latentrec/Surprise {np.median(ratios):.4f} "
                  f"({1 / np.median(ratios):.0f}x faster) over {len(ratios)} folds")
    if args.figures:
        c.write_figures(args.figures, "rating", figures)


# ---------------------------------------------------------------- tuning
def tune(name: str, max_combos: int | None) -> None:
    data = c.load_ml("ml-100k")
    parts = [random_split(train, 0.1, random_state=1) for _, train, _ in itertools.islice(c.kfold_splits(data), 2)]
    grid = TUNE_GRIDS[name]
    rows = []
    for combo in itertools.islice(itertools.product(*grid.values()), max_combos):
        params = dict(zip(grid, combo))
        scores = [metrics.rmse(val.values, registry.create(name, random_state=0, **params).fit(fit).predict(val))
                  for fit, val in parts]
        rows.append({**params, "val_rmse": float(np.mean(scores))})
        print(rows[-1], flush=True)
    rows.sort(key=lambda r: r["val_rmse"])
    c.print_table(rows[:10], title=f"{name}: best settings by validation RMSE (training data only)")


# ---------------------------------------------------------------- scale
def scale_one(name: str, epochs: int) -> dict:
    t0 = time.perf_counter()
    data = lr.synthetic_ratings(n_users=138_000, n_items=27_000, n_ratings=20_000_000, random_state=0,
                                with_timestamps=False)
    gen_s = time.perf_counter() - t0
    base = c.peak_rss_mb()
    params = {"n_factors": 64, "n_epochs": epochs, "random_state": 0}
    model = registry.create(name, **params)
    warm = registry.create(name, **{**params, "n_epochs": 1})
    warm.fit(lr.synthetic_ratings(n_users=50, n_items=40, n_ratings=800, random_state=0))
    # tracemalloc sees every NumPy buffer the fit allocates (factors, shuffled copies, CSR/CSC);
    # ru_maxrss is the whole process, usually set by the generator before the fit starts
    _, traced = c.traced_peak_mb(model.fit, data)
    per_epoch = [h["epoch_s"] for h in model.history_]
    return {"model": name, "ratings": len(data), "factors": 64, "epochs": len(per_epoch),
            "s_per_epoch": float(np.median(per_epoch)), "train_rmse": model.history_[-1]["train_loss"],
            "fit_peak_mb": traced, "process_peak_rss_mb": c.peak_rss_mb(), "rss_before_fit_mb": base,
            "data_mb": data.nbytes / 2**20, "generate_s": gen_s}


def scale(args) -> None:
    rows = []
    for name, epochs in (("biased-mf", 3), ("als", 2)):
        out = subprocess.run([sys.executable, __file__, "--scale-one", name, "--epochs", str(epochs)],
                             capture_output=True, text=True, env=os.environ.copy())
        if out.returncode != 0:
            print(out.stderr[-3000:])
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    c.print_table(rows, title="20M-rating synthetic set (138k users x 27k items), 64 factors, all cores")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma-separated registry names or groups (default: every explicit model)")
    ap.add_argument("--protocols", help="subset of 5fold,u1-u5,80/20")
    ap.add_argument("--quick", action="store_true", help="only the first fold of each protocol")
    ap.add_argument("--peers", action="store_true", help="also run Surprise and print fit-time ratios")
    ap.add_argument("--blend", action="store_true", help="add a validation-fitted linear blend of the models")
    ap.add_argument("--scale", action="store_true", help="seconds per epoch and peak memory on 20M ratings")
    ap.add_argument("--scale-one", help=argparse.SUPPRESS)
    ap.add_argument("--epochs", type=int, default=3, help=argparse.SUPPRESS)
    ap.add_argument("--tune", choices=sorted(TUNE_GRIDS), help="rerun the validation search for a model")
    ap.add_argument("--max-combos", type=int, help="with --tune: stop after this many settings")
    ap.add_argument("--figures", help="merge the accuracy table into this JSON file (benchmarks/figures.py)")
    args = ap.parse_args(argv)
    if args.scale_one:
        print(json.dumps(scale_one(args.scale_one, args.epochs)))
    elif args.scale:
        scale(args)
    elif args.tune:
        tune(args.tune, args.max_combos)
    else:
        run(args)


if __name__ == "__main__":
    main()
