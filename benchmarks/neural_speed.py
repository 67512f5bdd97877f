"""Neural training speed after a numba model in the same process (issue 17), ratios only.

(a) One process fits latentrec's numba BiasedMF FIRST (what the user reported: numba's
    ``omp`` threading layer loads GNU OpenMP before torch), then BiasedDotProduct with
    its defaults, on the same 1,000,000 synthetic ratings (20k users x 5k items; ml-1m's
    ratings are not in the data home), 50 factors, ``--threads`` threads for both:
    seconds per epoch (median of the epochs after the first) and their ratio. Target: <= 3x.
(b) The same measurement in a subprocess in the *old* state: numba's ``omp`` layer
    loads libgomp before latentrec is imported, so ``OMP_WAIT_POLICY`` comes too late
    and the runtime keeps its default (spinning), as when the policy was set inside
    ``fit``. Ratio before / after for BiasedDotProduct (and BiasedMF, to show the
    passive policy costs the numba model nothing). The runs alternate ``--repeats``
    times; the ratio depends on the load (spinning hurts when other jobs want the
    cores), so the load average is recorded beside it.
(c) NeuMF with its defaults on ml-100k as implicit feedback, the README ranking
    protocol (per-user 20 % holdout, users >= 10, seed 0; benchmarks/implicit_feedback.py):
    fit seconds and NDCG@10 through ``latentrec.metrics.measure_topn``. Targets: <= 30 s,
    NDCG@10 >= 0.4171 (the previous defaults' figure).

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/neural_speed.py [--out speed.json]
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and "--one=before" in sys.argv:
    # (b): load GNU OpenMP through numba's omp layer before latentrec sets the wait policy
    import numba
    import numpy as np

    numba.config.THREADING_LAYER = "omp"

    @numba.njit(parallel=True)
    def _touch(x):
        s = 0.0
        for j in numba.prange(len(x)):
            s += x[j]
        return s

    _touch(np.ones(64))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import latentrec as lr  # noqa: E402
from _common import load_ml, print_table  # noqa: E402
from latentrec import _threads, metrics  # noqa: E402
from latentrec.models import BiasedMF  # noqa: E402
from latentrec.models.neural import BiasedDotProduct, NeuMF  # noqa: E402
from latentrec.split import user_holdout  # noqa: E402

FACTORS = 50


def _epoch_s(model) -> float:
    return float(np.median([h["epoch_s"] for h in model.history_[1:]]))


def epochs(threads: int, n_ratings: int) -> dict:
    """(a) in this process: BiasedMF first, then BiasedDotProduct (defaults), seconds per epoch."""
    import numba

    data = lr.synthetic_ratings(n_users=20_000, n_items=5_000, n_ratings=n_ratings, random_state=0)
    mf = BiasedMF(n_factors=FACTORS, n_epochs=3, random_state=0, n_threads=threads).fit(data)
    bdp = BiasedDotProduct(n_factors=FACTORS, n_epochs=3, random_state=0, n_threads=threads, device="cpu").fit(data)
    return {"BiasedMF s/epoch": _epoch_s(mf), "BiasedDotProduct s/epoch": _epoch_s(bdp),
            "BiasedDotProduct batch": bdp.batch_size, "numba layer": numba.threading_layer(),
            "OpenMP loaded before latentrec": list(_threads.LOADED_BEFORE), "load": os.getloadavg()[0]}


def neumf(threads: int) -> dict:
    """(c) NeuMF with its defaults on the README ranking protocol."""
    data = load_ml("ml-100k").to_implicit()
    train, test = user_holdout(data, test_size=0.2, min_interactions=10, random_state=0)
    model = NeuMF(random_state=0, n_threads=threads, device="cpu")
    t0 = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - t0
    res = metrics.measure_topn(model, test, 10, metrics=["ndcg", "precision", "recall"])
    return {"fit s": seconds, "epochs": model.n_epochs, "ndcg@10": res["ndcg@10"], "p@10": res["precision@10"],
            "recall@10": res["recall@10"]}


def neumf_validation(threads: int, configs: list[str]) -> list[dict]:
    """(d) How NeuMF's defaults are chosen: on the TRAINING part of (c)'s split only, a per-user 20 %
    validation holdout (seed 1); each ``--neumf-config`` (``name=value;name=value``, NeuMF
    parameters on top of the defaults) is fitted with ``eval_set`` = that holdout and
    ``early_stopping_rounds=4``; best validation NDCG@10, its epoch, seconds per epoch."""
    data = load_ml("ml-100k").to_implicit()
    train, _ = user_holdout(data, test_size=0.2, min_interactions=10, random_state=0)
    fit_part, val = user_holdout(train, test_size=0.2, min_interactions=10, random_state=1)
    rows = []
    for config in configs:
        params = {}
        for item in filter(None, config.split(";")):
            name, value = item.split("=")
            params[name] = value if "," in value else (float(value) if any(c in value for c in ".e") else int(value))
        model = NeuMF(random_state=0, n_threads=threads, device="cpu", early_stopping_rounds=4, **params)
        t0 = time.perf_counter()
        model.fit(fit_part, eval_set=val)
        hist = model.history_
        rows.append({"config": config or "defaults", "fit s": time.perf_counter() - t0,
                     "s/epoch": float(np.mean([h["epoch_s"] for h in hist])), "best epoch": model.best_epoch_,
                     "val ndcg@10": max(h["val_ndcg"] for h in hist),
                     "curve": " ".join(f"{h['val_ndcg']:.3f}" for h in hist)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def one_run(args, state: str) -> dict:
    """(a) in a fresh interpreter, ``state`` "after" (as a user runs it) or "before" (the old state)."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY")  # set by latentrec in this process (main checks); the child decides afresh
    cmd = [sys.executable, __file__, f"--one={state}", "--threads", str(args.threads), "--ratings", str(args.ratings)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"the {state} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2, help="alternations of the after / before runs")
    parser.add_argument("--only", default="epochs,neumf")
    parser.add_argument("--neumf-config", action="append", default=[],
                        help="(d, --only neumf-validation) NeuMF parameters 'name=value;name=value', repeatable")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--one", choices=("after", "before"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a child of one_run: one measurement as JSON on stdout
        late = "numba's omp threading layer" in _threads.LOADED_BEFORE
        if late != (args.one == "before"):
            raise SystemExit(f"--one={args.one}: OpenMP loaded before latentrec: {_threads.LOADED_BEFORE}")
        print(json.dumps(epochs(args.threads, args.ratings)))
        return
    if "OMP_WAIT_POLICY" not in _threads.APPLIED:
        raise SystemExit("unset OMP_WAIT_POLICY: this benchmark compares latentrec's default with the runtime's")
    parts = set(args.only.split(","))
    out = {"threads": args.threads, "ratings": args.ratings}
    if "epochs" in parts:
        runs = []
        for repeat in range(args.repeats):
            # (a) in this very process first (numba model first, then torch), then fresh interpreters
            after = epochs(args.threads, args.ratings) if repeat == 0 else one_run(args, "after")
            before = one_run(args, "before")
            runs += [{"state": "after", "repeat": repeat, **after}, {"state": "before", "repeat": repeat, **before}]
            print(f"  repeat {repeat}: BiasedDotProduct epoch after {after['BiasedDotProduct s/epoch']:.2f} s, "
                  f"before {before['BiasedDotProduct s/epoch']:.2f} s", flush=True)
        for r in runs:
            r["x BiasedMF"] = r["BiasedDotProduct s/epoch"] / r["BiasedMF s/epoch"]
        print_table([{k: v for k, v in r.items() if k != "OpenMP loaded before latentrec"} for r in runs],
                    title=f"seconds per epoch, {args.ratings:,} synthetic ratings, {FACTORS} factors, "
                          f"{args.threads} threads, BiasedMF fitted first")
        med = {state: {key: float(np.median([r[key] for r in runs if r["state"] == state]))
                       for key in ("BiasedMF s/epoch", "BiasedDotProduct s/epoch", "x BiasedMF")}
               for state in ("after", "before")}
        a, b = med["after"], med["before"]
        bdp, mf = "BiasedDotProduct s/epoch", "BiasedMF s/epoch"
        ratios = {"BiasedDotProduct / BiasedMF epoch (after)": a["x BiasedMF"],
                  "before / after, BiasedDotProduct epoch": b[bdp] / a[bdp],
                  "before / after, BiasedMF epoch": b[mf] / a[mf]}
        print_table([{"ratio (medians over runs)": k, "value": v} for k, v in ratios.items()], title="ratios")
        out.update(epoch_runs=runs, ratios=ratios)
    if "neumf" in parts:
        res = neumf(args.threads)
        print_table([{"model": "NeuMF (defaults)", **res}], title="NeuMF on ml-100k implicit, per-user 20 % holdout")
        out["neumf"] = res
    if "neumf-validation" in parts:
        rows = neumf_validation(args.threads, args.neumf_config or [""])
        print_table(rows, title="NeuMF on a validation holdout of the training part (ml-100k implicit)")
        out["neumf_validation"] = rows
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
