"""Neural-model benchmark: accuracy on MovieLens, epoch speed against latentrec's BiasedMF.

Accuracy (explicit): ml-latest-small with one 80/20 random holdout (seed 0) and
ml-100k with 5-fold cross-validation (seed 0). Each model picks its number of
epochs by early stopping on a validation split carved from the *training* part
(10 %, seed 1; patience 3), then is refitted on the whole training part for that
many epochs; RMSE / MAE on the test part. latentrec's BiasedMF (numba SGD, its
own defaults) is fitted with the same factor count when ``latentrec.models.factorization``
is importable.

Ranking (implicit): ml-100k as implicit feedback, per-user 20 % holdout for users
with >= 10 interactions (seed 0); NeuMF with its defaults (chosen on validation by
benchmarks/neural_tuning.py; epochs by early stopping on NDCG@10 of a validation
holdout carved from the training part the same way, seed 1; ``--losses bce,bpr``
adds the BPR loss) against
ImplicitALS (64 factors, regularization 50, alpha 5 — docs/implicit.md's
setting). NDCG@10, P@10, fit seconds.

Speed: seconds per epoch on a 1M-rating synthetic set (20k users x 5k items) on
``--threads`` CPU threads, for several batch sizes / optimisers, and the ratio to
BiasedMF's epoch (50 factors, same threads) measured in the same run.

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/neural.py [--quick] [--only accuracy,ranking,speed]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import latentrec as lr  # noqa: E402
from latentrec import metrics  # noqa: E402
from latentrec.split import random_split, user_holdout  # noqa: E402

from _common import figure, load_ml, print_table, protocol, write_figures  # noqa: E402

from latentrec.models.neural import MLP, BiasedDotProduct, DotProduct, NeuMF  # noqa: E402

try:
    from latentrec.models import BiasedMF
except ImportError:  # another engineer's module; the comparison is skipped without it
    BiasedMF = None
try:
    from latentrec.models import ImplicitALS
except ImportError:
    ImplicitALS = None

FACTORS = 50


def explicit_models(threads: int) -> dict:
    common = dict(n_factors=FACTORS, random_state=0, n_threads=threads, device="auto")
    models = {
        "BiasedDotProduct": lambda **kw: BiasedDotProduct(**common, **kw),
        "MLP": lambda **kw: MLP(**common, **kw),
        "DotProduct": lambda **kw: DotProduct(**common, **kw),
    }
    if BiasedMF is not None:
        models["BiasedMF"] = lambda **kw: BiasedMF(n_factors=FACTORS, random_state=0, n_threads=1, **kw)
    return models


def fit_with_early_stopping(factory, train, max_epochs: int):
    """Epochs chosen on a validation split of ``train`` (10 %, seed 1), then refit on all of ``train``."""
    if factory().__class__.__name__ == "BiasedMF":  # numba model: its own tuned n_epochs
        model = factory()
        t0 = time.perf_counter()
        model.fit(train)
        return model, time.perf_counter() - t0, len(model.history_)
    fit_part, val = random_split(train, 0.1, random_state=1)
    probe = factory(n_epochs=max_epochs, early_stopping_rounds=3).fit(fit_part, eval_set=val)
    epochs = int(getattr(probe, "best_epoch_", len(probe.history_)))
    model = factory(n_epochs=epochs)
    t0 = time.perf_counter()
    model.fit(train)
    return model, time.perf_counter() - t0, epochs


def accuracy(args) -> None:
    models = explicit_models(args.threads)
    figures = []
    for dataset, proto in (("ml-latest-small", "80/20"), ("ml-100k", "5fold")):
        data = load_ml(dataset)
        rows = []
        for label, train, test in protocol(dataset, proto, quick=args.quick, data=data):
            for name, factory in models.items():
                model, seconds, epochs = fit_with_early_stopping(factory, train, args.max_epochs)
                m = metrics.measure_ratings(model, test, ["rmse", "mae"])
                rows.append({"model": name, "fold": label, "rmse": m["rmse"], "mae": m["mae"], "epochs": epochs,
                             "s/epoch": seconds / max(epochs, 1), "fit s": seconds})
                print(f"  {dataset} {label} {name}: rmse {rows[-1]['rmse']:.4f} epochs {epochs} "
                      f"{rows[-1]['s/epoch']:.3f} s/epoch", flush=True)
        frame = pd.DataFrame(rows)
        table = frame.groupby("model", sort=False)[["rmse", "mae", "epochs", "s/epoch", "fit s"]].mean().reset_index()
        table["folds"] = frame.groupby("model", sort=False).size().to_numpy()
        if "BiasedMF" in set(table["model"]):
            ref = float(table.loc[table["model"] == "BiasedMF", "rmse"].iloc[0])
            table["rmse - BiasedMF"] = table["rmse"] - ref
        print_table(table.to_dict("records"), title=f"{dataset}, {proto} ({FACTORS} factors, {args.threads} threads)")
        figures += [figure(dataset, "latentrec", r["model"], proto, metric, r[metric])
                    for r in table.to_dict("records") for metric in ("rmse", "mae")]
    if args.figures:
        write_figures(args.figures, "neural", figures)


def ranking(args) -> None:
    data = load_ml("ml-100k").to_implicit()
    train, test = user_holdout(data, test_size=0.2, min_interactions=10, random_state=0)
    fit_part, val = user_holdout(train, test_size=0.2, min_interactions=10, random_state=1)
    rows = []

    def measure(name, model, seconds, epochs):
        res = metrics.measure_topn(model, test, 10, metrics=["ndcg", "precision", "recall"])
        rows.append({"model": name, "ndcg@10": res["ndcg@10"], "p@10": res["precision@10"],
                     "recall@10": res["recall@10"], "epochs": epochs, "fit s": seconds})
        print(f"  {name}: ndcg@10 {res['ndcg@10']:.4f} ({seconds:.1f} s)", flush=True)

    for loss in args.losses.split(","):
        probe = NeuMF(loss=loss, n_epochs=args.max_epochs, early_stopping_rounds=3, random_state=0,
                      n_threads=args.threads).fit(fit_part, eval_set=val)
        epochs = int(getattr(probe, "best_epoch_", len(probe.history_)))
        model = NeuMF(loss=loss, n_epochs=epochs, random_state=0, n_threads=args.threads)
        t0 = time.perf_counter()
        model.fit(train)
        measure(f"NeuMF ({loss})", model, time.perf_counter() - t0, epochs)
    if ImplicitALS is not None:
        model = ImplicitALS(n_factors=64, regularization=50, alpha=5, random_state=0, n_threads=args.threads)
        t0 = time.perf_counter()
        model.fit(train)
        measure("ImplicitALS", model, time.perf_counter() - t0, model.n_epochs)
    if ImplicitALS is not None:
        ref = rows[-1]["ndcg@10"]
        for r in rows:
            r["vs ImplicitALS"] = r["ndcg@10"] / ref
    print_table(rows, title="ml-100k implicit, per-user 20 % holdout (users >= 10), all-item top-10")


def speed(args) -> None:
    n_ratings = 200_000 if args.quick else 1_000_000
    data = lr.synthetic_ratings(n_users=20_000, n_items=5_000, n_ratings=n_ratings, random_state=0)
    configs = [
        ("BiasedDotProduct adam bs=1024", lambda: BiasedDotProduct(batch_size=1024)),
        ("BiasedDotProduct adam bs=8192", lambda: BiasedDotProduct(batch_size=8192, learning_rate=0.02)),
        ("BiasedDotProduct sgd bs=8192", lambda: BiasedDotProduct(batch_size=8192, optimizer="sgd", learning_rate=1.0)),
        ("BiasedDotProduct adamw bs=8192", lambda: BiasedDotProduct(batch_size=8192, optimizer="adamw", learning_rate=0.02)),
        ("MLP (32,) + dot term, bs=8192", lambda: MLP(batch_size=8192)),
    ]
    rows = []
    for repeat in range(args.repeats):
        if BiasedMF is not None:
            mf = BiasedMF(n_factors=FACTORS, n_epochs=3, random_state=0, n_threads=args.threads).fit(data)
            t = float(np.median([h["epoch_s"] for h in mf.history_[1:]]))
            rows.append({"model": f"BiasedMF (numba, {args.threads} threads)", "repeat": repeat, "s/epoch": t})
        for name, make in configs:
            model = make().set_params(n_factors=FACTORS, n_epochs=3, random_state=0, n_threads=args.threads,
                                      device="cpu")
            model.fit(data)
            t = float(np.median([h["epoch_s"] for h in model.history_[1:]]))
            rows.append({"model": name, "repeat": repeat, "s/epoch": t,
                         "train rmse": model.history_[-1]["train_loss"]})
            print(f"  {name}: {t:.3f} s/epoch", flush=True)
    frame = pd.DataFrame(rows)
    table = frame.groupby("model", sort=False)["s/epoch"].median().reset_index()
    mf_rows = table["model"].str.startswith("BiasedMF")
    if mf_rows.any():
        mf_epoch = float(table.loc[mf_rows, "s/epoch"].iloc[0])
        table["x BiasedMF epoch"] = table["s/epoch"] / mf_epoch
    print_table(table.to_dict("records"),
                title=f"seconds per epoch, {n_ratings:,} synthetic ratings (20k users x 5k items), "
                      f"{FACTORS} factors, {args.threads} threads, median of {args.repeats} run(s)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one fold, a 200k speed set")
    parser.add_argument("--only", default="accuracy,ranking,speed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--losses", default="bce", help="NeuMF losses to rank with, e.g. bce,bpr")
    parser.add_argument("--figures", help="merge the accuracy table into this JSON file (benchmarks/figures.py)")
    args = parser.parse_args(argv)
    import torch

    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}", flush=True)
    parts = set(args.only.split(","))
    if "speed" in parts:
        speed(args)
    if "accuracy" in parts:
        accuracy(args)
    if "ranking" in parts:
        ranking(args)


if __name__ == "__main__":
    main()
