"""Wall time of the README's everything-run: `latentrec compare ml-100k --models all --protocol 5fold --report DIR`.

Runs the command as a user would (a fresh process, the installed CLI, every core),
times it, and prints each model's share of the run from the results file: the sum
of its fit and predict seconds over the folds. With ``--baseline FILE`` (the
results JSON of an earlier run) it also prints each model's change of its main
metric, so a faster run can be shown to give the same table (issue 17's target:
at most 3 minutes on 2 cores, RMSE within 0.002 and NDCG@10 within 0.005).

    python benchmarks/compare_all.py --out benchmarks/results/compare_all.json
    python benchmarks/compare_all.py --baseline old/results.json --extra-args --n-jobs 1

Timings are of this machine at the time of the run; the JSON keeps the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_home  # noqa: E402

MAIN = {"explicit": "rmse", "implicit": "ndcg@10"}
TOLERANCE = {"rmse": 0.002, "ndcg@10": 0.005}


def run(dataset: str, protocol: str, extra: list[str], keep: Path | None) -> dict:
    out = keep or Path(tempfile.mkdtemp(prefix="latentrec-compare-all-"))
    cmd = [sys.executable, "-m", "latentrec", "compare", dataset, "--models", "all", "--protocol", protocol,
           "--report", str(out / "report"), *extra]
    env = {**os.environ, "LATENTREC_DATA_HOME": str(data_home())}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    doc = json.loads((out / "report" / "results.json").read_text())
    if keep is None:
        shutil.rmtree(out, ignore_errors=True)
    return {"command": " ".join(["latentrec", *cmd[3:]]), "wall_s": wall, "load_before": load,
            "not_run": doc.get("skipped_models", []), "results": doc["results"]}


def per_model(results: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(results)
    main = frame[frame["metric"].isin(MAIN.values())]
    times = frame.drop_duplicates(["model", "fold"]).groupby("model")[["fit_s", "predict_s"]].sum()
    value = main.groupby(["model", "metric"])["value"].mean().reset_index().set_index("model")
    return value.join(times).sort_values("fit_s", ascending=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--protocol", default="5fold")
    ap.add_argument("--baseline", type=Path, help="results JSON of an earlier run to compare the table with")
    ap.add_argument("--keep", type=Path, help="keep the report and results in this folder")
    ap.add_argument("--out", type=Path, help="write the figures here (JSON)")
    ap.add_argument("--extra-args", nargs=argparse.REMAINDER, default=[], help="more compare arguments")
    args = ap.parse_args(argv)
    record = run(args.dataset, args.protocol, args.extra_args, args.keep)
    table = per_model(record["results"])
    if args.baseline:
        base = per_model(json.loads(args.baseline.read_text())["results"])
        table["baseline"] = base["value"].reindex(table.index)
        table["delta"] = table["value"] - table["baseline"]
        worse = [m for m, r in table.iterrows() if pd.notna(r["delta"]) and
                 (r["delta"] if r["metric"] == "rmse" else -r["delta"]) > TOLERANCE[r["metric"]]]
        record["worse_than_baseline"] = worse
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\n{record['command']}: {record['wall_s']:.1f} s wall (load average {record['load_before']:.1f} "
          f"before the run); not run: {', '.join(record['not_run']) or 'none'}")
    if args.baseline:
        print("worse than the baseline beyond tolerance: " + (", ".join(record["worse_than_baseline"]) or "none"))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record["per_model"] = json.loads(table.reset_index().to_json(orient="records"))
        args.out.write_text(json.dumps(record, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
