"""Load times of every MovieLens release present, and the memory of a 25M-row Interactions.

    LATENTREC_DATA_HOME=../shared/datasets python benchmarks/load.py [--repeat 5] [--skip-25m]

For each release in the data home (plus ../shared/datasets/ml-latest-small-2016 when present) it
prints the median wall time of ``load_movielens`` over ``--repeat`` runs, next to two peers timed
in the same run on the same ratings file: ``pandas.read_csv`` of the ratings alone (no ids mapped,
no metadata, no validation: a lower bound) and Surprise's ``Dataset.load_from_file`` (a line-by-line
Python parser), as ratios. Then it builds a 25M-row explicit set with
``latentrec.synthetic_ratings(n_users=162_000, n_items=59_000, n_ratings=25_000_000)`` and prints
``Interactions.nbytes`` (codes, values, timestamps and id arrays).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

from latentrec.data.movielens import KNOWN_DATASETS, get_data_home, load_movielens


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def pandas_peer(folder: Path, fmt: str):
    if fmt == "100k":
        return lambda: pd.read_csv(folder / "u.data", sep="\t", header=None)
    if fmt == "dat":
        return lambda: pd.read_csv(folder / "ratings.dat", sep="::", header=None, engine="python")
    return lambda: pd.read_csv(folder / "ratings.csv")


def surprise_peer(folder: Path, fmt: str):
    try:
        from surprise import Dataset, Reader
    except ImportError:
        return None
    if fmt == "100k":
        reader, path = Reader("ml-100k"), folder / "u.data"
    elif fmt == "dat":
        reader, path = Reader("ml-1m"), folder / "ratings.dat"
    else:
        reader = Reader(line_format="user item rating timestamp", sep=",", skip_lines=1, rating_scale=(0.5, 5))
        path = folder / "ratings.csv"
    return lambda: Dataset.load_from_file(str(path), reader=reader)


def targets(home: Path):
    for info in KNOWN_DATASETS.values():
        folder = home / info.folder
        if (folder / info.ratings_file).is_file():
            yield info.name, folder, info.format
    extra = home / "ml-latest-small-2016"
    if (extra / "ratings.csv").is_file():
        yield extra.name, extra, "csv"


def bench_loads(home: Path, repeat: int) -> None:
    print(f"data home: {home}   (median of {repeat} runs; ratio = latentrec time / peer time)")
    print(f"{'dataset':<22}{'rows':>12}{'latentrec s':>13}{'pandas s':>10}{'ratio':>7}{'surprise s':>12}{'ratio':>7}")
    for name, folder, fmt in targets(home):
        kwargs = {"path": folder} if name not in KNOWN_DATASETS else {"name": name, "data_home": home,
                                                                      "download": False}
        data = load_movielens(**kwargs)  # warm the page cache once
        ours = median_time(lambda: load_movielens(**kwargs), repeat)
        pd_t = median_time(pandas_peer(folder, fmt), repeat)
        sp = surprise_peer(folder, fmt)
        sp_t = median_time(sp, max(1, min(repeat, 3))) if sp is not None and len(data) <= 2_000_000 else float("nan")
        print(f"{name:<22}{len(data):>12,}{ours:>13.3f}{pd_t:>10.3f}{ours / pd_t:>7.2f}{sp_t:>12.3f}"
              f"{ours / sp_t:>7.2f}")


def bench_25m() -> None:
    import latentrec

    t0 = time.perf_counter()
    data = latentrec.synthetic_ratings(n_users=162_000, n_items=59_000, n_ratings=25_000_000, random_state=0)
    build = time.perf_counter() - t0
    parts = {"user_codes": data.user_codes.nbytes, "item_codes": data.item_codes.nbytes,
             "values": data.values.nbytes, "timestamps": 0 if data.timestamps is None else data.timestamps.nbytes,
             "id arrays": data.users.ids.nbytes + data.items.ids.nbytes}
    print(f"\n25M-row synthetic Interactions (synthetic_ratings, built in {build:.1f} s): {data!r}")
    for k, v in parts.items():
        print(f"  {k:<12}{v / 2**20:>10.1f} MiB")
    print(f"  {'nbytes':<12}{data.nbytes / 2**20:>10.1f} MiB  ({data.nbytes / 2**30:.3f} GiB; target < 1 GiB)")
    t0 = time.perf_counter()
    csr = data.to_csr()
    print(f"  to_csr(): {time.perf_counter() - t0:.1f} s, "
          f"+{(csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes) / 2**20:.1f} MiB")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data-home", default=None)
    ap.add_argument("--skip-25m", action="store_true")
    args = ap.parse_args(argv)
    home = get_data_home(args.data_home)
    if not home.is_dir():
        print(f"no data home at {home}; set LATENTREC_DATA_HOME", file=sys.stderr)
    else:
        bench_loads(home, args.repeat)
    if not args.skip_25m:
        bench_25m()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LATENTREC_QUIET", "1")
    raise SystemExit(main())
