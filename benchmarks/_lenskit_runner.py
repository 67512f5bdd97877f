"""Run LensKit top-N models for benchmarks/implicit_feedback.py in LensKit's own interpreter.

LensKit needs Python >= 3.12.5, so the benchmark runs this script as a subprocess
with ``--lenskit-python`` and exchanges data through files (this script never
imports latentrec):

    python _lenskit_runner.py JOB.json

JOB.json: ``{"train": CSV of user,item; "users": CSV of user; "n": list length;
"threads": int; "blas_threads": int; "settings": [{"model": "ease" | "implicit-mf", "params": {...}}, ...];
"out": folder}``. For setting ``s`` it fits the LensKit pipeline on the training
rows the way LensKit's docs recommend (``topn_pipeline(scorer, n=n)``, whose
candidate selector excludes the user's training items), writes the top-n lists of
the given users to ``OUT/recs_s.csv`` (user,item,rank) and the fit seconds to
``OUT/times.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    threads, blas = str(job.get("threads", 2)), str(job.get("blas_threads", job.get("threads", 2)))
    for var in ("LK_NUM_PROCS", "LK_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # same BLAS threads as latentrec
        os.environ.setdefault(var, blas)
    import pandas as pd
    from lenskit.als import ImplicitMFScorer
    from lenskit.batch import recommend
    from lenskit.data import from_interactions_df
    from lenskit.knn import EASEScorer
    from lenskit.pipeline import topn_pipeline

    train = pd.read_csv(job["train"])
    users = pd.read_csv(job["users"])["user"].tolist()
    ds = from_interactions_df(train, user_col="user", item_col="item")
    out = Path(job["out"])
    times = []
    for s, setting in enumerate(job["settings"]):
        p = setting["params"]
        if setting["model"] == "ease":
            scorer = EASEScorer(regularization=float(p["regularization"]))
        elif setting["model"] == "implicit-mf":
            scorer = ImplicitMFScorer(embedding_size=int(p["n_factors"]), regularization=float(p["regularization"]),
                                      weight=float(p["weight"]), epochs=int(p.get("epochs", 10)))
        else:
            sys.exit(f"unknown LensKit model {setting['model']!r}")
        pipe = topn_pipeline(scorer, n=int(job["n"]))
        t0 = time.perf_counter()
        pipe.train(ds)
        times.append(time.perf_counter() - t0)
        recs = recommend(pipe, users, n=int(job["n"]), n_jobs=1).to_df()
        recs = recs.rename(columns={"user_id": "user", "item_id": "item"})
        recs[["user", "item", "rank"]].to_csv(out / f"recs_{s}.csv", index=False)
    (out / "times.json").write_text(json.dumps(times))


if __name__ == "__main__":
    main(sys.argv[1])
