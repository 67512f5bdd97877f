"""Grid and random search over any model's hyper-parameters, with learning curves.

Every setting is scored on validation folds carved from the data it is given —
pass the TRAINING part of your split, keep the test part for the final word
(the CLI's ``latentrec tune`` does exactly that). For each (setting, fold) a
fresh clone is fitted once with ``eval_set=validation``: iterative models then
record the validation metric after every epoch in ``history_`` (the base class's
epoch loop), so the learning curve of a setting comes from its one training run,
not from refitting per epoch count. Settings run in parallel processes
(``n_jobs``); the best setting is refitted on all the data given.

The models are scikit-learn estimators, so scikit-learn's own search works too::

    from sklearn.model_selection import GridSearchCV, KFold
    df = train.to_frame()
    search = GridSearchCV(Biases(), {"user_damping": [5, 15, 25]},
                          cv=KFold(3, shuffle=True, random_state=0))
    search.fit(df[["user", "item"]], df["rating"])   # scored by model.score = -RMSE

(implicit models score NDCG@10 on the held-out rows; GridSearchCV gives no
per-epoch curves — use :func:`grid_search` for those).

Early stopping (``early_stopping_rounds``) always watches the same validation fold
that scores the setting, whatever ``curves`` says; the refit of the best setting,
which has no validation data, trains for the epoch count early stopping reached
(``TuneResult.refit_rule`` says which rule applied). The best score is therefore
measured on the data that chose it and is optimistic: :func:`nested_cv` gives the
unbiased figure (``latentrec tune --outer-cv N``).
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, ParameterSampler

from . import metrics as _metrics
from . import registry
from . import split as _split
from ._util import progress
from .data.interactions import Interactions
from .errors import DataError, ModelError
from .evaluate import RATING_METRICS, RANKING_METRICS, share_cores


@dataclass
class TuneResult:
    """What a search found.

    Attributes
    ----------
    results : DataFrame
        One row per setting: the parameters, ``mean_score``, ``std_score``, the
        per-fold scores, ``rank`` (1 = best), ``fit_s`` (mean seconds per fit).
    curves : DataFrame
        Long format ``setting, fold, epoch, metric, value`` from each fit's ``history_``.
    best_params : dict
    best_score : float
    best_estimator : Recommender or None
        The best setting refitted on all the data given (None with ``refit=False``).
    refit_params, refit_rule
        The parameters of that refit and why: the best setting as scored, or, when
        it stopped early on validation, the epoch count it reached there.
    edge : list of str
        Warnings for numeric parameters whose best value is the smallest or largest
        of those tried (the optimum may lie outside the grid).
    metric : str
        Column name of the score (``rmse``, ``ndcg@10`` ...).
    greater_is_better : bool
    param_names : list of str
    """

    results: pd.DataFrame
    curves: pd.DataFrame
    best_params: dict
    best_score: float
    best_estimator: object
    metric: str
    greater_is_better: bool
    param_names: list = field(default_factory=list)
    refit_s: float = 0.0
    refit_params: dict = field(default_factory=dict)
    refit_rule: str = ""
    edge: list = field(default_factory=list)


def parse_value(text: str):
    """``"20"`` -> 20, ``"0.05"`` -> 0.05, ``"true"`` -> True, ``"none"`` -> None, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_grid(spec: str) -> dict:
    """Parse ``'n_factors=20,50,100 regularization=0.01,0.05'`` into a parameter grid dict."""
    grid: dict = {}
    for part in spec.replace(";", " ").split():
        name, sep, values = part.partition("=")
        if not sep or not name or not values:
            raise DataError(f"grid entry {part!r} must look like name=v1,v2,...")
        grid[name.strip()] = [parse_value(v) for v in values.split(",") if v.strip()]
    if not grid:
        raise DataError(f"empty grid {spec!r}; expected e.g. 'n_factors=20,50 regularization=0.01,0.05'")
    return grid


def _as_model(model):
    return registry.create(model) if isinstance(model, str) else model


def validation_folds(data: Interactions, cv: int = 3, *, validation_size: float = 0.2, task: str = "explicit",
                     random_state=0) -> list:
    """(fit, validation) pairs carved from ``data``: k-fold over rows, or one holdout when ``cv=1``
    (per-user holdout for implicit models, so every validation user has training rows)."""
    if not isinstance(cv, (int, np.integer)) or cv < 1:
        raise DataError(f"cv must be an integer >= 1, got {cv!r}")
    if cv == 1:
        if task == "implicit" and hasattr(_split, "user_holdout"):
            return [tuple(_split.user_holdout(data, validation_size, 2, random_state=random_state))]
        return [tuple(_split.random_split(data, validation_size, random_state=random_state))]
    return [tuple(f) for f in _split.kfold(data, cv, random_state=random_state)]


def held_out_score(est, val: Interactions, metric: str, k: int = 10) -> float:
    """``metric`` (``rmse``, ``ndcg@10``...) of a fitted model on held-out data, every row counted."""
    if metric in RATING_METRICS:
        return _metrics.measure_ratings(est, val, [metric])[metric]
    base = metric.split("@")[0]
    return _metrics.measure_topn(est, val, k, metrics=[base])[f"{base}@{k}"]


def _early_stopping(est) -> bool:
    return est.get_params(deep=False).get("early_stopping_rounds") is not None


def _run_setting(model, params: dict, s: int, f: int, train: Interactions, val: Interactions,
                 metric: str, k: int, curves: bool) -> tuple[dict, list[dict]]:
    est = clone(model).set_params(**params)
    # the validation fold drives early stopping whenever the setting asks for it, whatever ``curves`` says,
    # so a setting's score never depends on a display flag
    use_val = curves or _early_stopping(est)
    t0 = time.perf_counter()
    est.fit(train, eval_set=val if use_val else None)
    fit_s = time.perf_counter() - t0
    score = held_out_score(est, val, metric, k)
    curve = [{"setting": s, "fold": f, "epoch": h["epoch"], "metric": name, "value": float(v)}
             for h in getattr(est, "history_", []) for name, v in h.items()
             if name != "epoch" and isinstance(v, (int, float, np.floating))] if curves else []
    epochs = getattr(est, "best_epoch_", None)
    return {"setting": s, "fold": f, "score": score, "fit_s": fit_s, "best_epoch": epochs}, curve


def _refit_params(model, best: dict, scores: pd.DataFrame, setting: int) -> tuple[dict, str]:
    """The parameters the refit uses, and the rule that chose them (said in the result)."""
    est = clone(model).set_params(**best)
    stopped = scores.loc[scores["setting"] == setting, "best_epoch"].dropna()
    if _early_stopping(est) and len(stopped):
        n = max(1, int(round(float(stopped.mean()))))
        rule = (f"n_epochs={n}, the mean epoch early stopping chose on the {len(stopped)} validation fold(s) of "
                "the best setting; the refit has no validation data, so early stopping is off")
        return {**best, "n_epochs": n, "early_stopping_rounds": None}, rule
    return dict(best), "the best setting as scored"


def search(model, data: Interactions, settings: list[dict], *, cv: int = 3, validation_size: float = 0.2,
           metric: str | None = None, k: int = 10, n_jobs: int = 1, random_state=0, refit: bool = True,
           curves: bool = True, implicit_threshold: float | None = None, verbose: bool | None = None,
           param_names: list | None = None) -> TuneResult:
    """Score each parameter setting in ``settings`` on validation folds of ``data`` (see module doc).

    ``param_names`` orders the parameter columns (default: as first seen); the
    first two are the axes of the report's heat-map.
    """
    model = _as_model(model)
    if not settings:
        raise DataError("no parameter settings to try")
    valid = set(model.get_params(deep=False))
    for params in settings:
        bad = sorted(set(params) - valid)
        if bad:
            raise ModelError(f"{type(model).__name__} has no parameter(s) {', '.join(bad)}; "
                             f"its parameters are {', '.join(sorted(valid))}")
    task = getattr(model, "task", "explicit")
    if task == "implicit" and not data.is_implicit:
        data = data.to_implicit(implicit_threshold)
    metric = metric or ("rmse" if task == "explicit" else f"ndcg@{k}")
    base = metric.split("@")[0]
    if base not in RATING_METRICS + RANKING_METRICS or (task == "implicit" and base in RATING_METRICS):
        raise ModelError(f"metric {metric!r} does not apply to a {task} model")
    metric = base if base in RATING_METRICS else f"{base}@{k}"
    greater = base not in RATING_METRICS
    if "random_state" in valid and model.get_params()["random_state"] is None:
        model = clone(model).set_params(random_state=random_state)
    model = share_cores(model, n_jobs)
    folds = validation_folds(data, cv, validation_size=validation_size, task=task, random_state=random_state)
    tasks = [(s, f) for s in range(len(settings)) for f in range(len(folds))]
    args = [(model, settings[s], s, f, folds[f][0], folds[f][1], metric, k, curves) for s, f in tasks]
    if n_jobs == 1:
        out = [_run_setting(*a) for a in progress(args, total=len(args), desc="tune", enabled=verbose)]
    else:
        from joblib import Parallel, delayed

        out = Parallel(n_jobs=n_jobs)(delayed(_run_setting)(*a) for a in args)
    scores = pd.DataFrame([o[0] for o in out])
    curve_rows = [r for o in out for r in o[1]]
    per = scores.pivot(index="setting", columns="fold", values="score")
    names = list(dict.fromkeys([*(param_names or []), *(p for s in settings for p in s)]))
    results = pd.DataFrame([{p: s.get(p) for p in names} for s in settings])
    results.insert(0, "setting", np.arange(len(settings)))
    results["mean_score"] = per.mean(axis=1).to_numpy()
    results["std_score"] = per.std(axis=1, ddof=0).to_numpy()
    for f in per.columns:
        results[f"fold{f}_score"] = per[f].to_numpy()
    results["fit_s"] = scores.groupby("setting")["fit_s"].mean().to_numpy()
    order = results["mean_score"].rank(ascending=not greater, method="min")
    results["rank"] = order.fillna(len(results)).astype(int)
    best_row = results.sort_values(["rank", "setting"]).iloc[0]
    best = dict(settings[int(best_row["setting"])])
    best_est, refit_s = None, 0.0
    refit_with, refit_rule = _refit_params(model, best, scores, int(best_row["setting"]))
    if refit:
        t0 = time.perf_counter()
        best_est = clone(model).set_params(**refit_with).fit(data)
        refit_s = time.perf_counter() - t0
    results.attrs["metric"] = metric
    return TuneResult(results=results, curves=pd.DataFrame(curve_rows, columns=["setting", "fold", "epoch", "metric",
                                                                                   "value"]),
                      best_params=best, best_score=float(best_row["mean_score"]), best_estimator=best_est,
                      metric=metric, greater_is_better=greater, param_names=names, refit_s=refit_s,
                      refit_params=refit_with, refit_rule=refit_rule, edge=_edge_warnings(results, names, greater))


def _edge_warnings(results: pd.DataFrame, names: list, greater: bool) -> list:
    """Numeric parameters whose best value sits at the edge of the values tried."""
    best = results.sort_values(["rank", "setting"]).iloc[0]
    out = []
    for p in names:
        values = [v for v in results[p].dropna().unique() if isinstance(v, numbers.Real) and not isinstance(v, bool)]
        if len(values) < 2 or best[p] is None or not isinstance(best[p], numbers.Real):
            continue
        if best[p] in (min(values), max(values)):
            side = "smallest" if best[p] == min(values) else "largest"
            out.append(f"{p}={best[p]} is the {side} value tried; the best may lie beyond the grid")
    return out


def nested_cv(model, data: Interactions, grid, *, outer: int = 5, random_state=0, k: int = 10,
              implicit_threshold: float | None = None, **kwargs) -> pd.DataFrame:
    """Nested cross-validation: an unbiased estimate of "tune, then refit" on unseen data.

    Scoring the best setting on the validation folds that chose it is optimistic
    (the maximum of noisy scores). Here each of ``outer`` folds of ``data`` is held
    out in turn; :func:`grid_search` runs on the other rows only (its own ``cv``
    validation folds, early stopping and refit rule), and the refitted best model is
    measured on the held-out fold.

    Returns
    -------
    DataFrame
        One row per outer fold: ``fold``, the chosen parameters, ``validation_score``
        (optimistic), ``test_score`` (unbiased), ``refit_rule``.
    """
    model = _as_model(model)
    task = getattr(model, "task", "explicit")
    if task == "implicit" and not data.is_implicit:
        data = data.to_implicit(implicit_threshold)
    if not isinstance(outer, (int, np.integer)) or outer < 2:
        raise DataError(f"outer must be an integer >= 2 (outer folds), got {outer!r}")
    rows = []
    for f, (train, test) in enumerate(_split.kfold(data, outer, random_state=random_state)):
        res = grid_search(model, train, grid, random_state=random_state, k=k, **kwargs)
        rows.append({"fold": f, **res.best_params, "validation_score": res.best_score,
                     "test_score": held_out_score(res.best_estimator, test, res.metric, k), "metric": res.metric,
                     "refit_rule": res.refit_rule})
    return pd.DataFrame(rows)


def grid_search(model, data: Interactions, grid, **kwargs) -> TuneResult:
    """Try every combination of ``grid`` (dict of lists, or a ``'name=v1,v2 ...'`` string).

    Keyword arguments are those of :func:`search`: ``cv`` (validation folds, 1 =
    one holdout of ``validation_size``), ``metric`` (default RMSE for explicit
    models, NDCG@k for implicit ones), ``k``, ``n_jobs``, ``random_state``,
    ``refit``, ``curves``.
    """
    if isinstance(grid, str):
        grid = parse_grid(grid)
    kwargs.setdefault("param_names", list(grid))
    return search(model, data, list(ParameterGrid(grid)), **kwargs)


def random_search(model, data: Interactions, distributions: dict, n_iter: int = 10, **kwargs) -> TuneResult:
    """Try ``n_iter`` settings sampled from ``distributions`` (lists or scipy.stats
    distributions, as in scikit-learn), seeded by ``random_state``."""
    seed = kwargs.get("random_state", 0)
    seed = seed if isinstance(seed, (int, np.integer)) else None
    settings = list(ParameterSampler(distributions, n_iter, random_state=seed))
    settings = [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in s.items()} for s in settings]
    kwargs.setdefault("param_names", list(distributions))
    return search(model, data, settings, **kwargs)


__all__ = ["TuneResult", "grid_search", "random_search", "search", "nested_cv", "held_out_score", "parse_grid",
           "validation_folds"]
