"""Implicit-feedback benchmark: ranking quality on MovieLens, speed against the `implicit` library and LensKit.

Quality (always): on ml-100k and ml-latest-small as implicit feedback (every rating
a like), a per-user 20 % holdout for users with >= 10 interactions (``--seeds``,
default 0); all-item ranking excluding training items; P@10, R@10, NDCG@10, MAP@10,
R@20, R@50, NDCG@100, the Mult-VAE paper's Recall@20/@50 (RM@k: hits / min(k, |R_u|)) and
fit seconds, scored in the parent data's item codes so
test rows on items unseen in training stay in the denominators (``score_lists``,
the one scoring function). Every model's hyper-parameters are chosen on a
validation split carved from the training data the same way (seed + 1) by
NDCG@10, with a small grid, then it is refitted on the whole training part.
MultVAE is tuned with early stopping on that validation split and refitted for
its best epoch count (Liang et al.'s model selection). The Ensemble blends the
tuned EDLAE, RP3beta, ImplicitALS and MultVAE with weights fitted on its own
validation slice of the training part.

With ``--peers``: implicit's ALS (implicit's alpha is latentrec's alpha + 1 on
binary data), and, with ``--lenskit-python`` pointing at an interpreter that has
LensKit (Python >= 3.12.5), LensKit's EASE and ImplicitMF, run as a subprocess
(benchmarks/_lenskit_runner.py) that exchanges the rows and the recommendation
lists through files; without that interpreter the LensKit rows are skipped with a
message. Peers are tuned on the same validation split with grids of the same size.

Speed (``--peers``): ImplicitALS seconds per iteration against implicit's CPU ALS
(64 factors, 3 CG steps, same threads) on ml-100k and, with ``--scale``, on a
20M-interaction synthetic set of 138k users x 27k items; BPR epoch against
implicit's BPR; top-10 for all users with seen items excluded (users/s and peak
extra memory). Ratios are medians of alternating repeats measured in this run.
The quality table's fit seconds give EDLAE's and RP3beta's fit time against
LensKit EASE's in the same run. ``--vae-epoch`` times MultVAE epochs on ml-1m.

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/implicit_feedback.py --peers \
        --lenskit-python /work/venv-lenskit/bin/python --seeds 0,1,2 --no-speed

Writes the tables to stdout, the rows to benchmarks/results/implicit_quality.json and
learning curves (per-iteration history) to benchmarks/results/implicit_curves_<dataset>.csv.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse
import itertools
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd

import latentrec as lr
from latentrec import metrics
from latentrec.models.baselines import Popularity
from latentrec.models.ensemble import Ensemble
from latentrec.models import PureSVD, RP3beta
from latentrec.models import BPR, EASE, ImplicitALS
from latentrec.models.linear import DLAE, EDLAE
from latentrec.models.linear.sparse_ease import SparseEASE

from _common import figure, load_ml, markdown, write_figures  # noqa: E402  (benchmarks/ is on sys.path)

RESULTS = Path(__file__).resolve().parent / "results"
THREADS = 2
BLAS_THREADS = 1  # set from --blas-threads

ALS_GRID = {"n_factors": [64, 128], "regularization": [10.0, 50.0, 200.0], "alpha": [1.0, 5.0, 20.0]}
BPR_GRID = {"learning_rate": [0.01, 0.05], "regularization": [0.001, 0.01], "n_epochs": [50, 150]}
PURESVD_GRID = {"n_factors": [10, 15, 20, 30, 50, 75]}
EASE_GRID = {"regularization": [50.0, 100.0, 250.0, 500.0, 1000.0]}
KNN_GRID = {"n_neighbors": [20, 50, 100], "weighting": ["none", "bm25"]}
EDLAE_GRID = {"dropout": [0.33, 0.5, 0.67, 0.8], "regularization": [10.0, 100.0, 300.0]}
RP3_GRID = {"alpha": [0.8, 1.0], "beta": [0.3, 0.5, 0.7], "n_neighbors": [50, 200]}
# SparseEASE (neighbourhood-restricted EASE): EASE's lambda range, two neighbourhood sizes
SPARSE_EASE_GRID = {"regularization": [100.0, 250.0, 500.0, 1000.0], "n_neighbors": [100, 200]}
# Rendle et al. 2021: small unobserved weight, frequency-scaled lambda (nu = 1), more factors
ALS2021_GRID = {"n_factors": [128], "regularization": [0.002, 0.01, 0.05], "alpha": [0.0, 4.0],
                "unobserved_weight": [0.05, 0.3], "nu": [1.0]}
VAE_GRID = {"beta": [0.2, 0.5], "anneal_steps": [200, 1000, 200_000]}  # 1000: the default
# LensKit ImplicitMF: its weight is the confidence slope (like implicit's alpha - 1 = latentrec's alpha)
LK_IMF_GRID = {"n_factors": [64, 128], "regularization": [0.1, 1.0, 10.0], "weight": [5.0, 20.0, 40.0]}
#: list length scored (NDCG@100 needs 100)
N = 100




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


#: benchmark column -> (k, metric of latentrec.metrics). R@k is hits / |R_u|; the Mult-VAE paper's
#: strong-generalisation Recall@k (Liang et al. 2018, eq. 8) divides by min(k, |R_u|) instead: RM@20, RM@50
COLUMNS = {"P@10": (10, "precision"), "R@10": (10, "recall"), "NDCG@10": (10, "ndcg"), "MAP@10": (10, "map"),
           "R@20": (20, "recall"), "R@50": (50, "recall"), "NDCG@100": (100, "ndcg"),
           "RM@20": (20, "recall_capped"), "RM@50": (50, "recall_capped")}


def score_lists(lists, test):
    """The one scoring function: id-keyed top-100 lists of any library scored by latentrec's evaluation
    core (metrics.score_topn) against ``test``; every held-out row counts, cold items included."""
    out = {}
    for k in sorted({k for k, _ in COLUMNS.values()}):
        wanted = [m for c, (kk, m) in COLUMNS.items() if kk == k]
        out.update(metrics.score_topn(lists, test, k, metrics=wanted).values)
    return {col: out[f"{m}@{k}"] for col, (k, m) in COLUMNS.items()}


class Evaluator:
    """All-item top-100 for every user with held-out items; lists go to :func:`score_lists` as ids."""

    def __init__(self, train, test):
        self.train, self.test = train, test
        self.users = np.unique(test.user_codes)  # parent codes: the row numbers the implicit library sees
        self.user_ids = test.users.take(self.users)

    def latentrec(self, model):
        ids, _ = model.recommend(self.user_ids, n=N, unknown="popular")
        return score_lists((self.user_ids, ids), self.test)

    def implicit(self, model, user_items):
        codes, _ = model.recommend(self.users, user_items[self.users], N=N, filter_already_liked_items=True)
        ids = np.ma.masked_array(self.train.items.take(np.maximum(codes, 0)), mask=codes < 0)
        return score_lists((self.user_ids, ids), self.test)

    def lists(self, frame):
        """Score (user id, item id, rank) rows of another process (LensKit)."""
        return score_lists(frame[["user", "item", "rank"]], self.test)


# ------------------------------------------------------------------ models
def grid(spec):
    keys = list(spec)
    for values in itertools.product(*(spec[k] for k in keys)):
        yield dict(zip(keys, values))


def latentrec_models():
    try:
        from latentrec.models.neural import MultVAE
    except ImportError:  # pragma: no cover - the [neural] extra
        MultVAE = None
    out = {
        "ImplicitALS": (lambda p: ImplicitALS(n_epochs=15, n_threads=THREADS, random_state=0, **p), ALS_GRID),
        "ImplicitALS-2021": (lambda p: ImplicitALS(n_epochs=15, n_threads=THREADS, random_state=0, **p),
                                 ALS2021_GRID),
        "BPR": (lambda p: BPR(n_factors=64, n_threads=THREADS, random_state=0, **p), BPR_GRID),
        "EASE": (lambda p: EASE(**p), EASE_GRID),
        "EDLAE": (lambda p: EDLAE(**p), EDLAE_GRID),
        "DLAE": (lambda p: DLAE(**p), EDLAE_GRID),
        "RP3beta": (lambda p: RP3beta(**p), RP3_GRID),
        "PureSVD": (lambda p: PureSVD(random_state=0, **p), PURESVD_GRID),
        "SparseEASE": (lambda p: SparseEASE(n_threads=THREADS, **p), SPARSE_EASE_GRID),
        "Popularity": (lambda p: Popularity(), {}),
    }
    if MultVAE is not None:
        out["MultVAE"] = (lambda p: MultVAE(n_threads=THREADS, random_state=0, **{"n_epochs": 200, **p}), VAE_GRID)
    try:
        from latentrec.models import ImplicitItemKNN

        out["ImplicitItemKNN"] = (lambda p: ImplicitItemKNN(**p), KNN_GRID)
    except ImportError:
        print("ImplicitItemKNN absent: skipped", file=sys.stderr)
    out["Ensemble"] = (None, {})  # built from the tuned members in quality()
    return out


#: Ensemble members: benchmark label -> registry name (those tuned in this run are used)
ENSEMBLE_MEMBERS = {"EDLAE": "edlae", "RP3beta": "rp3beta", "ImplicitALS": "implicit-als", "MultVAE": "mult-vae"}
#: the fixed settings of a member that the benchmark's factory adds to the tuned grid values
MEMBER_FIXED = {"ImplicitALS": {"n_epochs": 15, "n_threads": THREADS},
                "MultVAE": {"n_threads": THREADS}}


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


def lenskit_lists(python, train, users, settings, n=N):
    """Run LensKit (another interpreter) on ``train``; per setting: (DataFrame of user,item,rank, fit s)."""
    with tempfile.TemporaryDirectory(prefix="latentrec-lenskit-") as tmp:
        tmp = Path(tmp)
        train.to_frame()[["user", "item"]].to_csv(tmp / "train.csv", index=False)
        pd.DataFrame({"user": users}).to_csv(tmp / "users.csv", index=False)
        job = {"train": str(tmp / "train.csv"), "users": str(tmp / "users.csv"), "n": n, "threads": THREADS,
               "blas_threads": BLAS_THREADS,
               "settings": settings, "out": str(tmp)}
        (tmp / "job.json").write_text(json.dumps(job))
        runner = Path(__file__).resolve().parent / "_lenskit_runner.py"
        proc = subprocess.run([python, str(runner), str(tmp / "job.json")], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"LensKit runner failed:\n{proc.stderr[-3000:]}")
        times = json.loads((tmp / "times.json").read_text())
        return [(pd.read_csv(tmp / f"recs_{s}.csv"), times[s]) for s in range(len(settings))]


def lenskit_ok(python) -> str | None:
    """None when ``python`` can import lenskit, else the reason it cannot."""
    if not python:
        return "no --lenskit-python given"
    try:
        proc = subprocess.run([python, "-c", "import lenskit; print(lenskit.__version__)"], capture_output=True,
                              text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} cannot run: {exc}"
    if proc.returncode != 0:
        return f"{python} cannot import lenskit: {proc.stderr.strip().splitlines()[-1:]}"
    return None


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


def tune_vae(factory, spec, fit_part, val, ev_val):
    """MultVAE: each setting trained with early stopping on ``val``; returns the best setting with
    its best epoch count as ``n_epochs``."""
    best, best_score = None, -np.inf
    for p in grid(spec):
        model = factory({**p, "early_stopping_rounds": 20}).fit(fit_part, eval_set=val)
        score = ev_val.latentrec(model)["NDCG@10"]
        if score > best_score:
            best, best_score = {**p, "n_epochs": int(getattr(model, "best_epoch_", model.n_epochs))}, score
    return best


def quality(name: str, peers: bool, only=None, seed=0, lenskit_python=None,
            lenskit_models=("ease", "implicit-mf")) -> pd.DataFrame:
    data = load(name)
    train, test = holdout(data, seed)
    fit_part, val = holdout(train, seed + 1)
    ev_val, ev_test = Evaluator(fit_part, val), Evaluator(train, test)
    rows, curves, tuned = [], [], {}
    base = {"dataset": name, "seed": seed}
    for label, (factory, spec) in latentrec_models().items():
        if (only and label not in only) or label == "Ensemble":
            continue
        if label == "MultVAE":
            best = tune_vae(factory, spec, fit_part, val, ev_val)
        else:
            best = max(grid(spec), key=lambda p: ev_val.latentrec(fit_latentrec(factory, p, fit_part)[0])["NDCG@10"])
        tuned[label] = best
        model, secs = fit_latentrec(factory, best, train)
        rows.append({**base, "library": "latentrec", "model": label, **ev_test.latentrec(model),
                     "fit_s": secs, "params": json.dumps(best)})
        print(f"  {name} seed {seed} {label}: {rows[-1]}", file=sys.stderr, flush=True)
        if "n_epochs" not in model.get_params() or seed != 0:  # closed form or counting: no learning curve
            continue
        # learning curve on the validation split carved from the training rows, never on the test part
        hist = fit_latentrec(factory, best, fit_part, eval_set=val)[0].history_frame()
        if len(hist):
            curves.append(hist.assign(model=label))
    members = {lab: reg for lab, reg in ENSEMBLE_MEMBERS.items() if lab in tuned}
    if (not only or "Ensemble" in only) and len(members) >= 2:
        params = {reg: {**MEMBER_FIXED.get(lab, {}), **tuned[lab]} for lab, reg in members.items()}
        ens = Ensemble(models=tuple(members.values()), model_params=params, random_state=seed)
        t0 = time.perf_counter()
        ens.fit(train)
        secs = time.perf_counter() - t0
        rows.append({**base, "library": "latentrec", "model": "Ensemble", **ev_test.latentrec(ens),
                     "fit_s": secs, "params": json.dumps({"members": list(members),
                                                          "weights": [round(float(w), 2) for w in ens.weights_]})})
        print(f"  {name} seed {seed} Ensemble: {rows[-1]}", file=sys.stderr, flush=True)
    if peers:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            for label, (factory, spec) in implicit_models().items():
                if label == "implicit BPR" and not (only and "implicit BPR" in only):
                    continue  # BPR trails far behind: run it only when asked for

                def val_ndcg(p):
                    model, _, ui = fit_implicit(factory, p, fit_part)
                    return ev_val.implicit(model, ui)["NDCG@10"]

                best = max(grid(spec), key=val_ndcg)
                model, secs, ui = fit_implicit(factory, best, train)
                rows.append({**base, "library": "implicit 0.7", "model": label, **ev_test.implicit(model, ui),
                             "fit_s": secs, "params": json.dumps(best)})
                print(f"  {name} seed {seed} {label}: {rows[-1]}", file=sys.stderr, flush=True)
        reason = lenskit_ok(lenskit_python)
        if reason:
            print(f"  LensKit rows skipped: {reason}", file=sys.stderr)
        else:
            for label, model, spec in (("LensKit EASE", "ease", EASE_GRID), ("LensKit ImplicitMF", "implicit-mf",
                                                                             LK_IMF_GRID)):
                if model not in lenskit_models:
                    continue
                settings = [{"model": model, "params": p} for p in grid(spec)]
                val_lists = lenskit_lists(lenskit_python, fit_part, ev_val.user_ids, settings)
                scores = [ev_val.lists(frame)["NDCG@10"] for frame, _ in val_lists]
                best = settings[int(np.argmax(scores))]
                frame, secs = lenskit_lists(lenskit_python, train, ev_test.user_ids, [best])[0]
                rows.append({**base, "library": "LensKit", "model": label, **ev_test.lists(frame),
                             "fit_s": secs, "params": json.dumps(best["params"])})
                print(f"  {name} seed {seed} {label}: {rows[-1]}", file=sys.stderr, flush=True)
    if curves:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"implicit_curves_{name}.csv"
        new = pd.concat(curves)
        if out.exists():  # keep the curves of models not rerun (e.g. with --models)
            old = pd.read_csv(out)
            new = pd.concat([old[~old.model.isin(set(new.model))], new])
        new.to_csv(out, index=False)
    return pd.DataFrame(rows)


def leads(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and seed: best latentrec / best peer NDCG@10, overall and for single models."""
    out = []
    for (name, seed), part in table.groupby(["dataset", "seed"]):
        ours = part[part.library == "latentrec"]
        peer = part[part.library != "latentrec"]
        if not len(peer) or not len(ours):
            continue
        single = ours[ours.model != "Ensemble"]
        best_peer = peer.loc[peer["NDCG@10"].idxmax()]
        out.append({"dataset": name, "seed": seed, "best peer": best_peer["model"],
                    "peer NDCG@10": best_peer["NDCG@10"],
                    "best latentrec": ours.loc[ours["NDCG@10"].idxmax(), "model"],
                    "lead": ours["NDCG@10"].max() / best_peer["NDCG@10"],
                    "best single": single.loc[single["NDCG@10"].idxmax(), "model"],
                    "single lead": single["NDCG@10"].max() / best_peer["NDCG@10"]})
    return pd.DataFrame(out)


def vae_epoch(repeats=3):
    """MultVAE seconds per epoch on ml-1m (1M interactions), paper architecture."""
    from latentrec.models.neural import MultVAE

    data = load("ml-1m")
    model = MultVAE(n_epochs=repeats, n_threads=THREADS, random_state=0).fit(data)
    return {"data": f"ml-1m ({len(data):,} interactions, {data.n_users} users x {data.n_items} items)",
            "task": f"MultVAE s/epoch (600-200-600, batch {model.batch_size}, {THREADS} thr)",
            "latentrec": float(np.median([h["epoch_s"] for h in model.history_])), "implicit": float("nan"),
            "ratio": float("nan"), "note": "no peer runs Mult-VAE here; seconds on this machine"}


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
    ap.add_argument("--seeds", default="0", help="holdout seeds (comma-separated); validation uses seed + 1")
    ap.add_argument("--lenskit-python", default=os.environ.get("LENSKIT_PYTHON"),
                    help="an interpreter with LensKit installed (Python >= 3.12.5) for the LensKit peers")
    ap.add_argument("--lenskit-models", default="ease,implicit-mf",
                    help="LensKit peers to run (ImplicitMF's 18-setting grid is the slowest part of a run)")
    ap.add_argument("--vae-epoch", action="store_true", help="MultVAE seconds per epoch on ml-1m")
    ap.add_argument("--figures", help="merge the first seed's ranking table into this JSON file "
                                      "(benchmarks/figures.py)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS threads of this process and of the LensKit runner (default 1: on a shared, "
                         "busy machine 2 OpenBLAS threads spin; a 1682^2 inverse took 8.5 s with 2 threads "
                         "and 0.47 s with 1 here)")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.blas_threads, "blas")
    global BLAS_THREADS
    BLAS_THREADS = args.blas_threads
    os.environ.setdefault("LATENTREC_QUIET", "1")
    pd.set_option("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60)
    only = [m for m in args.models.split(",") if m] or None
    known = set(latentrec_models()) | {"implicit BPR"}
    unknown = sorted(set(only or ()) - known)
    if unknown:
        sys.exit(f"--models: unknown label(s) {unknown}; choose from {sorted(known)}")
    seeds = [int(x) for x in args.seeds.split(",")]
    if not args.no_quality:
        table = pd.concat([quality(n, args.peers, only, seed, args.lenskit_python,
                                   tuple(args.lenskit_models.split(",")))
                           for seed in seeds for n in args.datasets.split(",")], ignore_index=True)
        RESULTS.mkdir(exist_ok=True)
        table.to_json(RESULTS / "implicit_quality.json", orient="records", indent=1)
        if args.figures:  # the README's ranking table: the first seed's figures
            figs = []
            for r in table[table.seed == seeds[0]].to_dict("records"):
                model = r["model"].removeprefix("implicit ").removeprefix("LensKit ")
                figs += [figure(r["dataset"], r["library"], model, "holdout", f"{m}@{k}", r[col])
                         for col, (k, m) in COLUMNS.items()]
            write_figures(args.figures, "ranking", figs)
        print(f"\n## Ranking quality (per-user 20% holdout, users >= 10 interactions, seeds {args.seeds})\n")
        print(markdown(table.drop(columns=["params"])))
        cols = ["NDCG@10", "R@20", "R@50", "NDCG@100", "RM@20", "RM@50", "fit_s"]
        summary = table.groupby(["dataset", "library", "model"], sort=False)[cols].agg(["mean", "std"])
        summary.columns = [f"{a} {b}" for a, b in summary.columns]
        print(f"\n## Mean and standard deviation over seeds {args.seeds}\n")
        print(markdown(summary.reset_index()))
        lead = leads(table)
        if len(lead):
            print("\n## Lead over the best peer (NDCG@10 ratio) per seed\n")
            print(markdown(lead))
            for name, part in lead.groupby("dataset"):
                print(f"{name}: lead {part['lead'].mean():.3f} (min {part['lead'].min():.3f}, max "
                      f"{part['lead'].max():.3f}); single-model lead {part['single lead'].mean():.3f} "
                      f"(min {part['single lead'].min():.3f}, max {part['single lead'].max():.3f})")
        for name, part in table[table.seed == seeds[0]].groupby("dataset"):
            lk = part[part.model == "LensKit EASE"]
            for label in ("EDLAE", "RP3beta"):
                ours = part[part.model == label]
                if len(lk) and len(ours):
                    print(f"{name} seed {seeds[0]}: {label} fit / LensKit EASE fit = "
                          f"{ours.fit_s.iloc[0] / lk.fit_s.iloc[0]:.2f}")
    if args.vae_epoch:
        print("\n## MultVAE epoch\n")
        print(markdown(pd.DataFrame([vae_epoch()])))
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
