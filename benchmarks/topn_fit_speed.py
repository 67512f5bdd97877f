"""Fit time of EDLAE, RP3beta and EASE against LensKit EASE on ml-latest-small (seed-0 training part).

Two alternating repeats, 1 BLAS thread in both processes; ratios are medians against LensKit
EASE measured in the same run. Also prints each model's test NDCG@10 at its defaults.

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/topn_fit_speed.py
"""
import sys, time, numpy as np
import scipy.linalg  # noqa: F401  (scipy's own OpenBLAS must be loaded before the limit below)
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from threadpoolctl import threadpool_info, threadpool_limits
import implicit_feedback as b
b.BLAS_THREADS = 1
from latentrec.models.linear import EDLAE
from latentrec.models import RP3beta
from latentrec.models import EASE
threadpool_limits(1, "blas")  # after every import: a BLAS loaded later would keep all its threads
assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas"), threadpool_info()
data = b.load("ml-latest-small"); train, test = b.holdout(data, 0); ev = b.Evaluator(train, test)
res = {}
for rep in range(2):
    for name, m in [("EDLAE", EDLAE()), ("RP3beta", RP3beta()), ("EASE", EASE(regularization=250.0))]:
        t0 = time.perf_counter(); m.fit(train); res.setdefault(name, []).append(time.perf_counter() - t0)
        if rep == 0: print(name, "NDCG@10", round(ev.latentrec(m)["NDCG@10"], 4), flush=True)
    (frame, secs), = b.lenskit_lists(__import__("os").environ.get("LENSKIT_PYTHON", "/work/venv-lenskit/bin/python"), train, ev.user_ids,
                                     [{"model": "ease", "params": {"regularization": 250.0}}])
    res.setdefault("LensKit EASE", []).append(secs)
    if rep == 0: print("LensKit EASE NDCG@10", round(ev.lists(frame)["NDCG@10"], 4), flush=True)
for k, v in res.items():
    print(k, "fit s", [round(x, 2) for x in v], "ratio to LensKit EASE (median)",
          round(np.median(v) / np.median(res["LensKit EASE"]), 2))
