"""Implicit-feedback benchmark: ranking quality on MovieLens, speed against the `implicit` library.

Quality (always): on ml-100k and ml-latest-small as implicit feedback (every rating
a like), a per-user 20 % holdout for users with >= 10 interactions (seed 0); all-item
ranking excluding training items; P@10, R@10, NDCG@10, MAP@10 and fit seconds.
Every model's hyper-parameters are chosen on a validation split carved from the
training data the same way (seed 1), with a small grid, then it is refitted on the
whole training part. With ``--peers`` the implicit library's ALS and BPR are tuned
on the same grids (implicit's alpha is latentrec's alpha + 1 on binary data: it
gives an observed cell confidence alpha * d instead of 1 + alpha * d).

Speed (``--peers``): ImplicitALS seconds per iteration against implicit's CPU ALS
(64 factors, 3 CG steps, same threads) on ml-100k and, with ``--scale``, on a
20M-interaction synthetic set of 138k users x 27k items; BPR epoch against
implicit's BPR; top-10 for all users with seen items excluded (users/s and peak
extra memory). Ratios are medians of alternating repeats measured in this run.

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/implicit_feedback.py --peers [--scale]

Writes the tables to stdout and learning curves (per-iteration history) to
benchmarks/results/implicit_curves_<dataset>.csv.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse
import itertools
import json
import os
import time

import numpy as np
import pandas as pd

import latentrec as lr
from latentrec import metrics
from latentrec.models.baselines import Popularity
from latentrec.models.ials import BPR, EASE, ImplicitALS

from _common import load_ml, markdown  # noqa: E402  (benchmarks/ is on sys.path)

RESULTS = Path(__file__).resolve().parent / "results"
THREADS = 2

ALS_GRID = {"n_factors": [64, 128], "regularization": [10.0, 50.0, 200.0], "alpha": [1.0, 5.0, 20.0]}
BPR_GRID = {"learning_rate": [0.01, 0.05], "regularization": [0.001, 0.01], "n_epochs": [50, 150]}
EASE_GRID = {"regularization": [50.0, 100.0, 250.0, 500.0, 1000.0]}
KNN_GRID = {"n_neighbors": [20, 50, 100], "weighting": ["none", "bm25"]}




# ------------------------------------------------------------------ data and protocol
def load(name: str) -> lr.Interactions:
    return load_ml(name).to_implicit()


def holdout(data, seed):
    try:
        from latentrec.split import user_holdout
    except ImportError:  # pragma: no cover - the splitter ships with latentrec
        user_holdout = None
    if user_holdout is not None:
        return tuple(user_holdout(data, test_size=0.2, min_interactions=10, random_state=seed))
    rng = np.random.default_rng(seed)
    counts = np.bincount(data.user_codes, minlength=data.n_users)
    key = rng.permutation(len(data))
    order = np.lexsort((key, data.user_codes))
    rank = np.arange(len(data)) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
    n_test = np.where(counts >= 10, np.clip(np.round(0.2 * counts), 1, counts - 1), 0)
    test = np.zeros(len(data), bool)
    test[order] = rank < n_test[data.user_codes[order]]
    return data.subset(~test), data.subset(test)


class Evaluator:
    """All-item top-10 for the users with held-out items, scored in the parent's item codes."""

    def __init__(self, train, test):
        self.train, self.test = train, test
        truth = test.to_csr()
        self.users = np.flatnonzero(np.diff(truth.indptr) > 0)
        self.truth = truth[self.users]
        self.user_ids = test.users.take(self.users)

    def score(self, rec_codes):
        res = metrics.ranking_metrics(rec_codes, self.truth, k=10)
        return {"P@10": res["precision"], "R@10": res["recall"], "NDCG@10": res["ndcg"], "MAP@10": res["map"]}

    def latentrec(self, model):
        ids, _ = model.recommend(self.user_ids, n=10, unknown="popular")
        ids = np.ma.filled(ids, ids.flat[0]) if np.ma.isMaskedArray(ids) else ids
        codes = self.train.items.codes(np.asarray(ids).ravel(), missing="ignore").reshape(ids.shape)
        return self.score(codes)

    def implicit(self, model, user_items):
        ids, _ = model.recommend(self.users, user_items[self.users], N=10, filter_already_liked_items=True)
        return self.score(np.where(ids < 0, -1, ids))


# ------------------------------------------------------------------ models
def grid(spec):
    keys = list(spec)
    for values in itertools.product(*(spec[k] for k in keys)):
        yield dict(zip(keys, values))


def latentrec_models():
    out = {
        "ImplicitALS": (lambda p: ImplicitALS(n_epochs=15, n_threads=THREADS, random_state=0, **p), ALS_GRID),
        "BPR": (lambda p: BPR(n_factors=64, n_threads=THREADS, random_state=0, **p), BPR_GRID),
        "EASE": (lambda p: EASE(**p), EASE_GRID),
        "Popularity": (lambda p: Popularity(), {}),
    }
    try:
        from latentrec.models.knn import ImplicitItemKNN

        out["ImplicitItemKNN"] = (lambda p: ImplicitItemKNN(**p), KNN_GRID)
    except ImportError:
        print("ImplicitItemKNN absent: skipped", file=sys.stderr)
    return out


def implicit_models():
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    def als(p):
        return AlternatingLeastSquares(factors=p["n_factors"], regularization=p["regularization"],
                                       alpha=p["alpha"] + 1.0, iterations=15, use_cg=True,
                                       num_threads=THREADS, random_state=0)

    def bpr(p):
        return BayesianPersonalizedRanking(factors=64, learning_rate=p["learning_rate"],
                                           regularization=p["regularization"], iterations=p["n_epochs"],
                                           num_threads=THREADS, random_state=0)

    return {"implicit ALS": (als, ALS_GRID), "implicit BPR": (bpr, BPR_GRID)}


def fit_latentrec(factory, params, train, eval_set=None):
    model = factory(params)
    t0 = time.perf_counter()
    model.fit(train, eval_set=eval_set)
    return model, time.perf_counter() - t0


def fit_implicit(factory, params, train):
    model = factory(params)
    user_items = train.to_csr().astype(np.float32)
    t0 = time.perf_counter()
    model.fit(user_items, show_progress=False)
    return model, time.perf_counter() - t0, user_items


def quality(name: str, peers: bool, only=None) -> pd.DataFrame:
    data = load(name)
    train, test = holdout(data, 0)
    fit_part, val = holdout(train, 1)
    ev_val, ev_test = Evaluator(fit_part, val), Evaluator(train, test)
    rows, curves = [], []
    for label, (factory, spec) in latentrec_models().items():
        if only and label not in only:
            continue
        best = max(grid(spec), key=lambda p: ev_val.latentrec(fit_latentrec(factory, p, fit_part)[0])["NDCG@10"])
        model, secs = fit_latentrec(factory, best, train)
        rows.append({"dataset": name, "library": "latentrec", "model": label, **ev_test.latentrec(model),
                     "fit_s": secs, "params": json.dumps(best)})
        if "n_epochs" not in model.get_params():  # closed form or counting: no learning curve
            continue
        hist = fit_latentrec(factory, best, train, eval_set=test)[0].history_frame()  # learning curve
        if len(hist):
            curves.append(hist.assign(model=label))
        print(f"  {name} {label}: {rows[-1]}", file=sys.stderr)
    if peers:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            for label, (factory, spec) in implicit_models().items():
                if only and label not in only:
                    continue

                def val_ndcg(p):
                    model, _, ui = fit_implicit(factory, p, fit_part)
                    return ev_val.implicit(model, ui)["NDCG@10"]

                best = max(grid(spec), key=val_ndcg)
                model, secs, ui = fit_implicit(factory, best, train)
                rows.append({"dataset": name, "library": "implicit 0.7", "model": label, **ev_test.implicit(model, ui),
                             "fit_s": secs, "params": json.dumps(best)})
                print(f"  {name} {label}: {rows[-1]}", file=sys.stderr)
    if curves:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"implicit_curves_{name}.csv"
        new = pd.concat(curves)
        if out.exists():  # keep the curves of models not rerun (e.g. with --models)
            old = pd.read_csv(out)
            new = pd.concat([old[~old.model.isin(set(new.model))], new])
        new.to_csv(out, index=False)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ speed
def synthetic_20m(seed=0, n_users=138_000, n_items=27_000, nnz=20_000_000):
    """Raw arrays shaped like ML-20M: long-tailed user activity and item popularity, distinct pairs."""
    rng = np.random.default_rng(seed)
    uw = rng.pareto(1.2, n_users) + 1.0
    uw = np.minimum(uw / uw.sum() * nnz, n_items / 8)  # no user wants a large share of the catalogue
    iw = 1.0 / (rng.permutation(n_items) + 1.0) ** 0.9
    ucdf, icdf = np.cumsum(uw / uw.sum()), np.cumsum(iw / iw.sum())
    keys = np.empty(0, np.int64)
    while len(keys) < nnz:
        m = int((nnz - len(keys)) * 1.3) + 1000
        u = np.minimum(np.searchsorted(ucdf, rng.random(m)), n_users - 1)
        i = np.minimum(np.searchsorted(icdf, rng.random(m)), n_items - 1)
        keys = np.sort(np.r_[keys, u.astype(np.int64) * n_items + i])  # np.unique is ~30x slower here
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    keys = rng.permutation(keys)[:nnz]
    u, i = (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)
    data = lr.Interactions(lr.Vocabulary(np.arange(n_users)), lr.Vocabulary(np.arange(n_items)), u, i,
                           np.ones(nnz, np.float32), name="synthetic-20M").compact()
    return data


def peak_extra_mb(fn):
    """(result, peak resident memory above the starting RSS in MB) — Linux /proc."""
    def read(key):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
        return float("nan")

    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    before = read("VmRSS")
    out = fn()
    return out, read("VmHWM") - before


def weighted_loss(X, Y, csr, conf_minus_1, reg):
    """sum_all c (p - x.y)^2 + reg (|X|^2 + |Y|^2) for binary data with constant c - 1 on observed cells."""
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    total = float(np.sum((X.T @ X) * (Y.T @ Y)))
    coo = csr.tocoo()
    for s in range(0, coo.nnz, 2_000_000):
        r, c = coo.row[s:s + 2_000_000], coo.col[s:s + 2_000_000]
        dots = np.einsum("ij,ij->i", X[r], Y[c])
        total += float(np.sum((1 + conf_minus_1) * (1 - dots) ** 2 - dots ** 2))
    return (total + reg * (np.square(X).sum() + np.square(Y).sum())) / (X.shape[0] * Y.shape[0] + conf_minus_1 * coo.nnz)


def speed(data, label, repeats, iters, do_topn, bpr_epochs, tasks=("als", "bpr", "topn")):
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits

    csr = data.to_csr()
    reg, alpha = 10.0, 1.0
    ours_t, theirs_t, rows = [], [], []
    ours = theirs = None
    for _ in range(repeats if ("als" in tasks or do_topn) else 0):  # alternate: share the noise
        ours = ImplicitALS(n_factors=64, regularization=reg, alpha=alpha, n_epochs=iters, cg_steps=3,
                           n_threads=THREADS, random_state=0).fit(data)
        ours_t.append(np.median([h["epoch_s"] for h in ours.history_]))
        with threadpool_limits(1, "blas"):
            theirs = AlternatingLeastSquares(factors=64, regularization=reg, alpha=alpha + 1.0, iterations=iters,
                                             use_cg=True, num_threads=THREADS, random_state=0)
            t0 = time.perf_counter()
            theirs.fit(csr, show_progress=False)
            theirs_t.append((time.perf_counter() - t0) / iters)
    if "als" in tasks:
        lo, li = weighted_loss(ours.user_factors_, ours.item_factors_, ours.seen_, alpha, reg), \
            weighted_loss(theirs.user_factors, theirs.item_factors, csr, alpha, reg)
        rows.append({"data": label, "task": f"ALS s/iter (64 f, 3 CG, {THREADS} thr)", "latentrec": np.median(ours_t),
                 "implicit": np.median(theirs_t), "ratio": np.median(ours_t) / np.median(theirs_t),
                     "note": f"loss after {iters} it: {lo:.5f} vs {li:.5f}"})
    b_ours, b_theirs = [], []
    for _ in range(repeats if "bpr" in tasks else 0):
        m = BPR(n_factors=64, n_epochs=bpr_epochs, n_threads=THREADS, random_state=0).fit(data)
        b_ours.append(np.median([h["epoch_s"] for h in m.history_]))
        with threadpool_limits(1, "blas"):
            p = BayesianPersonalizedRanking(factors=64, iterations=bpr_epochs, num_threads=THREADS, random_state=0)
            t0 = time.perf_counter()
            p.fit(csr, show_progress=False)
            b_theirs.append((time.perf_counter() - t0) / bpr_epochs)
    if b_ours:
        rows.append({"data": label, "task": f"BPR s/epoch (64 f, {THREADS} thr)", "latentrec": np.median(b_ours),
                     "implicit": np.median(b_theirs), "ratio": np.median(b_ours) / np.median(b_theirs), "note": ""})
    if do_topn and "topn" in tasks:
        users_ids = ours.users_.ids
        all_codes = np.arange(csr.shape[0])
        ours.recommend(users_ids[:1000], n=10)  # compile / warm
        t_o, t_t, mem_o, mem_t = [], [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _, mo = peak_extra_mb(lambda: ours.recommend(users_ids, n=10))
            t_o.append(time.perf_counter() - t0)
            mem_o.append(mo)
            with threadpool_limits(1, "blas"):
                t0 = time.perf_counter()
                _, mt = peak_extra_mb(lambda: theirs.recommend(all_codes, csr, N=10, filter_already_liked_items=True))
                t_t.append(time.perf_counter() - t0)
                mem_t.append(mt)
        n = len(users_ids)
        rows.append({"data": label, "task": f"top-10 all users, users/s ({THREADS} thr)",
                     "latentrec": n / np.median(t_o), "implicit": n / np.median(t_t),
                     "ratio": np.median(t_o) / np.median(t_t),
                     "note": f"peak RSS growth MB {np.median(mem_o):.0f} vs {np.median(mem_t):.0f}; latentrec's "
                             f"bound: {THREADS} x {ours._fused_block} x {csr.shape[1]} floats = "
                             f"{THREADS * ours._fused_block * csr.shape[1] * 4 / 2**20:.0f} MB + output"})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--peers", action="store_true", help="run implicit's ALS and BPR on the same split")
    ap.add_argument("--scale", action="store_true", help="speed on the 20M-interaction synthetic set")
    ap.add_argument("--no-quality", action="store_true", help="skip the ranking table")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed ratios")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="", help="only these models (labels, comma-separated)")
    ap.add_argument("--tasks", default="als,bpr,topn", help="speed tasks to run (comma-separated)")
    args = ap.parse_args(argv)
    os.environ.setdefault("LATENTREC_QUIET", "1")
    pd.set_option("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60)
    only = [m for m in args.models.split(",") if m]
    unknown = sorted(set(only) - set(latentrec_models()))
    if unknown:
        sys.exit(f"--models: unknown label(s) {unknown}; choose from {sorted(latentrec_models())}")
    if not args.no_quality:
        table = pd.concat([quality(n, args.peers, only) for n in args.datasets.split(",")], ignore_index=True)
        print("\n## Ranking quality (per-user 20% holdout, users >= 10 interactions, seed 0)\n")
        print(markdown(table))
        for name, part in table.groupby("dataset"):
            ours = part[part.library == "latentrec"]
            peer = part[part.library != "latentrec"]
            if len(peer) and "ImplicitALS" in set(ours.model) and "implicit ALS" in set(peer.model):
                als = ours[ours.model == "ImplicitALS"]["NDCG@10"].iloc[0]
                ials = peer[peer.model == "implicit ALS"]["NDCG@10"].iloc[0]
                print(f"\n{name}: ImplicitALS / implicit ALS NDCG@10 = {als / ials:.3f}; best latentrec "
                      f"({ours.loc[ours['NDCG@10'].idxmax(), 'model']}) / best peer = "
                      f"{ours['NDCG@10'].max() / peer['NDCG@10'].max():.3f}")
    if args.peers and not args.no_speed:
        tasks = tuple(args.tasks.split(","))
        rows = speed(load("ml-100k"), "ml-100k", args.repeats, 15, False, 20, tasks)
        if args.scale:
            t0 = time.perf_counter()
            big = synthetic_20m()
            print(f"\nsynthetic set: {big} built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            rows += speed(big, "synthetic 20M", max(1, args.repeats - 1), 3, True, 1, tasks)
        print("\n## Speed (ratios: latentrec / implicit, lower is faster; top-N ratio is time)\n")
        print(markdown(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
