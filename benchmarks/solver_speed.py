"""The exact ALS / ImplicitALS solves against an earlier version of the same kernels.

Issue 16 replaced the hand-written Cholesky (float32 normal matrix, non-positive
pivots patched under fastmath) with LAPACK's Cholesky on float64-accumulated
systems. This script times one half-sweep of ``kernels.als.als_sweep`` (explicit
ALS) and of ``kernels.ials.cholesky_sweep`` for the kernels of this checkout and
of an older one (``--old-src``, the ``src`` folder of any earlier commit, e.g.
``git archive d7b0093 src | tar -x -C /tmp/old``), on the same inputs, in one
process, alternating the two, and reports the ratio of the best times (the
machine may be shared; only ratios are reported).

    python benchmarks/solver_speed.py --old-src /tmp/old/src --out benchmarks/results/solver_speed.json
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np


def _old_kernels(src: Path):
    """Import the old checkout's kernels package under another name (its modules import only each other)."""
    folder = src / "latentrec" / "models" / "kernels"
    spec = importlib.util.spec_from_file_location("old_kernels", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["old_kernels"] = pkg
    try:
        spec.loader.exec_module(pkg)
    except ImportError:  # a newer __init__ importing the package: the submodules still load alone
        pass
    return importlib.import_module("old_kernels.als"), importlib.import_module("old_kernels.ials")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-src", type=Path, required=True, help="src folder of the version to compare with")
    ap.add_argument("--ratings", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)

    import latentrec as lr
    from latentrec._util import kernel_threads
    from latentrec._util import balanced_bounds
    from latentrec.models.kernels import als as new_als, ials as new_ials

    old_als, old_ials = _old_kernels(args.old_src)
    data = lr.synthetic_ratings(n_users=20000, n_items=5000, n_ratings=args.ratings, random_state=0)
    R = data.to_csr()
    R.sort_indices()
    ip, ix, rv = R.indptr.astype(np.int64), R.indices.astype(np.int32), R.data.astype(np.float32)
    rng = np.random.default_rng(0)

    def als_args(k):
        Y = rng.normal(0, 0.1, (R.shape[1], k)).astype(np.float32)
        return (ip, ix, rv, np.zeros((R.shape[0], k), np.float32), np.zeros(R.shape[0], np.float32), Y,
                np.zeros(R.shape[1], np.float32), np.float32(3.5), 0.1, 0.05, True,
                balanced_bounds(np.diff(ip) + 1, 8 * args.threads))

    def ials_args(k):
        Y = rng.normal(0, 0.1, (R.shape[1], k)).astype(np.float32)
        yty = Y.astype(np.float64).T @ Y.astype(np.float64)
        bounds = new_ials.cost_bounds(ip, k, 4 * args.threads)
        return (ip, ix, (rv * 40).astype(np.float32), (rv * 40 + 1).astype(np.float32),
                np.zeros((R.shape[0], k), np.float32), Y, yty + 50 * np.eye(k), yty, bounds,
                np.zeros(len(bounds) - 1))

    rows = []
    with kernel_threads(args.threads):
        for name, old, new, inputs in (("ALS half-sweep, 100 factors", old_als.als_sweep, new_als.als_sweep,
                                        als_args(100)),
                                       ("ImplicitALS cholesky half-sweep, 64 factors", old_ials.cholesky_sweep,
                                        new_ials.cholesky_sweep, ials_args(64))):
            old(*inputs), new(*inputs)  # compile
            times = {"old": [], "new": []}
            for _ in range(args.repeats):
                for label, fn in (("old", old), ("new", new)):
                    t0 = time.perf_counter()
                    fn(*inputs)
                    times[label].append(time.perf_counter() - t0)
            rows.append({"kernel": name, "ratio_new_over_old": min(times["new"]) / min(times["old"]),
                         "old_s": times["old"], "new_s": times["new"]})
    print(f"| kernel | new / old (best of {args.repeats}) |\n|---|---|")
    for row in rows:
        print(f"| {row['kernel']} | {row['ratio_new_over_old']:.2f} |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"ratings": args.ratings, "threads": args.threads, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
