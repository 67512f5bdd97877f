"""Rating and ranking metrics: pure functions on arrays, vectorised over users.

Rating metrics compare ``y_true`` and ``y_pred`` element-wise. Ranking metrics
take the top-k item codes recommended to a batch of users and the CSR matrix of
those users' held-out (relevant) items, and average per-user values over the
users that have at least one relevant item. Definitions (docs/protocols.md):
for a user u with relevant set R_u (|R_u| > 0) and list L_u = (l_1, ..., l_k),
``rel_j = 1`` when ``l_j`` is in R_u, and ``hits = sum_j rel_j``:

* precision@k     = hits / k                     (padding counts as a miss)
* recall@k        = hits / |R_u|                 (the usual denominator)
* recall_capped@k = hits / min(|R_u|, k)         (reaches 1 when |R_u| > k)
* ndcg@k          = DCG / IDCG, DCG = sum_j rel_j / log2(j + 1),
                    IDCG = sum_{j=1}^{min(|R_u|, k)} 1 / log2(j + 1)  (binary relevance)
* map@k           = (1 / min(|R_u|, k)) * sum_j rel_j * precision@j
* hit_rate@k      = 1 if hits > 0 else 0
* mrr@k           = 1 / (first j with rel_j = 1), 0 if none in the top k

Measuring a model on held-out data goes through one id-keyed core, used by
``evaluate``, ``tune``, the CLI, the benchmarks and the tests alike:

* :func:`measure_ratings` — rating metrics of ``model.predict`` on every test row
  (rows with an unknown user or item get the model's documented fallback and are
  counted, never dropped);
* :func:`measure_topn` — the model's top-k lists for every test user, scored by
  :func:`score_topn`;
* :func:`score_topn` — any recommender's lists (ids) against held-out ids. Every
  held-out row stays in |R_u|: a test item the model never saw cannot be hit but
  still counts in recall, NDCG and MAP (``cold_items``); a test user the model never
  saw gets the popularity fallback and is counted (``cold_users``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import DataError

#: the metrics :func:`ranking_metrics` returns by default (and their order)
DEFAULT_RANKING = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
#: every metric :func:`ranking_metrics` can compute
RANKING_METRICS = ("precision", "recall", "recall_capped", "ndcg", "map", "hit_rate", "mrr")


# ---------------------------------------------------------------- rating metrics
def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise DataError(f"y_true has {t.size} values but y_pred has {p.size}; they must match one to one")
    if t.size == 0:
        raise DataError("cannot compute an error metric on no values (y_true and y_pred are empty)")
    return t, p


def mse(y_true, y_pred) -> float:
    """Mean squared error, ``mean((y - ŷ)^2)``. NaN in the inputs gives NaN."""
    t, p = _pair(y_true, y_pred)
    d = t - p
    return float(np.mean(d * d))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, ``sqrt(mean((y - ŷ)^2))``. NaN in the inputs gives NaN."""
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error, ``mean(|y - ŷ|)``. NaN in the inputs gives NaN."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination, ``1 - sum((y - ŷ)^2) / sum((y - mean(y))^2)``.

    As in scikit-learn's ``r2_score``: when ``y_true`` is constant the result is 1.0
    for a perfect prediction and 0.0 otherwise.
    """
    t, p = _pair(y_true, y_pred)
    ss_res = float(np.sum((t - p) ** 2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


# ---------------------------------------------------------------- ranking metrics
def _check_ranking(recommended, truth, k) -> tuple[np.ndarray, sp.csr_matrix]:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be an integer >= 1, got {k!r}")
    rec = np.asarray(recommended)
    if rec.ndim != 2 or (rec.size and rec.dtype.kind not in "iu"):
        raise DataError("recommended must be a 2-d integer array of item codes (users x positions, -1 = "
                        f"padding), got dtype {rec.dtype} and shape {rec.shape}")
    if not sp.issparse(truth):
        raise DataError(f"truth must be a scipy sparse matrix (users x items), got {type(truth).__name__}")
    truth = truth.tocsr()
    if truth.shape[0] != rec.shape[0]:
        raise DataError(f"recommended has {rec.shape[0]} rows (users) but truth has {truth.shape[0]}; "
                        "row r of one must be the same user as row r of the other")
    if rec.size and rec.max() >= truth.shape[1]:
        raise DataError(f"recommended holds item code {int(rec.max())} but truth has only {truth.shape[1]} items")
    return rec[:, :k].astype(np.int64, copy=False), truth


def _hits(rec: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean (n_users, k): is rec[r, j] a stored non-zero of truth row r?

    All (row, item) queries are answered in one compiled call (scipy's CSR
    element sampling: a binary search inside each row when indices are sorted),
    no Python loop per user. A repeated item in a list counts only at its first
    position (checked only when a list has a repeat, which is rare).
    """
    m, k = rec.shape
    hits = np.zeros((m, k), dtype=bool)
    if m == 0 or k == 0 or truth.nnz == 0:
        return hits
    if not truth.has_sorted_indices:
        truth = truth.sorted_indices()
    valid = rec >= 0
    if not valid.any():
        return hits
    rows = np.broadcast_to(np.arange(m, dtype=np.int64)[:, None], (m, k))[valid]
    hits[valid] = np.asarray(truth[rows, rec[valid]]).ravel() != 0
    if k > 1:
        srt = np.sort(rec, axis=1)
        if np.any((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)):
            order = np.argsort(rec, axis=1, kind="stable")
            srt = np.take_along_axis(rec, order, axis=1)
            dup = np.zeros((m, k), dtype=bool)
            np.put_along_axis(dup, order[:, 1:], srt[:, 1:] == srt[:, :-1], axis=1)
            hits &= ~dup
    return hits


def ranking_metrics(recommended: np.ndarray, truth: sp.spmatrix, k: int = 10, *,
                    metrics=DEFAULT_RANKING, per_user: bool = False) -> dict:
    """Top-k ranking metrics, averaged per user.

    Parameters
    ----------
    recommended : int array of shape (n_users, >= k)
        Item codes in rank order; ``-1`` pads short lists. Only the first ``k``
        columns are used; fewer than ``k`` columns count as padding. A repeated
        item counts only at its first position.
    truth : sparse matrix of shape (n_users, n_items)
        The relevant (held-out) items of the same users: row ``r`` of ``truth``
        is the user of row ``r`` of ``recommended``; every stored non-zero is relevant.
    k : int, default 10
    metrics : sequence of str
        Any of :data:`RANKING_METRICS` (definitions in the module docstring);
        default :data:`DEFAULT_RANKING`.
    per_user : bool, default False
        Return per-user arrays (for error bars) instead of means.

    Returns
    -------
    dict
        ``{name: mean over users}`` over the users with at least one relevant item
        (NaN when there is none). With ``per_user=True``: ``{name: array}`` plus
        ``"users"``, the row indices those arrays refer to.
    """
    unknown = [name for name in metrics if name not in RANKING_METRICS]
    if unknown:
        raise DataError(f"unknown ranking metric(s) {unknown}; choose from {RANKING_METRICS}")
    rec, truth = _check_ranking(recommended, truth, k)
    if rec.shape[1] < k:
        rec = np.hstack([rec, np.full((rec.shape[0], k - rec.shape[1]), -1, dtype=np.int64)])
    hits = _hits(rec, truth)
    n_rel = np.diff(truth.indptr) if truth.nnz == 0 or np.all(truth.data != 0) else \
        np.bincount(truth.nonzero()[0], minlength=truth.shape[0])
    users = np.flatnonzero(n_rel > 0)
    hits, n_rel = hits[users], n_rel[users].astype(np.float64)
    n_hits = hits.sum(axis=1)
    capped = np.minimum(n_rel, k)
    positions = np.arange(1, k + 1)
    out = {}
    for name in metrics:
        if name == "precision":
            val = n_hits / k
        elif name == "recall":
            val = n_hits / n_rel
        elif name == "recall_capped":
            val = n_hits / capped
        elif name == "ndcg":
            disc = 1.0 / np.log2(positions + 1)
            ideal = np.cumsum(disc)[capped.astype(np.int64) - 1]
            val = (hits * disc).sum(axis=1) / ideal
        elif name == "map":
            prec_at = np.cumsum(hits, axis=1) / positions
            val = (prec_at * hits).sum(axis=1) / capped
        elif name == "hit_rate":
            val = (n_hits > 0).astype(np.float64)
        else:  # mrr
            first = hits.argmax(axis=1) + 1
            val = np.where(n_hits > 0, 1.0 / first, 0.0)
        out[name] = np.asarray(val, dtype=np.float64)
    if per_user:
        out["users"] = users
        return out
    return {name: float(v.mean()) if len(v) else float("nan") for name, v in out.items()}


def coverage(recommended: np.ndarray, n_items: int, k: int | None = None) -> float:
    """Catalogue coverage: the fraction of the ``n_items`` items recommended to at
    least one user in the top ``k`` (all columns when ``k`` is None); ``-1`` is padding.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise DataError(f"n_items must be an integer >= 1, got {n_items!r}")
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise DataError(f"recommended must be 2-d (users x positions), got shape {rec.shape}")
    if k is not None:
        rec = rec[:, :k]
    items = rec[rec >= 0]
    if items.size and items.max() >= n_items:
        raise DataError(f"recommended holds item code {int(items.max())} but n_items is {n_items}")
    return float(np.count_nonzero(np.bincount(items.astype(np.int64), minlength=n_items)) / n_items)


# ---------------------------------------------------------------- measuring a model on held-out data
#: rating metrics :func:`measure_ratings` knows
RATING_METRICS = ("rmse", "mae", "mse", "r2")
#: the metrics :func:`measure_topn` reports by default
DEFAULT_TOPN = ("precision", "recall", "ndcg", "map")


@dataclass(frozen=True)
class Measurement:
    """Metric values on held-out data, and what the figures cover.

    Attributes
    ----------
    values : dict
        ``{"rmse": ..., "mae": ...}`` or ``{"ndcg@10": ..., "recall@10": ...}``.
    n_rows : int
        Held-out rows (ranking: distinct (user, item) pairs), all of them scored.
    n_users : int
        Distinct test users (ranking: every one of them is averaged over).
    cold_users : int
        Test users the model never saw in training (rating rows get the fallback;
        ranking users get the most popular training items).
    cold_items : int
        Held-out rows whose item the model never saw. Rating rows get the fallback;
        ranking rows stay in |R_u| and can never be hit.
    fallback_rows : int
        Rating rows predicted by the fallback (unknown user or item); 0 for ranking.
    per_user : DataFrame or None
        With ``per_user=True``: one row per test user (``user`` and each metric).
    """

    values: dict
    n_rows: int
    n_users: int
    cold_users: int = 0
    cold_items: int = 0
    fallback_rows: int = 0
    per_user: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def counts(self) -> dict:
        """The coverage counts as a dict (for result tables and JSON)."""
        return {"n_rows": self.n_rows, "n_users": self.n_users, "cold_users": self.cold_users,
                "cold_items": self.cold_items, "fallback_rows": self.fallback_rows}


def _held_out(test, what: str):
    from .data.interactions import Interactions, as_interactions

    if not isinstance(test, Interactions):
        test = as_interactions(test, implicit=what == "ranking")
    if len(test) == 0:
        raise DataError(f"cannot measure {what} on an empty test set")
    return test


def measure_ratings(model, test, metrics=("rmse", "mae")) -> Measurement:
    """Rating metrics of ``model.predict`` on every row of ``test`` (ids, not codes).

    Rows whose user or item the model never saw get its fallback prediction and
    are counted in ``fallback_rows`` (``cold_users``/``cold_items`` count the rows
    with an unknown user / item); nothing is left out.
    """
    unknown = [m for m in metrics if m not in RATING_METRICS]
    if unknown:
        raise DataError(f"unknown rating metric(s) {unknown}; choose from {RATING_METRICS}")
    test = _held_out(test, "rating metrics")
    if test.is_implicit:
        raise DataError("rating metrics need ratings, but the test data are implicit feedback (no rating column); "
                        "measure a ranking instead (measure_topn)")
    pred = model.predict(test)
    users, items = test.users.take(test.user_codes), test.items.take(test.item_codes)
    cold_u = model.users_.codes(users, missing="ignore") < 0
    cold_i = model.items_.codes(items, missing="ignore") < 0
    fns = {"rmse": rmse, "mae": mae, "mse": mse, "r2": r2}
    values = {m: float(fns[m](test.values, pred)) for m in metrics}
    return Measurement(values, n_rows=len(test), n_users=int(len(np.unique(test.user_codes))),
                       cold_users=int(cold_u.sum()), cold_items=int(cold_i.sum()),
                       fallback_rows=int((cold_u | cold_i).sum()))


def _truth(test) -> tuple[np.ndarray, sp.csr_matrix]:
    """Test user codes with rows, and their held-out items (distinct pairs) as a 0/1 CSR in test codes."""
    key = np.unique(test.user_codes.astype(np.int64) * max(test.n_items, 1) + test.item_codes)
    u, i = key // max(test.n_items, 1), key % max(test.n_items, 1)
    users, row = np.unique(u, return_inverse=True)
    truth = sp.csr_matrix((np.ones(len(key), np.float32), (row, i)), shape=(len(users), test.n_items))
    return users.astype(np.int32), truth


def score_topn(lists, test, k: int = 10, *, metrics=DEFAULT_TOPN, n_items: int | None = None,
               per_user: bool = False) -> Measurement:
    """Score top-k lists given as ids against the held-out interactions ``test``.

    Parameters
    ----------
    lists : (user ids, 2-d array of item ids) or DataFrame
        Either a pair: the users (length m) and their recommended item ids in rank
        order (m x >= k; a masked array, ``None`` or ``-1`` pads short lists), or a
        long DataFrame with columns ``user``, ``item`` (and optionally ``rank``;
        otherwise row order is rank order), as LensKit and most peers write them.
    test : Interactions
        The held-out interactions. Every test user with a row is evaluated (a user
        with no list scores 0); every distinct held-out (user, item) pair is in
        |R_u|, whether or not the recommender could know the item.
    k : int
    metrics : sequence of str
        Names from :data:`RANKING_METRICS`, plus ``"coverage"`` (needs ``n_items``).
    n_items : int, optional
        Catalogue size, for coverage.
    per_user : bool
        Also return the per-user values (``Measurement.per_user``).
    """
    test = _held_out(test, "a ranking")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be an integer >= 1, got {k!r}")
    if "coverage" in metrics and n_items is None:
        raise DataError("coverage needs n_items (the size of the catalogue recommended from)")
    if isinstance(lists, pd.DataFrame):
        missing = [c for c in ("user", "item") if c not in lists.columns]
        if missing:
            raise DataError(f"recommendation lists need columns user and item (and optionally rank); "
                            f"missing {missing}, got {list(lists.columns)}")
        frame = lists.sort_values("rank", kind="stable") if "rank" in lists.columns else lists
        frame = frame.assign(_pos=frame.groupby("user", sort=False).cumcount())
        frame = frame[frame["_pos"] < k]
        list_users = pd.unique(frame["user"].to_numpy())
        ucode = pd.Index(list_users).get_indexer(frame["user"].to_numpy())
        rec_ids = np.full((len(list_users), k), None, dtype=object)
        rec_ids[ucode, frame["_pos"].to_numpy()] = frame["item"].to_numpy()
        valid = rec_ids != None  # noqa: E711 - element-wise
    else:
        list_users, rec_ids = lists
        list_users = np.atleast_1d(np.asarray(list_users))
        valid = ~np.ma.getmaskarray(rec_ids)
        rec_ids = np.ma.getdata(rec_ids)
        if rec_ids.ndim != 2 or len(rec_ids) != len(list_users):
            raise DataError(f"lists must pair {len(list_users)} users with a 2-d array of as many rows; "
                            f"got shape {np.shape(rec_ids)}")
        rec_ids = rec_ids[:, :k]
        valid = valid[:, :k]
        if rec_ids.dtype == object:
            valid &= rec_ids != None  # noqa: E711
        elif rec_ids.dtype.kind in "iu":
            valid &= rec_ids != -1
    users, truth = _truth(test)
    return _score_rows(list_users, rec_ids, valid, test, users, truth, k, metrics, n_items, per_user)


def _score_rows(list_users, rec_ids, valid, test, users, truth, k, metrics, n_items, per_user) -> Measurement:
    """score_topn once the lists are an (ids, valid) pair and the truth is built."""
    wanted = [m for m in metrics if m != "coverage"]
    row_of = test.users.codes(list_users, missing="ignore")
    pos = np.full(test.n_users, -1, dtype=np.int64)
    pos[users] = np.arange(len(users))
    rows = np.where(row_of >= 0, pos[np.maximum(row_of, 0)], -1)
    keep = rows >= 0
    flat, ok = rec_ids[keep], valid[keep]
    codes = np.full(flat.shape, -1, dtype=np.int64)
    if ok.any():  # an id outside the test vocabulary cannot be relevant: it stays -1, a miss
        codes[ok] = test.items.codes(flat[ok], missing="ignore")
    rec = np.full((len(users), k), -1, dtype=np.int64)
    rec[rows[keep], :codes.shape[1]] = codes
    res = ranking_metrics(rec, truth, k, metrics=wanted, per_user=per_user)
    values = {f"{m}@{k}": (float(np.mean(res[m])) if per_user else res[m]) for m in wanted}
    if "coverage" in metrics:
        values[f"coverage@{k}"] = float(len(pd.unique(rec_ids[valid].ravel())) / n_items) if valid.any() else 0.0
    frame = None
    if per_user:
        frame = pd.DataFrame({"user": test.users.take(users[res["users"]]), **{f"{m}@{k}": res[m] for m in wanted}})
    return Measurement(values, n_rows=int(truth.nnz), n_users=len(users), per_user=frame)


def measure_topn(model, test, k: int = 10, *, metrics=DEFAULT_TOPN, exclude_seen: bool = True,
                 per_user: bool = False) -> Measurement:
    """The model's top-``k`` lists for every user of ``test``, scored with cold items counted.

    Every test user gets ``model.recommend(user, k, exclude_seen=exclude_seen)``; a
    user the model never saw gets the most popular training items
    (``unknown="popular"``) and is counted in ``cold_users``. Held-out rows whose
    item the model never saw stay in the denominators (``cold_items``). See
    :func:`score_topn` for the scoring.
    """
    test = _held_out(test, "a ranking")
    users, truth = _truth(test)
    user_ids = test.users.take(users)
    ids, _ = model.recommend(user_ids, n=k, exclude_seen=exclude_seen, unknown="popular")
    valid = ~np.ma.getmaskarray(ids)
    ids = np.ma.getdata(ids)
    m = _score_rows(user_ids, ids, valid, test, users, truth, k, metrics, len(model.items_), per_user)
    cold_users = int(np.sum(model.users_.codes(user_ids, missing="ignore") < 0))
    cold_items = int(np.sum(model.items_.codes(test.items.take(truth.indices), missing="ignore") < 0))
    return Measurement(m.values, n_rows=m.n_rows, n_users=m.n_users, cold_users=cold_users,
                       cold_items=cold_items, per_user=m.per_user)
