"""Run many models over one evaluation protocol and collect a tidy results table.

:func:`evaluate` splits the data into folds (see :data:`PROTOCOLS`), fits a fresh
clone of every model on the training part of every fold only, and measures it on
the test part:

* explicit models get rating metrics (``rmse``, ``mae``, ...) from ``predict``;
* implicit models get ranking metrics at ``k`` (``precision@10``, ``recall@10``,
  ``ndcg@10``, ``map@10``) from their top-k lists, seen training items excluded.
  When the data are explicit ratings, ranking models are fitted and measured on
  ``Interactions.to_implicit(implicit_threshold)`` of each fold: every rating (or
  every rating >= the threshold) is one positive interaction.

The test part of a fold never reaches ``fit``: each model is cloned per fold
(:func:`sklearn.base.clone`) and fitted on the training Interactions alone, then
measured by the one evaluation core (:func:`latentrec.metrics.measure_ratings`,
:func:`latentrec.metrics.measure_topn`): every held-out row counts, cold users and
items included. Learning curves come from a separate fit on fold 0's training rows
less a validation slice (:func:`curve_split`), measured on that slice: no test
data is ever shown to a model during training.

:func:`summarize` turns the tidy table into one row per model (mean ± std over
folds), sorted by the main metric with baselines marked.

The module itself is callable: ``lr.evaluate(models, data, protocol)`` is
``lr.evaluate.evaluate(models, data, protocol)``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import types
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from . import metrics as _metrics
from . import registry
from . import split as _split
from ._util import atomic_write_text
from .data.interactions import Interactions
from .errors import DataError, ModelError

#: protocol name -> description (``Nfold`` works for any N >= 2)
PROTOCOLS = {
    "5fold": "5-fold cross-validation over random rows (split.kfold)",
    "holdout": "one random 80/20 split of the rows (split.random_split)",
    "u1-u5": "the five predefined ml-100k folds u1.base/u1.test ... u5 (ml-100k only)",
    "user-holdout": "20% of each user's rows to test, users with >= 5 rows (split.user_holdout)",
    "leave-last-out": "each user's latest interaction to test (split.leave_last_out)",
    "temporal": "the latest 20% of rows by time to test (split.temporal_split)",
}
RATING_METRICS = _metrics.RATING_METRICS
RANKING_METRICS = (*_metrics.RANKING_METRICS, "coverage")
DEFAULT_METRICS = {"explicit": ("rmse", "mae"), "implicit": ("precision", "recall", "ndcg", "map")}
#: explicit models run by default next to the baselines (when importable)
MAIN_EXPLICIT = ("biased-mf", "als", "svdpp", "truncated-svd", "user-knn", "bayesian-fm")
MAIN_IMPLICIT = ("implicit-als", "bpr")
#: strong neighbourhood / linear models every default comparison runs beside the baselines; they are
#: compared as models, not marked as baselines (only the registry's baselines group is)
DEFAULT_REFERENCE = ("item-knn", "implicit-item-knn", "ease")


# ---------------------------------------------------------------- folds
def make_folds(data: Interactions, protocol="5fold", *, random_state=0, test_size: float = 0.2,
               data_home=None) -> list[tuple[Interactions, Interactions]]:
    """The (train, test) pairs of ``protocol`` (a name from :data:`PROTOCOLS` or a list of pairs)."""
    if not isinstance(protocol, str):
        folds = list(protocol)
        if not folds or not all(isinstance(f, tuple) and len(f) == 2 for f in folds):
            raise DataError("protocol must be a protocol name or a list of (train, test) Interactions pairs")
        return folds
    name = check_protocol(protocol)
    m = re.fullmatch(r"(\d+)fold", name)
    if m:
        n = int(m.group(1))
        if n < 2:
            raise DataError(f"a k-fold protocol needs at least 2 folds, got {protocol!r}")
        return list(_need("kfold")(data, n, random_state=random_state))
    if name == "holdout":
        return [_split.random_split(data, test_size, random_state=random_state)]
    if name == "user-holdout":
        return [_need("user_holdout")(data, test_size, 5, random_state=random_state)]
    if name == "leave-last-out":
        return [_need("leave_last_out")(data)]
    if name == "temporal":
        return [_need("temporal_split")(data, test_size)]
    return _ml100k_folds(data, data_home)  # u1-u5


def check_protocol(protocol: str) -> str:
    """The protocol name in its one spelling (a :data:`PROTOCOLS` key or ``Nfold``), else a DataError
    that suggests the closest name."""
    name = str(protocol).strip().lower()
    if name in PROTOCOLS or re.fullmatch(r"\d+fold", name):
        return name
    from ._util import did_you_mean

    m = re.fullmatch(r"(\d+)[-_ ]?folds?", name)
    hint = f" (did you mean '{m.group(1)}fold'?)" if m else did_you_mean(name, PROTOCOLS)
    raise DataError(f"unknown protocol {protocol!r}{hint}; choose one of {', '.join(PROTOCOLS)} "
                    "(or Nfold for any N >= 2)")


def _need(name: str):
    fn = getattr(_split, name, None)
    if fn is None:
        raise DataError(f"this latentrec build has no split.{name} yet; use protocol 'holdout' instead")
    return fn


def _ml100k_folds(data: Interactions, data_home=None):
    """ml-100k's u1..u5: test rows are those listed in uN.test, train the rest of ``data``."""
    import os

    homes = [Path(p) for p in (data_home, os.environ.get("LATENTREC_DATA_HOME")) if p]
    try:
        from .data.movielens import get_data_home

        homes.append(get_data_home(data_home))
    except ImportError:  # pragma: no cover - the catalogue module is part of the package
        pass
    if data.name and Path(str(data.name)).is_dir():
        homes.insert(0, Path(str(data.name)).parent)
    folder = next((h / "ml-100k" for h in homes if (h / "ml-100k" / "u1.test").is_file()), None)
    if folder is None:
        raise DataError("protocol 'u1-u5' needs the ml-100k files u1.test ... u5.test in "
                        "<data home>/ml-100k (set LATENTREC_DATA_HOME)")
    key = data.users.take(data.user_codes).astype(np.int64) * 100_000 + data.items.take(data.item_codes).astype(np.int64)
    folds = []
    for n in range(1, 6):
        test = pd.read_csv(folder / f"u{n}.test", sep="\t", header=None, usecols=[0, 1], engine="c")
        tkey = test[0].to_numpy(np.int64) * 100_000 + test[1].to_numpy(np.int64)
        mask = np.isin(key, tkey)
        if mask.sum() != len(tkey):
            raise DataError(f"{folder / f'u{n}.test'}: {len(tkey) - int(mask.sum())} test rows are not in the data; "
                            "protocol 'u1-u5' only applies to the full ml-100k")
        folds.append((data.subset(~mask), data.subset(mask)))
    return folds


# ---------------------------------------------------------------- models
def default_models(task: str = "explicit") -> list[str]:
    """Baselines of both tasks, :data:`DEFAULT_REFERENCE` and the main models of ``task`` that import
    in this install."""
    main = MAIN_EXPLICIT if task == "explicit" else MAIN_IMPLICIT
    names = registry.expand("baselines") + [*DEFAULT_REFERENCE, *main]
    return [n for n in names if registry.available(n)]


_GROUPS = ("all", "baselines", "explicit", "implicit")


def resolve_models(models, task: str = "explicit", skipped: list | None = None) -> dict:
    """Turn a spec (None, "all", "a,b", names, estimators, or a dict) into {name: estimator}.

    Models named one by one must import; members of a group (``all``, ``baselines``,
    ``explicit``, ``implicit``) that do not (a missing extra, a model not in this
    build) are left out and appended to ``skipped`` as ``"name (reason)"``.
    """
    if models is None:
        models = default_models(task)
    elif isinstance(models, str):
        names: list[str] = []
        for token in (t.strip().lower() for t in models.split(",")):
            if token in _GROUPS:
                for n in registry.expand(token):
                    if registry.available(n):
                        names.append(n)
                    elif skipped is not None:
                        extra = registry.get(n).extra
                        skipped.append(f"{n} (needs latentrec[{extra}])" if extra else f"{n} (not importable)")
            elif token:
                names.append(token)
        models = list(dict.fromkeys(names))
    if isinstance(models, dict):
        return dict(models)
    if not isinstance(models, (list, tuple)):
        models = [models]
    out: dict = {}
    for m in models:
        if isinstance(m, str):
            if not registry.available(m):
                entry = registry.get(m)
                hint = f" (install latentrec[{entry.extra}])" if entry.extra else " (not in this build yet)"
                raise ModelError(f"model {m!r} cannot be imported{hint}")
            name, est = registry.get(m).name, registry.create(m)
        else:
            name, est = type(m).__name__, m
        base, n = name, 2
        while name in out:
            name, n = f"{base}-{n}", n + 1
        out[name] = est
    return out


def share_cores(est, n_jobs: int):
    """With ``n_jobs`` worker processes, give a model whose ``n_threads`` is 0 (all cores)
    its share of the cores instead, so processes x threads do not oversubscribe them."""
    import os

    params = est.get_params(deep=False)
    if n_jobs == 1 or "n_threads" not in params or params["n_threads"] not in (0, None):
        return est
    cores = os.cpu_count() or 1
    jobs = cores if n_jobs < 0 else n_jobs
    return clone(est).set_params(n_threads=max(1, cores // max(jobs, 1)))


def _is_baseline(name: str, model) -> bool:
    try:
        return registry.get(name).baseline
    except ModelError:
        return any(e.baseline and e.cls == type(model).__name__ for e in registry.entries())


# ---------------------------------------------------------------- one (model, fold)
def _metric_lists(task: str, wanted) -> tuple[list, list]:
    wanted = DEFAULT_METRICS[task] if wanted is None else wanted
    rating = [m for m in wanted if m in RATING_METRICS and task == "explicit"]
    ranking = [m for m in wanted if m in RANKING_METRICS]
    for m in wanted:
        if m not in RATING_METRICS and m not in RANKING_METRICS:
            raise ModelError(f"unknown metric {m!r}; rating metrics: {RATING_METRICS}, ranking: {RANKING_METRICS}")
    return [m for m in rating if hasattr(_metrics, m)], ranking


#: size of the validation slice carved from fold 0's training rows for the learning curves
CURVE_VALIDATION = 0.1


def measure(model, test: Interactions, *, k: int = 10, metrics=None) -> _metrics.Measurement | None:
    """Measure a fitted model on held-out data with the metrics of its task (see latentrec.metrics).

    Explicit models get rating metrics and ranking metrics when asked for; implicit
    models ranking metrics at ``k``. Returns one :class:`~latentrec.metrics.Measurement`
    holding every value (``values``) and the coverage counts of the rating part when
    there is one, else of the ranking.
    """
    task = getattr(model, "task", "explicit")
    rating, ranking = _metric_lists(task, metrics)
    parts = []
    if rating:
        parts.append(_metrics.measure_ratings(model, test, rating))
    if ranking:
        ranked = test if test.is_implicit else test.to_implicit()
        parts.append(_metrics.measure_topn(model, ranked, k, metrics=ranking))
    if not parts:
        return None
    values = {name: v for p in parts for name, v in p.values.items()}
    return _metrics.Measurement(values, **parts[0].counts())


def curve_split(train: Interactions, task: str, random_state=0) -> tuple[Interactions, Interactions]:
    """(fit, validation) rows carved from a training fold for learning curves: a random
    :data:`CURVE_VALIDATION` of the rows (explicit) or of each user's rows (implicit)."""
    if task == "implicit":
        return tuple(_split.user_holdout(train, CURVE_VALIDATION, 2, random_state=random_state))
    return tuple(_split.random_split(train, CURVE_VALIDATION, random_state=random_state))


def _is_iterative(est) -> bool:
    return "n_epochs" in est.get_params(deep=False)


def run_one(name: str, model, train: Interactions, test: Interactions, *, fold: int, k: int = 10,
            metrics=None, curve: bool = False, random_state=0) -> tuple[list[dict], list[dict]]:
    """Fit a clone of ``model`` on ``train`` only and measure it on ``test``: tidy rows, and a curve.

    With ``curve``, an iterative model is fitted a second time, on ``train`` less a
    validation slice (:func:`curve_split`), with ``eval_set`` = that slice, and its
    ``history_`` is the curve; that fit is not timed in ``fit_s`` and never sees ``test``.
    """
    est = clone(model)
    task = getattr(est, "task", "explicit")
    _metric_lists(task, metrics)  # an unknown metric fails before the fit, not after it
    t0 = time.perf_counter()
    est.fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = measure(est, test, k=k, metrics=metrics)
    predict_s = time.perf_counter() - t0
    counts = m.counts() if m is not None else {}
    rows = [{"model": name, "fold": fold, "metric": metric, "value": v, "fit_s": fit_s, "predict_s": predict_s,
             "task": task, "n_train": len(train), "n_test": len(test),
             **{c: counts.get(c) for c in COUNT_COLUMNS}}
            for metric, v in (m.values.items() if m is not None else [])]
    history: list[dict] = []
    if curve and _is_iterative(est):
        fit_part, val = curve_split(train, task, random_state)
        probe = clone(model).fit(fit_part, eval_set=val)
        history = [dict(h) for h in probe.history_]
    return rows, history


#: coverage counts of every result row (see latentrec.metrics.Measurement)
COUNT_COLUMNS = ("cold_users", "cold_items", "fallback_rows")


@dataclass
class Evaluation:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    results : DataFrame
        One row per (model, fold, metric): ``model, fold, metric, value, fit_s,
        predict_s, task, n_train, n_test, cold_users, cold_items, fallback_rows,
        baseline``. ``cold_items`` counts held-out rows whose item the model never
        saw (ranking: kept in the denominators; rating: predicted by the fallback).
    run : dict
        The run record: versions, dataset checksum, protocol, folds, parameters,
        skipped models.
    histories : dict
        Model name -> per-epoch ``history_`` of its learning-curve fit on a
        validation slice of fold 0's training rows (never the test fold).
    """

    results: pd.DataFrame
    run: dict
    histories: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """:func:`summarize` of the results."""
        return summarize(self.results)


# ---------------------------------------------------------------- evaluate
def evaluate(models=None, data: Interactions | None = None, protocol="5fold", *, k: int = 10, metrics=None,
             n_jobs: int = 1, random_state: int = 0, record=None, test_size: float = 0.2,
             implicit_threshold: float | None = None, curves: bool = True, data_home=None,
             verbose: bool | None = None, journal=None, resume: bool = False, warm_up: bool = True) -> Evaluation:
    """Fit and measure every model on every fold of ``protocol``.

    Parameters
    ----------
    models : None, str, estimator, list or dict
        ``None``: :func:`default_models` (baselines + main models). A string is a
        registry spec (``"baselines"``, ``"all"``, ``"biases,biased-mf"``); a dict
        maps display names to estimators.
    data : Interactions
    protocol : str or list of (train, test)
        A name from :data:`PROTOCOLS` (``"5fold"``, ``"holdout"``, ``"u1-u5"``,
        ``"user-holdout"``, ``"leave-last-out"``, ``"temporal"``, any ``"Nfold"``)
        or explicit folds.
    k : int
        Cut-off of the ranking metrics.
    metrics : list of str, optional
        Metric names; default ``rmse, mae`` for explicit models and
        ``precision, recall, ndcg, map`` (at k) for implicit ones. Rating
        metrics are only computed for explicit models.
    n_jobs : int
        Processes over (model, fold) pairs (joblib); 1 runs in this process.
    random_state : int
        Seeds the folds, the learning-curve validation slice and every model whose
        ``random_state`` is None.
    record : path, optional
        Folder to write ``results.csv`` and ``run.json`` (versions, parameters,
        dataset checksum, protocol) into.
    implicit_threshold : float, optional
        Ratings >= this become positives for ranking models (default: every rating).
    curves : bool
        Learning curves: each iterative model is fitted once more on fold 0's
        training rows less a validation slice (:data:`CURVE_VALIDATION` of them,
        seeded by ``random_state``) and measured on that slice after every epoch.
    verbose : bool, optional
        One line on stderr per finished (model, fold); default: unless
        ``LATENTREC_QUIET`` is set.
    journal : path, optional
        A JSON-lines file each finished (model, fold) is appended to as it
        finishes, so that an interrupted run loses nothing.
    resume : bool
        With ``journal``: keep the (model, fold) results already in it (it must
        have been written by the same run: data, protocol, seed, models and
        parameters) and run only the rest.
    warm_up : bool
        Fit every model once on a tiny synthetic set first, so that ``fit_s``
        does not include numba's compilation (or cache loading).

    Returns
    -------
    Evaluation
        ``results`` (tidy DataFrame), ``run`` (the run record), ``histories``.
        Every held-out row is measured: see :mod:`latentrec.metrics`.
    """
    if data is None:
        raise DataError("evaluate needs data (an Interactions)")
    skipped: list[str] = []
    estimators = resolve_models(models, "implicit" if data.is_implicit else "explicit", skipped)
    seeded = {}
    for name, est in estimators.items():
        if "random_state" in est.get_params(deep=False) and est.get_params()["random_state"] is None:
            est = clone(est).set_params(random_state=random_state)
        seeded[name] = share_cores(est, n_jobs)
    folds = make_folds(data, protocol, random_state=random_state, test_size=test_size, data_home=data_home)
    implicit_folds = None
    tasks = []
    for name, est in seeded.items():
        task = getattr(est, "task", "explicit")
        for f, (train, test) in enumerate(folds):
            if task == "implicit" and not data.is_implicit:
                if implicit_folds is None:
                    implicit_folds = [(tr.to_implicit(implicit_threshold), te.to_implicit(implicit_threshold))
                                      for tr, te in folds]
                train, test = implicit_folds[f]
            tasks.append((name, est, train, test, f))
    run = run_record(seeded, data, protocol, folds, k=k, random_state=random_state, n_jobs=n_jobs,
                     implicit_threshold=implicit_threshold)
    log = _Journal(journal, run, resume)
    todo = [t for t in tasks if (t[0], t[4]) not in log.done]
    if warm_up:
        _warm_up({t[0]: t[1] for t in todo})
    kw = dict(k=k, metrics=metrics, random_state=random_state)
    say = _progress_line(len(tasks), len(tasks) - len(todo), verbose)
    if n_jobs == 1:
        results = (run_one(n, e, tr, te, fold=f, curve=curves and f == 0, **kw) for n, e, tr, te, f in todo)
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(run_one)(n, e, tr, te, fold=f, curve=curves and f == 0, **kw) for n, e, tr, te, f in todo)
    for t, res in zip(todo, results):  # each task is journalled as it finishes: an interruption loses no result
        log.add(t[0], t[4], res)
        say(t[0], t[4], len(folds), res[0])
    out = [log.done[(t[0], t[4])] for t in tasks]
    rows = [r for rs, _ in out for r in rs]
    histories = {t[0]: h for t, (_, h) in zip(tasks, out) if t[4] == 0 and h}
    df = pd.DataFrame(rows, columns=["model", "fold", "metric", "value", "fit_s", "predict_s", "task",
                                     "n_train", "n_test", *COUNT_COLUMNS])
    df["baseline"] = df["model"].map({n: _is_baseline(n, e) for n, e in seeded.items()}).astype(bool)
    run["skipped_models"] = skipped
    run["resumed_tasks"] = len(tasks) - len(todo)
    run["curves"] = (f"per-epoch metrics on a validation slice of {CURVE_VALIDATION:.0%} of fold 0's training "
                     f"rows (seed {random_state}); the test folds never reach fit") if curves else None
    result = Evaluation(df, run, histories)
    if record is not None:
        write_record(result, record)
    return result


class _Journal:
    """Finished (model, fold) results of a run, appended to a JSON-lines file as they come."""

    def __init__(self, path, run: dict, resume: bool):
        self.path = None if path is None else Path(path)
        self.key = {k: run[k] for k in ("dataset", "protocol", "folds", "k", "random_state", "models",
                                        "implicit_threshold")}
        self.done: dict = {}
        if self.path is None:
            return
        if resume and self.path.is_file():
            lines = self.path.read_text().splitlines()
            head = json.loads(lines[0]) if lines else {}
            if json.loads(json.dumps(self.key, default=str)) != head.get("run"):
                raise DataError(f"{self.path} was written by another run (data, protocol, seed, models or "
                                "parameters differ); remove it or drop --resume")
            for n, line in enumerate(lines[1:], start=2):
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # the line a kill cut short: that task runs again
                    if n == len(lines):
                        break
                    raise DataError(f"{self.path}, line {n}: not a journal record") from None
                self.done[(rec["model"], rec["fold"])] = (rec["rows"], rec["history"])
            self._tidy(lines[:1 + len(self.done)])
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tidy([json.dumps({"run": self.key}, default=str)])

    def _tidy(self, lines: list) -> None:
        atomic_write_text(self.path, "".join(line + "\n" for line in lines))

    def add(self, model: str, fold: int, result) -> None:
        self.done[(model, fold)] = result
        if self.path is None:
            return
        rec = json.dumps({"model": model, "fold": fold, "rows": result[0], "history": result[1]}, default=float)
        with open(self.path, "a") as fh:
            fh.write(rec + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _progress_line(total: int, done: int, verbose):
    """A callable printing one line per finished task on stderr (works when redirected)."""
    quiet = verbose is False or (verbose is None and os.environ.get("LATENTREC_QUIET"))
    state = {"n": done}
    if done and not quiet:
        print(f"[{done}/{total}] resumed from the journal", file=sys.stderr, flush=True)

    def say(name, fold, n_folds, rows):
        state["n"] += 1
        if quiet:
            return
        main = next((r for r in rows if r["metric"] in ("rmse",) or r["metric"].startswith("ndcg@")), None)
        value = f"{main['metric']} {main['value']:.4f}, " if main else ""
        fit_s = rows[0]["fit_s"] if rows else float("nan")
        print(f"[{state['n']}/{total}] {name} fold {fold + 1}/{n_folds}: {value}fit {fit_s:.2f} s",
              file=sys.stderr, flush=True)

    return say


def _warm_up(models: dict) -> None:
    """Fit each model once on a tiny synthetic set so the timed fits do not include numba's
    compilation or cache loading. Only a warm-up: a model that cannot fit such a small set simply
    compiles during its first real fit."""
    from .data.synthetic import synthetic_implicit, synthetic_ratings

    tiny = {"explicit": synthetic_ratings(60, 40, 900, random_state=0),
            "implicit": synthetic_implicit(60, 40, 900, random_state=0)}
    seen = set()
    for est in models.values():
        key = (type(est), getattr(est, "task", "explicit"))
        if (key in seen or not type(est).__module__.startswith("latentrec.")  # only our (numba, torch) models
                or "master" in est.get_params(deep=False)):  # Spark models start a cluster: no warm-up
            continue
        seen.add(key)
        try:
            clone(est).fit(tiny[key[1]])
        except Exception:  # noqa: BLE001 - the real fit reports any real problem
            pass


def _versions() -> dict:
    from .persist import _versions as v

    out = v()
    out["pandas"] = pd.__version__
    return out


def describe_protocol(protocol) -> str:
    """One line saying what the test part of ``protocol`` is."""
    if not isinstance(protocol, str):
        return "folds given by the caller"
    m = re.fullmatch(r"(\d+)fold", protocol.lower())
    if m:
        return f"{m.group(1)}-fold cross-validation over random rows (split.kfold)"
    return PROTOCOLS.get(protocol.lower(), "")


def run_record(models: dict, data: Interactions, protocol, folds, *, k, random_state, n_jobs,
               implicit_threshold=None) -> dict:
    """The JSON-able description of a run: what was compared, on what, how."""
    def params(est):
        return {p: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
                for p, v in est.get_params(deep=False).items()}

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "dataset": {"name": data.name, "checksum": data.checksum(), "rows": len(data), "users": data.n_users,
                    "items": data.n_items, "kind": "implicit" if data.is_implicit else "explicit"},
        "protocol": protocol if isinstance(protocol, str) else "custom",
        "protocol_description": describe_protocol(protocol),
        "folds": [{"train": len(tr), "test": len(te)} for tr, te in folds],
        "k": k, "random_state": random_state, "n_jobs": n_jobs, "implicit_threshold": implicit_threshold,
        "models": {name: {"class": f"{type(e).__module__}.{type(e).__name__}", "params": params(e)}
                   for name, e in models.items()},
    }


def write_record(evaluation: Evaluation, folder) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``run.json`` (the run record + summary) atomically into ``folder``."""
    folder = Path(folder)
    csv_path, json_path = folder / "results.csv", folder / "run.json"
    atomic_write_text(csv_path, evaluation.results.to_csv(index=False))
    summary = summarize(evaluation.results)
    doc = {**evaluation.run, "summary": json.loads(summary.to_json(orient="records")),
           "histories": evaluation.histories}
    atomic_write_text(json_path, json.dumps(doc, indent=1, default=str))
    for p in (csv_path, json_path):
        p.chmod(0o644)  # mkstemp creates 0600; results are meant to be shared
    return csv_path, json_path


# ---------------------------------------------------------------- summary
def main_metric(results: pd.DataFrame, task: str) -> tuple[str, bool]:
    """The metric a task's table is sorted by, and whether lower is better."""
    names = list(results.loc[results["task"] == task, "metric"].unique())
    if task == "explicit" and "rmse" in names:
        return "rmse", True
    for m in names:
        if m.startswith("ndcg@"):
            return m, False
    if not names:
        return "rmse", True
    return names[0], names[0].split("@")[0] in RATING_METRICS


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """One row per model: mean and std over folds of every metric, fit/predict seconds.

    Rows are grouped by task (rating models first) and sorted by the main metric
    (RMSE ascending, NDCG@k descending); ``baseline`` marks the baselines and
    ``rank`` is the position within the task.
    """
    if results.empty:
        return pd.DataFrame(columns=["model", "task", "baseline", "rank"])
    keys = ["model", "task", "baseline"]
    stats = results.groupby(keys + ["metric"], sort=False)["value"].agg(["mean", "std"])
    mean, std = stats["mean"].unstack("metric"), stats["std"].unstack("metric").fillna(0.0)
    table = pd.DataFrame(index=mean.index)
    for m in results["metric"].unique():
        table[m] = mean[m]
        table[f"{m}_std"] = std[m]
    times = results.groupby(keys, sort=False)[["fit_s", "predict_s"]].mean()
    table = table.join(times).reset_index()
    table["n_folds"] = table["model"].map(results.groupby("model")["fold"].nunique())
    parts = []
    for task in ("explicit", "implicit"):
        part = table[table["task"] == task]
        if part.empty:
            continue
        metric, ascending = main_metric(results, task)
        part = part.dropna(axis=1, how="all").sort_values(metric, ascending=ascending, kind="stable")
        part.insert(3, "rank", np.arange(1, len(part) + 1))
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return out[[c for c in parts[0].columns[:4]] + [c for c in table.columns if c not in keys]]


def summary_cells(part: pd.DataFrame, baseline_mark: str = " *") -> pd.DataFrame:
    """The shown cells of one task's rows of :func:`summarize`: the model (baselines marked with
    ``baseline_mark``), "mean ± std" per metric ("± n/a" for a model measured on one fold: one
    value has no spread), fit and predict seconds. The CLI table and the HTML report print these."""
    metrics_ = [c for c in part.columns if f"{c}_std" in part.columns and part[c].notna().any()]
    shown = pd.DataFrame({"model": [m + (baseline_mark if b else "") for m, b in zip(part["model"], part["baseline"])]})
    for m in metrics_:
        shown[m.upper()] = [f"{v:.4f} ± " + (f"{s:.4f}" if n > 1 else "n/a")
                            for v, s, n in zip(part[m], part[f"{m}_std"], part["n_folds"])]
    shown["fit s"] = [f"{v:.3f}" for v in part["fit_s"]]
    shown["predict s"] = [f"{v:.3f}" for v in part["predict_s"]]
    return shown


def format_summary(summary: pd.DataFrame, task: str | None = None) -> str:
    """A plain-text table of :func:`summarize`'s output ("0.9412 ± 0.0041"; * marks baselines)."""
    blocks = []
    for t in ([task] if task else ["explicit", "implicit"]):
        part = summary[summary["task"] == t]
        if part.empty:
            continue
        shown = summary_cells(part)
        title = "rating prediction" if t == "explicit" else "top-N ranking"
        n = int(part["n_folds"].max())
        blocks.append(f"{title} ({n} fold{'s' * (n > 1)}; * = baseline)\n"
                      + shown.to_string(index=False))
    return "\n\n".join(blocks)


__all__ = ["evaluate", "Evaluation", "measure", "summarize", "summary_cells", "format_summary", "make_folds", "resolve_models",
           "default_models", "run_one", "write_record", "curve_split", "PROTOCOLS"]


class _CallableModule(types.ModuleType):
    """``latentrec.evaluate`` is this module, and calling it calls :func:`evaluate` (the module and
    the function share the name, so ``lr.evaluate(...)`` works whichever a user reaches for)."""

    def __call__(self, *args, **kwargs):
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
