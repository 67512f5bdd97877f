"""Sparse approximate EASE (SparseEASE) at scale: fit seconds and peak extra memory on ML-20M-shaped synthetic sets.

The sets are benchmarks/implicit_feedback.py's ``synthetic_20m`` (138k users, long-tailed
activity and popularity) with ``--items`` catalogue sizes (default 27k, as ML-20M, and 60k)
and ``--interactions`` rows (default 20M). For each size: SparseEASE's fit seconds and peak
resident memory above the starting RSS (``peak_extra_mb``, Linux /proc), the sizes of its
intermediate matrices, and whether dense EASE would fit in ``--budget-gb`` (its estimate,
``ease_memory_gb``; EASE refuses above its ``max_memory_gb``). ``--ease-max-items`` also fits
dense EASE where it is affordable (default: never) for a time and memory ratio in the same run.

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/sparse_ease_scale.py \
        --items 27000,60000 --interactions 20000000

Prints a table and writes benchmarks/results/sparse_ease_scale.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse
import json
import os
import time

import pandas as pd

from implicit_feedback import peak_extra_mb, synthetic_20m  # noqa: E402
from _common import markdown  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def run(n_items, nnz, n_users, params, threads, budget_gb, ease_max_items, seed=0):
    from latentrec.models.linear import EASE, ease_memory_gb
    from latentrec.models.linear.sparse_ease import SparseEASE, sparse_ease_memory_gb

    t0 = time.perf_counter()
    data = synthetic_20m(seed=seed, n_users=n_users, n_items=n_items, nnz=nnz)
    build = time.perf_counter() - t0
    print(f"{data}: built in {build:.1f}s", file=sys.stderr, flush=True)
    rows = []
    model = SparseEASE(n_threads=threads, **params)
    t0 = time.perf_counter()
    _, mb = peak_extra_mb(lambda: model.fit(data))
    secs = time.perf_counter() - t0
    rows.append({"items": data.n_items, "users": data.n_users, "interactions": len(data),
                 "model": f"SparseEASE ({model.solver})",
                 "fit_s": secs, "peak_extra_mb": mb,
                 "estimate_gb": sparse_ease_memory_gb(data.n_items, model.gram_neighbors,
                                                model.n_neighbors, model.block_size, threads, model.solver),
                 **{k: round(v, 1) for k, v in model.fit_info_.items()},
                 "dense_ease_estimate_gb": ease_memory_gb(data.n_items),
                 "dense_ease_fits_budget": bool(ease_memory_gb(data.n_items) <= budget_gb),
                 "params": json.dumps(params)})
    print(f"  SparseEASE {rows[-1]}", file=sys.stderr, flush=True)
    model = None  # free B before a dense EASE fit
    if data.n_items <= ease_max_items:
        ease = EASE(regularization=params.get("regularization", 250.0), max_memory_gb=budget_gb)
        t0 = time.perf_counter()
        _, mb = peak_extra_mb(lambda: ease.fit(data))
        secs = time.perf_counter() - t0
        rows.append({"items": data.n_items, "users": data.n_users, "interactions": len(data), "model": "EASE",
                     "fit_s": secs, "peak_extra_mb": mb, "estimate_gb": ease_memory_gb(data.n_items),
                     "dense_ease_estimate_gb": ease_memory_gb(data.n_items),
                     "dense_ease_fits_budget": bool(ease_memory_gb(data.n_items) <= budget_gb), "params": "{}"})
        print(f"  EASE {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", default="27000,60000", help="catalogue sizes (comma-separated)")
    ap.add_argument("--interactions", type=int, default=20_000_000)
    ap.add_argument("--users", type=int, default=138_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-gb", type=float, default=24.0, help="memory budget dense EASE is judged against")
    ap.add_argument("--ease-max-items", type=int, default=0, help="also fit dense EASE up to this many items")
    ap.add_argument("--params", default="{}", help="SparseEASE parameters as JSON, e.g. '{\"solver\": \"ldl\"}'  (defaults otherwise)")
    ap.add_argument("--out", default=str(RESULTS / "sparse_ease_scale.json"))
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    os.environ.setdefault("LATENTREC_QUIET", "1")
    params = json.loads(args.params)
    rows = []
    for n_items in (int(x) for x in args.items.split(",")):
        rows += run(n_items, args.interactions, args.users, params, args.threads, args.budget_gb,
                    args.ease_max_items)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print("\n## Sparse approximate EASE at scale (fit seconds, peak RSS growth)\n")
    print(markdown(table.drop(columns=["params"])))
    if len(table[table.model.str.startswith("SparseEASE")]) >= 2:
        part = table[table.model.str.startswith("SparseEASE")].sort_values("items")
        a, b = part.iloc[0], part.iloc[-1]
        print(f"\nSparseEASE {int(a['items'])} -> {int(b['items'])} items: fit time x{b.fit_s / a.fit_s:.2f}, "
              f"peak memory x{b.peak_extra_mb / max(a.peak_extra_mb, 1e-9):.2f} "
              f"(items x{b['items'] / a['items']:.2f})")


if __name__ == "__main__":
    main()
