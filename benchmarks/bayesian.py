"""Bayesian FM benchmark: latentrec's BayesianFM against myFM, same process, data, features, cores.

Both samplers get *identical* features, built once per fold from the training
part by ``latentrec.models.bayesian._features.build_design`` and handed to myFM
as its relation blocks (``myfm.RelationBlock``, one per relation, with myFM's
``group_shapes`` set to our prior groups: its docs' recommended grouped
setting). Rank 10, 300 samples, the first ``--burn-in`` discarded by both
(myFM's ``n_kept_samples = 300 - burn_in``). Predictions are clipped to the
rating scale for both; test rows whose user or item is not in the training part
get an empty entity in myFM and the documented fallback in latentrec.

Protocols (``--protocols``): ``u1-u5`` (ml-100k canonical splits), ``5fold``
(ml-100k, seed 0, as ``latentrec compare``), ``80/20`` (ml-latest-small, seed 0).
Feature sets (``--features``): ``rich`` = implicit_user, implicit_item, day
(Rendle et al. 2019's Bayesian timeSVD++ flipped), ``side`` = rich plus
user_attributes and item_attributes (ml-latest-small has no user table, so only
item_attributes there), ``sessions`` = side plus user_day (the (user, day) pair: timeSVD++'s
day-specific user terms), ``attributes`` = ids and the side tables only (for cold
start: no implicit feedback, which a user without ratings lacks) and ``plain`` =
ids only.

Times are fit + predict per fold, reported as the ratio latentrec / myFM within
this run (myFM's Gibbs sampler runs on one thread; latentrec on ``--threads``).
``--repeat N`` times each library N times, interleaved in ABBA order (a drift in the
machine's speed hits both), and reports the fastest run of each (a shared machine's
noise only adds time), with the ratio of each back-to-back pair and their median; the
RMSE does not depend on it (both are seeded).
Neither timed fit scores the test fold while sampling (until 2026-12-03 latentrec's
did, for a column of the all-samples RMSE that now equals its prediction: the
default keeps every sample within ``max_saved_mb``).
Numba compile time is excluded by a warm-up fit on a small slice.

``--tune``: the validation search behind the shipped defaults (``n_burn_in``,
``init_std``, ``n_saved_samples``): a 10 % validation part carved from u1.base
(seed 1), never the test fold.

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/bayesian.py --out /tmp/bfm.json
    python benchmarks/bayesian.py --protocols u1-u5 --features rich --quick
    python benchmarks/bayesian.py --protocols 80/20 --features side --repeat 3
    python benchmarks/bayesian.py --tune
    python benchmarks/bayesian.py --cold-start --features side plain
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_ml, print_table, protocol  # noqa: E402

import latentrec as lr  # noqa: E402
from latentrec.models.bayesian import BayesianFM  # noqa: E402
from latentrec.models.bayesian import _features as feat  # noqa: E402
from latentrec.models.bayesian.estimator import resolve_loss  # noqa: E402

FEATURES = {"plain": (), "rich": ("implicit_user", "implicit_item", "day"),
            "side": ("implicit_user", "implicit_item", "day", "user_attributes", "item_attributes"),
            "sessions": ("implicit_user", "implicit_item", "day", "user_day", "user_attributes", "item_attributes"),
            "attributes": ("user_attributes", "item_attributes")}


def features_for(name, data):
    """The presets of feature set ``name`` that ``data`` can feed (ml-latest-small has no user table)."""
    f = FEATURES[name]
    if data.user_metadata is None:
        f = tuple(x for x in f if x != "user_attributes")
    return f
PROTOCOLS = {"u1-u5": ("ml-100k", "u1-u5"), "5fold": ("ml-100k", "5fold"), "80/20": ("ml-latest-small", "80/20")}


def import_myfm():
    """myFM 0.4's __init__ imports pkg_resources (gone from setuptools >= 81) for a name it never uses;
    give it an inert stand-in when it is missing instead of pinning setuptools."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pkg_resources")
        stub.DistributionNotFound = type("DistributionNotFound", (Exception,), {})
        stub.get_distribution = lambda name: None
        sys.modules["pkg_resources"] = stub
    import myfm

    return myfm


def myfm_inputs(design, idx):
    """myFM's relation blocks for rows ``idx`` (entity index per relation; -1 = an empty entity)."""
    myfm = import_myfm()
    blocks = []
    for r in range(len(design.relations)):
        lo, hi = int(design.ent_start[r]), int(design.ent_start[r + 1])
        f_lo = int(design.g_start[design.rel_groups[r]])
        f_hi = int(design.g_start[design.rel_groups[r + 1]])
        m = sp.vstack([design.ef[lo:hi, f_lo:f_hi], sp.csr_matrix((1, f_hi - f_lo))], format="csr")
        codes = np.where(idx[:, r] >= 0, idx[:, r] - lo, hi - lo).astype(np.int64)
        blocks.append(myfm.RelationBlock(codes.tolist(), m))
    return sp.csr_matrix((len(idx), 0)), blocks


def test_index(design, model_users, model_items, test):
    """Entity index of test rows in the training design (-1 where the user/item is unknown)."""
    u = model_users.codes(test.users.take(test.user_codes), missing="ignore").astype(np.int64)
    i = model_items.codes(test.items.take(test.item_codes), missing="ignore").astype(np.int64)
    return feat.rows_index(design, u, i, test.timestamps)  # as BayesianFM's own eval rows


def run_myfm(train, test, features, *, rank, n_iter, burn_in, seed, loss="squared"):
    """myFM's regressor, or with ``loss="ordinal"`` its ordered probit (expected rating from its class
    probabilities over the distinct training values)."""
    myfm = import_myfm()
    t0 = time.perf_counter()
    tr = feat.add_side_only_entities(train.compact(), features)  # the same entities as BayesianFM's
    design, idx = feat.build_design(tr, features)
    X, rel = myfm_inputs(design, idx)
    kw = dict(X_rel=rel, n_iter=n_iter, n_kept_samples=n_iter - burn_in,
              group_shapes=np.diff(design.g_start).astype(int).tolist())
    Xt, relt = myfm_inputs(design, test_index(design, tr.users, tr.items, test))
    if resolve_loss(loss, tr.values) == "ordinal":
        levels, cls = np.unique(tr.values, return_inverse=True)
        fm = myfm.MyFMOrderedProbit(rank=rank, random_seed=seed).fit(X, cls, **kw)
        pred = fm.predict_proba(Xt, relt) @ levels
    else:
        fm = myfm.MyFMRegressor(rank=rank, random_seed=seed).fit(X, tr.values.astype(np.float64), **kw)
        pred = fm.predict(Xt, relt)
    pred = np.clip(pred, *train.rating_scale)
    return pred, time.perf_counter() - t0


def run_ours(train, test, features, *, rank, n_iter, burn_in, seed, threads, loss="squared", **extra):
    """Fit + predict, timed as myFM's: no eval_set (scoring the test fold after every sample, as
    an eval_set does, is work myFM's timed fit does not do)."""
    t0 = time.perf_counter()
    model = BayesianFM(n_factors=rank, n_iter=n_iter, n_burn_in=burn_in, features=features, random_state=seed,
                       n_threads=threads, loss=loss, **extra).fit(train)
    pred = model.predict(test)
    return pred, time.perf_counter() - t0, model


def rmse(y, p):
    return float(np.sqrt(np.mean((np.asarray(y, np.float64) - p) ** 2)))


def warm_up(threads):
    data = lr.synthetic_ratings(n_users=50, n_items=40, n_ratings=800, random_state=0)
    frame = data.to_frame()
    frame["timestamp"] = np.arange(len(frame)) * 40_000
    small = lr.Interactions.from_frame(frame, timestamp="timestamp")
    for f in (FEATURES["plain"], FEATURES["rich"] + ("user_day",)):  # fit and predict: every kernel compiled
        BayesianFM(n_iter=3, n_burn_in=1, features=f, n_threads=threads).fit(small).predict(small)


def compare(args) -> dict:
    warm_up(args.threads)
    rows = []
    for pname in args.protocols:
        dataset, proto = PROTOCOLS[pname]
        data = load_ml(dataset)
        for label, train, test in protocol(dataset, proto, quick=args.quick, data=data):
            if args.folds and label not in args.folds:
                continue
            for fname in args.features:
                f = features_for(fname, data)
                kw = dict(rank=args.rank, n_iter=args.n_iter, burn_in=args.burn_in, seed=args.seed, loss=args.loss)
                t_ours, t_my = [], []
                for rep in range(args.repeat):  # ABBA order: a drift in the machine's speed hits both
                    for who in (("ours", "myfm") if rep % 2 == 0 else ("myfm", "ours")):
                        if who == "ours":
                            p_ours, t, model = run_ours(train, test, f, threads=args.threads,
                                                        n_saved_samples=args.n_saved, **kw)
                            t_ours.append(t)
                        else:
                            p_my, t = run_myfm(train, test, f, **kw)
                            t_my.append(t)
                # the fastest of the repeats: the noise of a shared machine only ever adds time
                row = {"protocol": pname, "fold": label, "features": fname, "loss": model.loss_,
                       "latentrec": rmse(test.values, p_ours),
                       "myfm": rmse(test.values, p_my), "latentrec_s": min(t_ours), "myfm_s": min(t_my),
                       "time_ratio": min(t_ours) / min(t_my)}
                if args.repeat > 1:  # and the ratio of each pair run back to back, and their median
                    pairs = [a / b for a, b in zip(t_ours, t_my)]
                    row.update(latentrec_runs_s=t_ours, myfm_runs_s=t_my, pair_ratios=pairs,
                               pair_ratio_median=float(np.median(pairs)))
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = []
    for pname in args.protocols:
        for fname in args.features:
            sel = [r for r in rows if r["protocol"] == pname and r["features"] == fname]
            if sel:
                summary.append({"protocol": pname, "features": fname, "folds": len(sel),
                                **{k: float(np.mean([r[k] for r in sel])) for k in
                                   ("latentrec", "myfm", "latentrec_s", "myfm_s")},
                                "time_ratio_median": float(np.median([r["time_ratio"] for r in sel]))})
    if args.figures:  # the README's rating tables (benchmarks/figures.py): per-protocol means of each fold
        from importlib.metadata import version

        from _common import figure, write_figures

        label = {"side": "BayesianFM (side features)", "sessions": "BayesianFM (side features + user-day)",
                 "plain": "BayesianFM (ids only)", "rich": "BayesianFM (rich)", "attributes": "BayesianFM (attributes)"}
        figs = []
        for srow in summary:
            table = PROTOCOLS[srow["protocol"]][0]
            figs.append(figure(table, "latentrec", label[srow["features"]], srow["protocol"], "rmse", srow["latentrec"]))
            figs.append(figure(table, f"myFM {version('myfm')}", label[srow["features"]].replace("BayesianFM", "Bayesian FM"),
                               srow["protocol"], "rmse", srow["myfm"]))
        write_figures(args.figures, "bayesian", figs)
    print_table(rows, title="per fold (RMSE; seconds fit + predict)")
    print_table(summary, title=f"means (rank {args.rank}, {args.n_iter} samples, burn-in {args.burn_in}, "
                               f"latentrec on {args.threads} thread(s), myFM on 1)")
    return {"rows": rows, "summary": summary, "args": vars(args)}


def tune_features(args) -> dict:
    """The feature sets ``--features`` on five validation parts, 10 % of each of u1.base .. u5.base
    (seed 1; never the test folds), shipped defaults otherwise; with ``--peer`` myFM too (same blocks)."""
    from latentrec.split import random_split

    warm_up(args.threads)
    data = load_ml("ml-100k")
    rows = []
    for label, train, _ in protocol("ml-100k", "u1-u5", data=data):
        fit, val = random_split(train, 0.1, random_state=1)
        for fname in args.features:
            f = features_for(fname, data)
            kw = dict(rank=args.rank, n_iter=args.n_iter, burn_in=args.burn_in, seed=args.seed, loss=args.loss)
            p, t, _ = run_ours(fit, val, f, threads=args.threads, **kw)
            row = {"part": label, "features": fname, "seed": args.seed, "latentrec": rmse(val.values, p), "latentrec_s": t}
            if args.peer:
                p, t = run_myfm(fit, val, f, **kw)
                row.update(myfm=rmse(val.values, p), myfm_s=t)
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = [{"features": fname, "seed": args.seed, **{k: float(np.mean([r[k] for r in rows if r["features"] == fname]))
                                                        for k in ("latentrec", "myfm") if k in rows[0]}}
               for fname in args.features]
    print_table(summary, title="mean validation RMSE over 10 % of u1.base .. u5.base (seed 1)")
    return {"rows": rows, "summary": summary, "args": vars(args)}


def tune(args) -> dict:
    """Validation search on u1.base only: 10 % validation rows (seed 1)."""
    from latentrec.split import random_split

    if args.tune == "features":
        return tune_features(args)
    warm_up(args.threads)
    data = load_ml("ml-100k")
    _, train, _ = next(protocol("ml-100k", "u1-u5", data=data))
    fit, val = random_split(train, 0.1, random_state=1)
    rows = []
    base = dict(n_iter=args.n_iter, random_state=args.seed, n_threads=args.threads)
    if args.tune == "rank":  # the rank of the shipped default (n_factors)
        grid = [dict(n_factors=k) for k in (10, 20, 32, 50)]
    elif args.tune == "loss":  # the likelihood and the chain length (n_iter, n_saved_samples)
        grid = [dict(loss=loss, n_iter=n, n_saved_samples=s) for loss in ("squared", "ordinal")
                for n, s in ((300, 64), (1000, 64), (1000, 256))]
        del base["n_iter"]
    else:
        grid = [dict(n_burn_in=b, init_std=0.1) for b in (10, 20, 50)] + [dict(n_burn_in=20, init_std=0.3)]
        base["n_factors"] = args.rank
    for fname in args.features:
        for params in grid:
            t0 = time.perf_counter()
            model = BayesianFM(features=features_for(fname, data), **base, **params).fit(fit, eval_set=val)
            row = {"features": fname, **params, "val_rmse": model.history_[-1]["val_rmse"],
                   "val_rmse_predict": rmse(val.values, model.predict(val)), "fit_s": time.perf_counter() - t0}
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.tune != "defaults":
            continue
        # the saving scheme: the same chain (same seed), only the number of stored samples differs
        for n_saved in (16, 64):
            model = BayesianFM(features=features_for(fname, data), n_saved_samples=n_saved, **base).fit(fit, eval_set=val)
            row = {"features": fname, "n_saved_samples": n_saved, "val_rmse": rmse(val.values, model.predict(val)),
                   "val_rmse_all_kept": model.history_[-1]["val_rmse"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print_table(rows, title="validation RMSE on 10 % of u1.base (seed 1)")
    return {"rows": rows, "args": vars(args)}


def cold_start(args) -> dict:
    """Users (then items) held out entirely: 20 % of them (seed ``--seed``) lose every rating; the
    model is fitted on the other rows and measured on all rows of the held-out ones. BayesianFM knows
    them only through the side tables; "fallback" is the same fitted model asked with the id hidden
    (global mean + the known side's bias, what every latentrec model answers for an unknown id);
    myFM gets the same relation blocks (the held-out entities with their attributes)."""
    warm_up(args.threads)
    data = load_ml("ml-100k")
    rng = np.random.default_rng(args.seed)
    rows = []
    for side in ("user", "item"):
        codes = data.user_codes if side == "user" else data.item_codes
        n = data.n_users if side == "user" else data.n_items
        held = rng.choice(n, size=n // 5, replace=False)
        cold = np.isin(codes, held)
        train, test = data.subset(np.flatnonzero(~cold)), data.subset(np.flatnonzero(cold))
        for fname in args.features:
            f = features_for(fname, data)
            kw = dict(rank=args.rank, n_iter=args.n_iter, burn_in=args.burn_in, seed=args.seed, loss=args.loss)
            p_ours, t_ours, model = run_ours(train, test, f, threads=args.threads, n_saved_samples=args.n_saved, **kw)
            frame = test.to_frame()
            frame[side] = -1  # an id no model knows
            p_fallback = model.predict(frame)
            p_my, _ = run_myfm(train, test, f, **kw)
            row = {"held_out": f"{side}s", "features": fname, "test_rows": len(test),
                   "latentrec": rmse(test.values, p_ours), "myfm": rmse(test.values, p_my),
                   "fallback": rmse(test.values, p_fallback)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print_table(rows, title=f"cold start on ml-100k: 20 % of users / items held out entirely (seed {args.seed})")
    return {"rows": rows, "args": vars(args)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocols", nargs="+", default=["u1-u5", "5fold", "80/20"], choices=list(PROTOCOLS))
    ap.add_argument("--features", nargs="+", default=["side", "rich", "plain"], choices=list(FEATURES))
    ap.add_argument("--rank", type=int, default=BayesianFM().n_factors)
    ap.add_argument("--n-iter", type=int, default=BayesianFM().n_iter)
    ap.add_argument("--n-saved", type=int, default=BayesianFM().n_saved_samples,
                    help="BayesianFM's n_saved_samples (what predict averages)")
    ap.add_argument("--loss", default=BayesianFM().loss, choices=["auto", "squared", "ordinal"],
                    help="both libraries' likelihood: Gaussian, ordered probit, or BayesianFM's auto rule")
    ap.add_argument("--burn-in", type=int, default=BayesianFM().n_burn_in)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1,
                    help="time each library this many times, interleaved; report the fastest of each")
    ap.add_argument("--quick", action="store_true", help="first fold of each protocol only")
    ap.add_argument("--folds", nargs="+", help="only these fold labels (u1 ... u5, fold1 ..., holdout)")
    ap.add_argument("--tune", nargs="?", const="defaults", choices=["defaults", "rank", "loss", "features"],
                    help="validation search on u1.base: burn-in/init/saved samples (default), the rank, "
                         "or the likelihood and chain length; 'features': the --features sets on 10 %% of "
                         "each of u1.base .. u5.base")
    ap.add_argument("--peer", action="store_true", help="with --tune features: myFM on the same parts too")
    ap.add_argument("--cold-start", action="store_true",
                    help="users / items held out entirely, against the bias fallback (ml-100k)")
    ap.add_argument("--out", default="/tmp/latentrec-bench/bayesian.json")
    ap.add_argument("--figures", help="merge the RMSE means into this JSON file (benchmarks/figures.py)")
    args = ap.parse_args(argv)
    result = tune(args) if args.tune else cold_start(args) if args.cold_start else compare(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
