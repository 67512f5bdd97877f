"""Neighbourhood models against Surprise's KNNBaseline: accuracy, speed and peak memory.

On ml-100k, 5-fold cross-validation over ratings (latentrec.split.kfold, seed 0),
every model is fitted on each training part and predicts its test fold, in one
process, the models alternating fold by fold. Printed: RMSE and MAE (mean over
folds), fit and predict wall seconds and fit+predict CPU seconds (all threads)
summed over folds and, per latentrec model, the ratios of Surprise KNNBaseline's
wall and CPU seconds to its own (same user/item orientation, measured in this
run; > 1 means latentrec is faster). On a shared machine the CPU ratio is the
steadier one; it also charges latentrec for both of its threads.

Peak memory: each (library, model) fits and predicts fold 1 in a fresh
subprocess (Linux); the peak resident set is reset just before fit
(/proc/self/clear_refs) and the figure is the peak (VmHWM) after fit+predict
minus the resident set before fit (data loaded, libraries imported, numba
kernels loaded by a warm-up fit on a tiny synthetic set so that compiled code
is not counted as model memory).

Configurations
--------------
* latentrec ItemKNN / UserKNN with their defaults: baseline-corrected, cosine on
  the baseline residuals (Surprise's pearson_baseline), shrinkage 100, k = 40,
  damping 0.25, bias dampings 3 / 5 (chosen on ml-latest-small).
* "surprise-like": damping 0 and bias dampings 10 / 15, Surprise's defaults, to
  show that the two implementations agree when configured alike.
* Surprise KNNBaseline(k=40, sim_options={"name": "pearson_baseline",
  "user_based": ...}) with its default ALS baseline (reg_i 10, reg_u 15, 10 epochs).

Run::

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/knn.py [--repeats 3] [--no-memory] [--implicit] [--scale]

``--scale`` adds ItemKNN on 5M synthetic ratings (100k users x 20k items): fit and
predict seconds and peak memory, against the size a dense similarity matrix would take.
``--implicit`` adds ImplicitItemKNN against the implicit library's Cosine, TFIDF and
BM25 recommenders (same split, same K): NDCG@10, fit and recommend seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse
import json
import os
import subprocess
import time

import numpy as np
import pandas as pd

import latentrec as lr
from latentrec import metrics
from latentrec.split import kfold

from _common import load_ml, markdown  # noqa: E402  (benchmarks/ is on sys.path)

MODELS = {
    "ItemKNN": ("latentrec", dict(cls="ItemKNN")),
    "ItemKNN surprise-like": ("latentrec", dict(cls="ItemKNN", damping=0.0, item_damping=10.0,
                                                user_damping=15.0)),
    "ItemKNN 1 thread": ("latentrec", dict(cls="ItemKNN", n_threads=1)),
    "UserKNN": ("latentrec", dict(cls="UserKNN")),
    "UserKNN surprise-like": ("latentrec", dict(cls="UserKNN", damping=0.0, item_damping=10.0,
                                                user_damping=15.0)),
    "Surprise KNNBaseline item": ("surprise", dict(user_based=False)),
    "Surprise KNNBaseline user": ("surprise", dict(user_based=True)),
}
PEER = {"ItemKNN": "Surprise KNNBaseline item", "UserKNN": "Surprise KNNBaseline user"}


# ------------------------------------------------------------------ data


def folds(data: lr.Interactions, n_splits: int = 5, seed: int = 0):
    out = []
    for train, test in kfold(data, n_splits, random_state=seed):
        out.append((train.to_frame()[["user", "item", "rating"]], test.to_frame()[["user", "item", "rating"]]))
    return out


# ------------------------------------------------------------------ one run of one model
def make(name: str):
    lib, cfg = MODELS[name]
    cfg = dict(cfg)
    if lib == "latentrec":
        from latentrec.models import knn

        return lib, getattr(knn, cfg.pop("cls"))(**cfg)
    from surprise import KNNBaseline

    return lib, KNNBaseline(k=40, sim_options={"name": "pearson_baseline", "user_based": cfg["user_based"]},
                            verbose=False)


def run(name: str, train: pd.DataFrame, test: pd.DataFrame) -> dict:
    lib, model = make(name)
    if lib == "latentrec":
        c0, t0 = time.process_time(), time.perf_counter()
        model.fit(train)
        t1 = time.perf_counter()
        pred = model.predict(test[["user", "item"]])
        t2, c2 = time.perf_counter(), time.process_time()
    else:
        from surprise import Dataset, Reader

        # plain Python ints and floats in, as a Surprise user would pass them
        frame = train.astype({"user": "int64", "item": "int64", "rating": "float64"})
        testset = list(zip(test["user"].tolist(), test["item"].tolist(), test["rating"].astype(float).tolist()))
        c0, t0 = time.process_time(), time.perf_counter()
        trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
        model.fit(trainset)
        t1 = time.perf_counter()
        pred = np.array([p.est for p in model.test(testset)])
        t2, c2 = time.perf_counter(), time.process_time()
    y = test["rating"].to_numpy(dtype=np.float64)
    return {"rmse": metrics.rmse(y, pred), "mae": float(np.mean(np.abs(y - pred))),
            "fit_s": t1 - t0, "predict_s": t2 - t1, "cpu_s": c2 - c0}


def warm_up() -> None:
    """Load the numba kernels (cached on disk) so one-time loading is not timed."""
    from latentrec.models import ItemKNN, UserKNN

    tiny = lr.synthetic_ratings(n_users=50, n_items=40, n_ratings=800, random_state=0)
    for cls in (ItemKNN, UserKNN):
        cls().fit(tiny).predict(tiny)


# ------------------------------------------------------------------ memory (subprocess)
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(name: str, dataset: str) -> None:
    import gc

    data = load_ml(dataset)
    train, test = folds(data)[0]
    del data
    if MODELS[name][0] == "latentrec":
        warm_up()
    else:
        import surprise  # noqa: F401  (import cost is not model memory)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    before = _status_kb("VmRSS")
    res = run(name, train, test)
    peak = _status_kb("VmHWM")
    print(json.dumps({"peak_extra_mb": (peak - before) / 1024, "rmse": res["rmse"]}))


def measure_memory(name: str, dataset: str) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory-child", name, "--dataset", dataset],
                         capture_output=True, text=True, check=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_mb"]


# ------------------------------------------------------------------ implicit feedback (--implicit)
def implicit_table(dataset: str, repeats: int) -> pd.DataFrame:
    """ImplicitItemKNN against the implicit library's item-item recommenders, same split and K.

    ml-100k as implicit feedback (every rating an interaction), per-user 20 % holdout of
    users with >= 10 interactions (seed 0); K = 20 neighbours; NDCG@10 over all items with
    training items excluded; fit seconds and seconds to recommend top-10 for every test
    user (medians of ``repeats``), both libraries on all cores.
    """
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

    from latentrec.models import ImplicitItemKNN
    from latentrec.split import user_holdout

    data = load_ml(dataset).to_implicit()
    train, test = user_holdout(data, 0.2, 10, random_state=0)
    X = train.to_csr().astype(np.float32)
    users = np.unique(test.user_codes).astype(np.int32)  # parent codes = the peer's row numbers
    peers = {"none": CosineRecommender, "tfidf": TFIDFRecommender, "bm25": BM25Recommender}
    ImplicitItemKNN().fit(train)  # load the kernels
    rows = []
    for weighting, peer_cls in peers.items():
        res = {}
        for lib in ("latentrec", "implicit"):
            fits, recs = [], []
            for _ in range(repeats):
                if lib == "latentrec":
                    model = ImplicitItemKNN(n_neighbors=20, weighting=weighting)
                    t0 = time.perf_counter()
                    model.fit(train)
                    t1 = time.perf_counter()
                    ids, _ = model.recommend(data.users.ids[users], n=10)
                    t2 = time.perf_counter()
                else:
                    model = peer_cls(K=20)
                    t0 = time.perf_counter()
                    model.fit(X, show_progress=False)
                    t1 = time.perf_counter()
                    codes, _ = model.recommend(users, X[users], N=10, filter_already_liked_items=True)
                    t2 = time.perf_counter()
                    ids = np.ma.masked_array(data.items.take(np.maximum(codes, 0)), mask=codes < 0)
                fits.append(t1 - t0)
                recs.append(t2 - t1)
            ndcg = metrics.score_topn((data.users.ids[users], ids), test, 10, metrics=["ndcg"])["ndcg@10"]
            res[lib] = (ndcg, float(np.median(fits)), float(np.median(recs)))
        rows.append({"weighting": weighting, "NDCG@10 latentrec": res["latentrec"][0],
                     "NDCG@10 implicit": res["implicit"][0], "fit s latentrec": res["latentrec"][1],
                     "fit s implicit": res["implicit"][1],
                     "fit ratio latentrec/implicit": res["latentrec"][1] / res["implicit"][1],
                     "recommend s latentrec": res["latentrec"][2], "recommend s implicit": res["implicit"][2]})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ scale (--scale)
def scale_run(n_users: int = 100_000, n_items: int = 20_000, n_ratings: int = 5_000_000) -> dict:
    """ItemKNN on a synthetic set: fit and predict seconds, peak memory above the loaded data."""
    import gc

    from latentrec.models import ItemKNN

    data = lr.synthetic_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings, random_state=0)
    warm_up()
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status_kb("VmRSS")
    t0 = time.perf_counter()
    model = ItemKNN(max_similarities=200).fit(data)
    t1 = time.perf_counter()
    model.predict(data.subset(np.arange(200_000)))
    t2 = time.perf_counter()
    return {"ratings": n_ratings, "users": n_users, "items": n_items, "fit s": t1 - t0,
            "predict 200k s": t2 - t1, "peak extra MB": (_status_kb("VmHWM") - before) / 1024,
            "dense n x n float64 MB": n_items * n_items * 8 / 2**20}


# ------------------------------------------------------------------ table


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--repeats", type=int, default=1, help="time each fold this many times, keep the median")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--implicit", action="store_true",
                    help="also compare ImplicitItemKNN with the implicit library (Cosine/TFIDF/BM25)")
    ap.add_argument("--scale", action="store_true",
                    help="also fit ItemKNN(max_similarities=200) on 5M synthetic ratings (100k x 20k)")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.dataset)
        return
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    data = load_ml(args.dataset)
    parts = folds(data)
    warm_up()
    rows = {n: [] for n in names}
    for f, (train, test) in enumerate(parts):
        order = names if f % 2 == 0 else names[::-1]
        for name in order:
            reps = [run(name, train, test) for _ in range(args.repeats)]
            rows[name].append({"rmse": reps[0]["rmse"], "mae": reps[0]["mae"],
                               "fit_s": float(np.median([r["fit_s"] for r in reps])),
                               "predict_s": float(np.median([r["predict_s"] for r in reps])),
                               "cpu_s": float(np.median([r["cpu_s"] for r in reps]))})
        print(f"fold {f + 1}/{len(parts)} done", file=sys.stderr, flush=True)
    table = []
    for name in names:
        r = pd.DataFrame(rows[name])
        table.append({"model": name, "RMSE": r.rmse.mean(), "MAE": r.mae.mean(), "fit s": r.fit_s.sum(),
                      "predict s": r.predict_s.sum(), "fit+predict s": r.fit_s.sum() + r.predict_s.sum(),
                      "fit+predict CPU s": r.cpu_s.sum()})
    df = pd.DataFrame(table)

    def ratio(column):
        total = dict(zip(df["model"], df[column]))
        peer = {n: PEER.get(n.split(" ")[0]) for n in df["model"]}
        return [total[peer[n]] / total[n] if MODELS[n][0] == "latentrec" and peer[n] in total else float("nan")
                for n in df["model"]]

    df["Surprise/latentrec time"] = ratio("fit+predict s")
    df["Surprise/latentrec CPU"] = ratio("fit+predict CPU s")
    if not args.no_memory:
        df["peak extra MB (fold 1)"] = [measure_memory(n, args.dataset) for n in names]
    print(f"\n{args.dataset}, 5-fold (seed 0), {len(data):,} ratings; "
          f"{os.cpu_count()} cores; times summed over folds (median of {args.repeats})\n")
    print(markdown(df))
    if args.implicit:
        print(f"\n{args.dataset} as implicit feedback, per-user 20 % holdout (users >= 10, seed 0), "
              f"K = 20, median of {args.repeats}\n")
        print(markdown(implicit_table(args.dataset, args.repeats)))
    if args.scale:
        print("\nscale: synthetic ratings, ItemKNN(max_similarities=200)\n")
        print(markdown(pd.DataFrame([scale_run()])))


if __name__ == "__main__":
    main()
