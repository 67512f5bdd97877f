"""What GNU OpenMP's wait policy costs numba's many short parallel regions (BayesianFM's sweep).

``import latentrec`` sets ``OMP_WAIT_POLICY=PASSIVE`` (issue 17, ``latentrec/_threads.py``):
an idle OpenMP thread sleeps at once instead of spinning, which torch needs on a machine
with other jobs. A sleeping thread has to be woken at the start of the next parallel
region; on a virtual machine whose idle vCPU halts, that takes long. BayesianFM's
sweep runs ~60 short regions (a pass over the rows per relation and factor, the draws
of large one-hot groups) separated by serial draws, so the wake-ups add up.

Each policy runs in a fresh interpreter (libgomp reads the policy once, when it loads):

* ``passive``: latentrec's default (spin count 0);
* ``spin 10k``: passive plus ``GOMP_SPINCOUNT=10000`` (libgomp then spins that long first);
* ``spin 300k``: ``GOMP_SPINCOUNT=300000``, GNU OpenMP's own default when nothing is set.

Per policy: (a) the cost of one parallel region (32 chunks of a small sum) followed by a
serial gap of 0, 20k or 200k square roots, on 1 and 2 threads, µs per region (best of
5); (b) a BayesianFM fit (ids + implicit feedback + day, rank 10, 60 samples) on 100k
synthetic ratings, seconds on 1 and 2 threads (best of 3), the same chain on both.
The policies run in ``--rounds`` interleaved rounds (the machine's speed drifts over minutes)
and each figure is the best over the rounds. Numbers move with the machine's load; only
ratios within one run mean anything.

    python benchmarks/omp_wakeup.py [--out /tmp/latentrec-bench/omp_wakeup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

POLICIES = {"passive": {}, "spin 10k": {"GOMP_SPINCOUNT": "10000"}, "spin 300k": {"GOMP_SPINCOUNT": "300000"}}
GAPS = (0, 20_000, 200_000)


def child() -> dict:
    import numba
    import numpy as np
    from numba import njit, prange

    import latentrec as lr
    from latentrec.models import BayesianFM

    @njit(parallel=True)
    def regions(m, work, gap):
        out = np.zeros(32)
        for step in range(m):
            for c in prange(32):
                s = 0.0
                for i in range(work):
                    s += np.sqrt(i + c + step)
                out[c] += s
            t = 0.0
            for i in range(gap):  # the serial part between two regions
                t += np.sqrt(i + step)
            out[0] += t
        return out

    regions(2, 10, 10)
    row = {"layer": numba.threading_layer()}
    for gap in GAPS:
        for th in (1, 2):
            numba.set_num_threads(th)
            best = min(_timed(regions, 300, 300, gap) for _ in range(5))
            row[f"region_us_gap{gap}_{th}t"] = best / 300 * 1e6
    frame = lr.synthetic_ratings(n_users=2000, n_items=1500, n_ratings=100_000, random_state=0).to_frame()
    frame["timestamp"] = np.arange(len(frame)) * 3_000
    data = lr.Interactions.from_frame(frame, timestamp="timestamp")
    features = ("implicit_user", "implicit_item", "day")
    BayesianFM(n_iter=3, n_burn_in=1, features=features).fit(data)  # compile
    for th in (1, 2):
        fit = lambda: BayesianFM(n_iter=60, n_burn_in=10, features=features, random_state=0,  # noqa: E731
                                 n_threads=th).fit(data)
        row[f"fit_s_{th}t"] = min(_timed(fit) for _ in range(3))
    return row


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/latentrec-bench/omp_wakeup.json")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every policy")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child()))
        return
    from _common import print_table

    runs = {name: [] for name in POLICIES}
    for _ in range(args.rounds):
        for name, env in POLICIES.items():
            environ = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
            environ.update(env)
            out = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True,
                                 env=environ, timeout=1800, check=True)
            run = {"load": os.getloadavg()[0], **json.loads(out.stdout.strip().splitlines()[-1])}
            runs[name].append(run)
            print(json.dumps({"policy": name, **run}), flush=True)
    rows = [{"policy": name, "layer": r[0]["layer"], "load": max(x["load"] for x in r),
             **{k: min(x[k] for x in r) for k in r[0] if k not in ("layer", "load")}} for name, r in runs.items()]
    print_table(rows, title="µs per parallel region (+ serial gap) and BayesianFM fit seconds, per wait policy")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "runs": runs}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
