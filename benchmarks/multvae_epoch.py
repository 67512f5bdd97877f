"""MultVAE's training epoch on 1M interactions (issue 15 asks for the figure).

Synthetic implicit feedback shaped like ml-1m (6,040 users, 3,706 items, 1,000,000
distinct pairs, long-tailed), MultVAE at its defaults. An epoch's time is the
difference of a fit of 1 + ``--epochs`` epochs and a fit of 1 epoch, divided by
``--epochs``, so set-up (the user x item matrix, the network) is not counted.

    python benchmarks/multvae_epoch.py --out benchmarks/results/multvae_epoch.json

Seconds are this machine's at the time of the run; the JSON keeps the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import latentrec as lr
from latentrec.models import MultVAE


def fit_seconds(data, n_epochs: int, threads: int) -> float:
    model = MultVAE(n_epochs=n_epochs, n_threads=threads, random_state=0)
    t0 = time.perf_counter()
    model.fit(data)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=6040)
    ap.add_argument("--items", type=int, default=3706)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--epochs", type=int, default=3, help="epochs timed beyond the first")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    data = lr.synthetic_implicit(n_users=args.users, n_items=args.items, n_interactions=args.interactions,
                                 random_state=0)
    load = os.getloadavg()[0]
    one = fit_seconds(data, 1, args.threads)
    more = fit_seconds(data, 1 + args.epochs, args.threads)
    epoch = (more - one) / args.epochs
    record = {"users": data.n_users, "items": data.n_items, "interactions": len(data), "epoch_s": epoch,
              "fit_1_epoch_s": one, f"fit_{1 + args.epochs}_epochs_s": more, "threads": args.threads,
              "load_before": load}
    print(f"MultVAE (defaults) on {len(data):,} interactions, {data.n_users:,} users x {data.n_items:,} items: "
          f"{epoch:.2f} s per epoch (fits of 1 and {1 + args.epochs} epochs: {one:.1f} s, {more:.1f} s; "
          f"load average {load:.1f} before)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
