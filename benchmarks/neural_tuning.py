"""How the neural models' defaults were chosen: small grids scored on VALIDATION splits
carved from the training data only (the test folds of benchmarks/neural.py are never seen).

* MLP (explicit): the training part of the first ml-100k 5-fold split (seed 0) and of the
  ml-latest-small 80/20 holdout (seed 0), each split 90/10 (seed 1) into fit / validation;
  every config is trained with early stopping (patience 3) and scored by its best
  validation RMSE. BiasedDotProduct and BiasedMF on the same splits are printed for scale.
* NeuMF (implicit): ml-100k as implicit feedback, per-user 20 % holdout (users >= 10,
  seed 0) as in benchmarks/implicit_feedback.py; its training part is split again the same way
  (seed 1) and configs are scored by their best validation NDCG@10 (patience 3), beside
  ImplicitALS (64 factors, regularization 50, alpha 5) on the same validation split.

* multvae (implicit): MultVAE on the per-user validation split of ml-100k (as NeuMF's) and of
  ml-latest-small (the same construction); each config runs 100 epochs and prints its validation
  NDCG@10 at fixed epochs, so a cheaper default can be chosen that keeps the paper settings'
  validation NDCG (a fit without eval_set runs exactly n_epochs).
* batch (explicit; BiasedDotProduct, DotProduct, MLP): batch size x learning rate on the same
  validation splits as the MLP grid (larger batches need larger steps; ``BATCH_GRID`` or ``--grid``).

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/neural_tuning.py [--only mlp,neumf,batch]

One thread per fit (the box is shared); the whole run takes ~1.5 hours (NeuMF with 32 negatives: ~5 min a config). Validation
scores move by ~0.003 RMSE / ~0.005 NDCG between seeds, so differences below that are noise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import load_ml, print_table, protocol  # noqa: E402

from latentrec import metrics  # noqa: E402
from latentrec.models.neural import MLP, BiasedDotProduct, NeuMF  # noqa: E402
from latentrec.split import random_split, user_holdout  # noqa: E402

MLP_GRID = [
    {"dot_term": False},  # the previous defaults: regularization 0.01, hidden (64,)
    {"dot_term": False, "regularization": 0.05},
    {"dot_term": False, "weight_decay": 1e-4},
    {"dot_term": True, "regularization": 0.05},
    {"dot_term": True, "regularization": 0.1},
    {"dot_term": True, "regularization": 0.15},
    {"dot_term": True, "regularization": 0.2},
    {"dot_term": True, "regularization": 0.1, "hidden": (32,)},
    {"dot_term": True, "regularization": 0.15, "hidden": (32,)},
    {"dot_term": True, "regularization": 0.2, "hidden": (32,)},
]
MLP_BASE = dict(n_factors=50, hidden=(64,), regularization=0.01, dropout=0.5, embedding_dropout=0.25,
                learning_rate=0.003)

NEUMF_GRID = [
    {},  # the previous defaults: 32 factors, 4 negatives, regularization 1e-4
    {"regularization": 1e-3},
    {"n_negatives": 8},
    {"n_factors": 64},
    {"n_factors": 64, "n_negatives": 8, "regularization": 1e-3},
    {"n_factors": 64, "n_negatives": 8, "regularization": 1e-3, "loss": "bpr"},
    {"n_factors": 64, "n_negatives": 8, "regularization": 1e-3, "pretrain_epochs": 8},
    {"n_factors": 64, "n_negatives": 16, "regularization": 1e-3},
    {"n_factors": 64, "n_negatives": 16, "regularization": 1e-3, "learning_rate": 0.004},
    {"n_factors": 64, "n_negatives": 16, "regularization": 3e-3},
    {"n_factors": 64, "n_negatives": 32, "regularization": 1e-3},
    {"n_factors": 64, "n_negatives": 32, "regularization": 3e-4},
    {"n_factors": 64, "n_negatives": 32, "regularization": 1e-3, "hidden": (128, 64)},
    {"n_factors": 64, "n_negatives": 32, "regularization": 1e-3, "learning_rate": 0.003, "lr_decay": 0.9},
    {"n_factors": 64, "n_negatives": 32, "regularization": 1e-3, "init_std": 0.05},
    {"n_factors": 64, "n_negatives": 64, "regularization": 1e-3},  # stays on the popularity plateau
]
NEUMF_BASE = dict(n_factors=32, n_negatives=4, regularization=1e-4, learning_rate=0.002, loss="bce",
                  hidden=(64, 32), pretrain_epochs=0)


def tune_mlp(max_epochs: int) -> None:
    from latentrec.models import BiasedMF

    rows = []
    for dataset, proto in (("ml-100k", "5fold"), ("ml-latest-small", "80/20")):
        _, train, _test = next(iter(protocol(dataset, proto)))  # the test part is not used
        fit_part, val = random_split(train, 0.1, random_state=1)
        mf = BiasedMF(n_factors=50, random_state=0, n_threads=1).fit(fit_part)
        rows.append({"dataset": dataset, "model": "BiasedMF (defaults)",
                     "val rmse": metrics.rmse(val.values, mf.predict(val)), "epochs": mf.n_epochs})
        bdp = BiasedDotProduct(n_factors=50, n_epochs=max_epochs, early_stopping_rounds=3, random_state=0,
                               n_threads=1).fit(fit_part, eval_set=val)
        rows.append({"dataset": dataset, "model": "BiasedDotProduct (defaults)",
                     "val rmse": min(h["val_rmse"] for h in bdp.history_), "epochs": bdp.best_epoch_})
        for params in MLP_GRID:
            t0 = time.perf_counter()
            model = MLP(**{**MLP_BASE, **params}, n_epochs=max_epochs, early_stopping_rounds=3,
                        random_state=0, n_threads=1).fit(fit_part, eval_set=val)
            rows.append({"dataset": dataset, "model": f"MLP {params}",
                         "val rmse": min(h["val_rmse"] for h in model.history_), "epochs": model.best_epoch_,
                         "s": time.perf_counter() - t0})
            print(f"  {dataset} {rows[-1]['model']}: {rows[-1]['val rmse']:.4f}", flush=True)
    print_table(rows, title="MLP: best validation RMSE (early stopping, patience 3), 50 factors")


#: (batch_size, learning_rate) pairs for the explicit models' fast-CPU defaults: larger batches
#: need larger steps; each model's current default pair is in the grid too
BATCH_GRID = [(1024, 0.003), (1024, 0.01), (4096, 0.01), (4096, 0.02), (8192, 0.01), (8192, 0.02),
              (8192, 0.04), (16384, 0.02), (16384, 0.04), (16384, 0.08)]


def tune_batch(max_epochs: int, models: list[str], grid=BATCH_GRID) -> None:
    """Batch size and learning rate of the explicit models on the same validation splits as
    ``tune_mlp`` (best validation RMSE with early stopping, patience 3)."""
    from latentrec.models.neural import DotProduct

    classes = {"BiasedDotProduct": BiasedDotProduct, "DotProduct": DotProduct, "MLP": MLP}
    rows = []
    for dataset, proto in (("ml-100k", "5fold"), ("ml-latest-small", "80/20")):
        _, train, _test = next(iter(protocol(dataset, proto)))  # the test part is not used
        fit_part, val = random_split(train, 0.1, random_state=1)
        for name in models:
            for batch_size, rate in grid:
                t0 = time.perf_counter()
                model = classes[name](n_factors=50, batch_size=batch_size, learning_rate=rate, n_epochs=max_epochs,
                                      early_stopping_rounds=3, random_state=0, n_threads=1,
                                      device="cpu").fit(fit_part, eval_set=val)
                rows.append({"dataset": dataset, "model": name, "batch": batch_size, "lr": rate,
                             "val rmse": min(h["val_rmse"] for h in model.history_), "epochs": model.best_epoch_,
                             "s": time.perf_counter() - t0})
                print(f"  {dataset} {name} batch {batch_size} lr {rate}: {rows[-1]['val rmse']:.4f} "
                      f"({rows[-1]['epochs']} epochs, {rows[-1]['s']:.1f} s)", flush=True)
    print_table(rows, title="batch size x learning rate: best validation RMSE (early stopping, patience 3)")


#: MultVAE configs: the paper's settings first; smaller batches make more updates per epoch
#: (an epoch costs about the same at any batch size), so they need fewer epochs
PAPER_VAE = {"batch_size": 500, "anneal_steps": 200_000, "learning_rate": 1e-3}
MULTVAE_GRID = [
    PAPER_VAE,
    {**PAPER_VAE, "learning_rate": 3e-3},
    {**PAPER_VAE, "batch_size": 100},
    {**PAPER_VAE, "batch_size": 100, "anneal_steps": 2000},
    {**PAPER_VAE, "batch_size": 100, "anneal_steps": 1000},  # the defaults since 2026-12-03, with 30 epochs
    {**PAPER_VAE, "batch_size": 50, "anneal_steps": 1000},
    {**PAPER_VAE, "batch_size": 200, "anneal_steps": 1000, "learning_rate": 2e-3},
]
#: epochs at which the validation NDCG is printed (a fit without eval_set runs a fixed n_epochs)
VAE_MARKS = (10, 20, 30, 40, 60, 100)


def tune_multvae(max_epochs: int = 100, datasets=("ml-100k", "ml-latest-small")) -> None:
    """Every config trained for ``max_epochs`` with the validation NDCG@10 after each epoch:
    its best epoch, and its value at the epochs of ``VAE_MARKS`` (per-epoch values move by
    ~0.005-0.01, so a fixed epoch count is judged by its neighbourhood, not one epoch)."""
    from latentrec.models.neural import MultVAE

    rows = []
    for dataset in datasets:
        data = load_ml(dataset).to_implicit()
        train, _test = user_holdout(data, test_size=0.2, min_interactions=10, random_state=0)
        fit_part, val = user_holdout(train, test_size=0.2, min_interactions=10, random_state=1)
        for params in MULTVAE_GRID:
            t0 = time.perf_counter()
            model = MultVAE(**params, n_epochs=max_epochs, random_state=0, n_threads=1,
                            device="cpu").fit(fit_part, eval_set=val)
            curve = [h["val_ndcg"] for h in model.history_]
            best = int(np.argmax(curve))
            rows.append({"dataset": dataset, "batch": params["batch_size"], "anneal": params["anneal_steps"],
                         "lr": params["learning_rate"], "best": f"{curve[best]:.4f} @ {best + 1}",
                         **{f"@{e}": round(curve[e - 1], 4) for e in VAE_MARKS if e <= len(curve)},
                         "s / epoch": round((time.perf_counter() - t0) / len(curve), 3)})
            print(f"  {rows[-1]}", flush=True)
    print_table(rows, title="MultVAE: validation NDCG@10 after each epoch (best, and at fixed epochs)")


def tune_neumf(max_epochs: int) -> None:
    from latentrec.models import ImplicitALS

    data = load_ml("ml-100k").to_implicit()
    train, _test = user_holdout(data, test_size=0.2, min_interactions=10, random_state=0)
    fit_part, val = user_holdout(train, test_size=0.2, min_interactions=10, random_state=1)
    als = ImplicitALS(n_factors=64, regularization=50, alpha=5, random_state=0, n_threads=1).fit(fit_part)
    ref = metrics.measure_topn(als, val, 10, metrics=["ndcg"])["ndcg@10"]
    rows = [{"model": "ImplicitALS (64 f, λ 50, α 5)", "val ndcg@10": ref, "vs ALS": 1.0}]
    for params in NEUMF_GRID:
        t0 = time.perf_counter()
        model = NeuMF(**{**NEUMF_BASE, **params}, n_epochs=max_epochs, early_stopping_rounds=3, random_state=0,
                      n_threads=1).fit(fit_part, eval_set=val)
        best = max(h["val_ndcg"] for h in model.history_)
        rows.append({"model": f"NeuMF {params}", "val ndcg@10": best, "vs ALS": best / ref,
                     "epochs": model.best_epoch_, "s": time.perf_counter() - t0})
        print(f"  {rows[-1]['model']}: {best:.4f} ({best / ref:.3f} x ALS)", flush=True)
    print_table(rows, title="NeuMF on ml-100k implicit: best validation NDCG@10 (patience 3)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="mlp,neumf", help="mlp, neumf, multvae, batch (comma-separated)")
    parser.add_argument("--models", default="BiasedDotProduct,DotProduct,MLP", help="explicit models of --only batch")
    parser.add_argument("--grid", help="--only batch: batch:rate pairs instead of BATCH_GRID, e.g. 1024:0.01,8192:0.02")
    parser.add_argument("--max-epochs", type=int, default=60)
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    if "mlp" in parts:
        tune_mlp(args.max_epochs)
    if "neumf" in parts:
        tune_neumf(args.max_epochs)
    if "multvae" in parts:
        tune_multvae()
    if "batch" in parts:
        grid = [(int(b), float(r)) for b, r in (pair.split(":") for pair in args.grid.split(","))] if args.grid \
            else BATCH_GRID
        tune_batch(args.max_epochs, args.models.split(","), grid)


if __name__ == "__main__":
    main()
