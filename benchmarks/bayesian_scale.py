"""BayesianFM at scale: seconds per Gibbs sample and peak memory on a 20M-rating synthetic set.

    LATENTREC_DATA_HOME=... python benchmarks/bayesian_scale.py [--ratings 20000000] [--rank 32]
        [--samples 4] [--features plain,side] [--threads 2]

Issue 14 asks for seconds per sample and peak memory at rank 32 on 20M ratings, which must
fit in 24 GB. Each feature set runs in a fresh child process (138k users x 27k items, the
shape of ML-20M, timestamps on). The seconds per sample are the median of the samples'
``epoch_s`` in ``history_`` after the first (which includes numba's compilation); the
memory is the child's peak resident set (ru_maxrss: numba's own arrays are invisible to
tracemalloc), with the part before the fit (data generation) shown beside it. Prints a
table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, print_table  # noqa: E402

import latentrec as lr  # noqa: E402

FEATURES = {"plain": (), "side": ("implicit_user", "implicit_item")}


def one(args) -> dict:
    from latentrec.models import BayesianFM

    t0 = time.perf_counter()
    n_users, n_items = 138_000, 27_000
    scale = args.ratings / 20_000_000
    data = lr.synthetic_ratings(n_users=max(1000, int(n_users * scale ** 0.5)),
                                n_items=max(500, int(n_items * scale ** 0.5)), n_ratings=args.ratings,
                                rank=8, random_state=0)
    gen_s, before = time.perf_counter() - t0, peak_rss_mb()
    model = BayesianFM(n_factors=args.rank, n_iter=args.samples, n_burn_in=1, n_saved_samples=1,
                       features=FEATURES[args.one], n_threads=args.threads, random_state=0)
    t0 = time.perf_counter()
    model.fit(data)
    fit_s = time.perf_counter() - t0
    per_sample = [h["epoch_s"] for h in model.history_]
    return {"features": args.one, "ratings": len(data), "users": data.n_users, "items": data.n_items,
            "rank": args.rank, "threads": args.threads, "samples": len(per_sample),
            "s_per_sample": float(np.median(per_sample[1:] if len(per_sample) > 1 else per_sample)),
            "first_sample_s": per_sample[0], "fit_s": fit_s,
            "setup_s": fit_s - float(np.sum(per_sample)), "train_rmse": model.history_[-1].get("train_loss"),
            "peak_rss_gb": peak_rss_mb() / 1024, "rss_before_fit_gb": before / 1024, "generate_s": gen_s}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratings", type=int, default=20_000_000)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--samples", type=int, default=4, help="Gibbs samples drawn (the first includes compilation)")
    ap.add_argument("--features", default="plain,side", help="comma-separated: " + ", ".join(FEATURES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", choices=sorted(FEATURES), help=argparse.SUPPRESS)
    ap.add_argument("--out", default="/tmp/latentrec-bench/bayesian_scale.json")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(args)))
        return
    rows = []
    for name in args.features.split(","):
        cmd = [sys.executable, __file__, "--one", name, "--ratings", str(args.ratings), "--rank", str(args.rank),
               "--samples", str(args.samples), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print_table(rows, title=f"BayesianFM on {args.ratings:,} synthetic ratings, rank {args.rank}, "
                            f"{args.threads} threads")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
