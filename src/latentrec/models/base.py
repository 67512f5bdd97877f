"""The model contract every latentrec model follows (docs/architecture.md draws it).

A model is a scikit-learn estimator whose public calls all speak the user's own ids:

* ``fit(X, y=None, *, eval_set=None, callbacks=None)`` -> self
* ``predict(X, *, return_fallback=False)`` -> a score per (user, item) row
* ``score(X, y=None)`` -> minus RMSE (rating models) or NDCG@10 (ranking models)
* ``recommend(users, n=10, *, exclude_seen=True, items=None, unknown="raise", raw_scores=False, seen=None)``
* ``similar_items(items, n=10)``, ``similar_users(users, n=10)``
* ``recommend_for_interactions(item_ids, weights=None, n=10, ...)`` -> top-n for a new visitor
* ``save(path)``, ``load(path)``, ``history_frame()``

The calls after ``fit`` leave the model unchanged (safe for threads). A subclass supplies

* ``_constraints`` — allowed hyper-parameter ranges (checked at ``fit``);
* ``_fit(data, eval_data)`` — learn from :class:`Interactions` in internal codes;
* ``_predict_codes(u, i)`` and ``_score_block(u)`` — scores of known pairs, and of a block
  of users over all items — unless it inherits them from a family base below;
* optionally ``_item_similarity_block(i)``, ``_fold_in_scores(codes, weights)``, ``_build_caches()``.

Family bases, chosen by what a model learns (never by probing its attributes):
:class:`EmbeddingModel` (user/item vectors: cosine similarity), :class:`FactorModel`
(s_ui = p_u·q_i [+ μ + b_u + b_i]: scoring, fused top-N, fold-in) and
:class:`ItemWeightsModel` (s_u = x_u W).

Fallbacks for ids the model has never seen, documented once here:

* ``predict``: a row whose user or item is unknown gets ``_fallback`` — the global
  mean plus whichever learned bias is known (explicit models), or 0 (implicit);
  ``predict(X, return_fallback=True)`` also returns which rows fell back.
* ``recommend``: ``unknown="raise"`` (default) raises :class:`UnknownIdError`;
  ``unknown="popular"`` gives that user the most popular training items.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Any, Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from .._util import is_seed, kernel_threads, progress
from ..data.interactions import Interactions, as_interactions
from ..data.vocab import Vocabulary
from ..errors import DataError, ModelError, UnknownIdError, show
from . import _feedback
from .params import Interval, Options

# ---------------------------------------------------------------- the base class


class Recommender(BaseEstimator):
    """Base class of every latentrec model (see the module docstring for the contract)."""

    #: "explicit" models predict ratings; "implicit" models rank items from feedback.
    task: str = "explicit"
    #: hyper-parameter name -> Interval / Options; checked at the start of fit.
    _constraints: dict[str, Any] = {}
    #: default block of users scored at once in recommend
    _block_size: int = 512
    #: a rating model's fold-in scores are predicted ratings (False: a similarity score, see score_kind)
    _fold_in_rates: bool = True
    #: the learned arrays early stopping keeps the best epoch's copy of (_snapshot / _restore)
    _state: tuple = ()
    #: the scores read the training matrix ``seen_`` (item-item models, KNN, autoencoders); models
    #: whose scores come from learned vectors alone (EmbeddingModel) can be saved without it
    _scores_read_seen: bool = True
    #: learned user and item biases (b_u, b_i), or None for a model without them; a model that
    #: learns them sets them in fit, and the rating fallback (:meth:`_fallback`) adds them
    user_bias_: np.ndarray | None = None
    item_bias_: np.ndarray | None = None

    # ---------------------------------------------------------------- fitting
    def fit(self, X, y=None, *, eval_set=None, callbacks: list[Callable] | None = None):
        """Learn from ``X`` (Interactions, or a DataFrame of user, item[, rating]).

        Parameters
        ----------
        X : Interactions or DataFrame or array of shape (n, 2)
        y : array-like, optional
            Ratings (explicit) or weights (implicit) when ``X`` has only ids.
        eval_set : Interactions or (X, y), optional
            Held-out data evaluated after every epoch of iterative models; drives
            early stopping where a model supports it. Every row is measured (see
            :mod:`latentrec.metrics`); ``eval_unknown_`` counts the rows whose user
            or item the training data do not have.
        callbacks : list of callables ``(epoch, metrics) -> bool | None``
            Called after every epoch; returning True stops training.
        """
        data = as_interactions(X, y, implicit=self.task == "implicit", who=type(self).__name__).compact()
        if len(data) == 0:
            raise DataError("cannot fit on an empty set of interactions")
        self._start_fit(data.users, data.items, global_mean=float(np.mean(data.values, dtype=np.float64)),
                        rating_scale=data.rating_scale,
                        item_popularity=np.bincount(data.item_codes, minlength=data.n_items).astype(np.int64),
                        seen=data.to_csr(), checksum=data.checksum(), item_metadata=data.item_metadata)
        self._callbacks = list(callbacks or [])
        eval_data = None
        if eval_set is not None:
            if isinstance(eval_set, tuple):
                eval_set = as_interactions(*eval_set, implicit=self.task == "implicit")
            eval_data = as_interactions(eval_set, implicit=self.task == "implicit")
            if self.task == "implicit" and not eval_data.is_implicit:
                eval_data = eval_data.to_implicit()
            _, known = eval_data.recode(self.users_, self.items_)
            self.eval_unknown_ = int((~known).sum())
        try:
            self._fit(data, eval_data)
        finally:
            self._callbacks = []
        self._build_caches()
        return self

    def _build_caches(self) -> None:
        """Build what the calls read but the model does not learn (inverse norms for cosine
        similarity, transposed matrices ...): at the end of ``fit`` and after ``load``, never
        inside ``predict`` or ``recommend``, which leave the model unchanged. Overrides call super."""

    def _start_fit(self, users: Vocabulary, items: Vocabulary, *, global_mean: float, rating_scale, item_popularity,
                   seen, checksum: str | None, item_metadata) -> None:
        """Validate the hyper-parameters, forget any earlier fit and record what every model knows
        of its training data (shared by ``fit`` and fits whose data stay elsewhere, e.g. on Spark)."""
        self._validate_params()
        self._forget()
        self.users_: Vocabulary = users
        self.items_: Vocabulary = items
        self.global_mean_ = global_mean
        self.rating_scale_ = rating_scale
        self.item_popularity_ = item_popularity
        self.seen_ = seen
        self.train_checksum_ = checksum
        self.item_metadata_ = item_metadata
        self.history_: list[dict] = []

    def _fit(self, data: Interactions, eval_data: Interactions | None) -> None:  # pragma: no cover
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop every learned attribute so that ``fit`` starts afresh."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)

    def _validate_params(self) -> None:
        params = self.get_params(deep=False)
        for name, rule in self._constraints.items():
            value = params.get(name)
            if not rule.check(value):
                raise ModelError(f"{type(self).__name__}: {name} must be {rule.describe()}, got {value!r}")
        if not is_seed(params.get("random_state")):  # the library's one seed rule, as a bad hyper-parameter
            raise ModelError(f"{type(self).__name__}: random_state must be an int, a numpy Generator or None, "
                             f"got {show(params.get('random_state'))}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "users_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit first.")

    def _check_call(self, *, n=..., exclude_seen=None) -> int | None:
        """The argument checks every public query method starts with: fitted, ``n`` a positive
        integer (returned as an int; bools, floats and numpy arrays refused), flags real booleans."""
        self._check_fitted()
        if exclude_seen is not None and not isinstance(exclude_seen, (bool, np.bool_)):
            raise ModelError(f"exclude_seen must be True or False, got {show(exclude_seen)}")
        if n is ...:  # the method takes no n
            return None
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
            raise ModelError(f"n must be a positive integer, got {show(n)}")
        return int(n)

    # ---------------------------------------------------------------- epoch loop
    def _snapshot(self) -> dict:
        """Copies of the :attr:`_state` arrays (the best epoch's, for early stopping)."""
        return {name: getattr(self, name).copy() for name in self._state if getattr(self, name, None) is not None}

    def _restore(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def _fit_epochs(self, step: Callable[[int], dict], eval_data) -> None:
        """The epoch loop of an iterative model with ``n_epochs``, ``early_stopping_rounds`` and
        ``verbose``: validation metrics on ``eval_data`` after every epoch, and with both, early
        stopping on ``val_rmse`` (rating models) or ``val_ndcg`` (ranking models), keeping the best
        epoch's :attr:`_state`."""
        evaluate = self._evaluator(eval_data)
        patience = self.early_stopping_rounds if evaluate is not None else None
        monitor, mode = ("val_rmse", "min") if self.task == "explicit" else ("val_ndcg", "max")
        self._run_epochs(self.n_epochs, step, evaluate=evaluate, monitor=monitor, mode=mode, patience=patience,
                         snapshot=self._snapshot, restore=self._restore, verbose=self.verbose)

    def _evaluator(self, eval_data) -> Callable[[], dict] | None:
        """What :meth:`_fit_epochs` calls after every epoch (None without validation data); a model
        whose predictions need a step after the epoch (SVD++'s effective factors) wraps this."""
        if eval_data is None or len(eval_data) == 0:
            return None
        return lambda: self._eval_metrics(eval_data)

    def _run_epochs(self, n_epochs: int, step: Callable[[int], dict], *,
                    evaluate: Callable[[], dict] | None = None, monitor: str | None = None,
                    mode: str = "min", patience: int | None = None,
                    snapshot: Callable[[], Any] | None = None, restore: Callable[[Any], None] | None = None,
                    desc: str | None = None, verbose: bool | None = None) -> None:
        """The one epoch loop: step, evaluate, record ``history_``, callbacks, early stopping.

        ``step(epoch)`` runs one epoch and returns its metrics (``train_loss`` at
        least). A non-finite ``train_loss`` stops with :class:`ModelError` naming
        the epoch. With ``patience`` and a ``monitor`` metric from ``evaluate``,
        training stops after ``patience`` epochs without improvement and the best
        epoch's state is restored through ``snapshot``/``restore``.
        """
        best, best_epoch, best_state = None, -1, None
        bar = progress(range(n_epochs), total=n_epochs, desc=desc or type(self).__name__, enabled=verbose)
        for epoch in bar:
            t0 = time.perf_counter()
            metrics = dict(step(epoch) or {})
            metrics["epoch_s"] = time.perf_counter() - t0
            loss = metrics.get("train_loss")
            bad = self._nonfinite_parameter()
            if bad is not None or (loss is not None and not math.isfinite(loss)):
                what = f"{bad} has NaN or infinite values" if bad else f"the training loss is {loss}"
                raise ModelError(f"{type(self).__name__} diverged at epoch {epoch + 1}: {what}; "
                                 f"{self._divergence_advice()}")
            if evaluate is not None:
                metrics.update(evaluate())
            self.history_.append({"epoch": epoch + 1, **metrics})
            stop = False
            for cb in self._callbacks:
                stop = bool(cb(epoch + 1, metrics)) or stop
            if monitor is not None and monitor in metrics and patience is not None:
                value = metrics[monitor]
                better = best is None or (value < best if mode == "min" else value > best)
                if better:
                    best, best_epoch = value, epoch
                    best_state = snapshot() if snapshot else None
                elif epoch - best_epoch >= patience:
                    stop = True
            if stop:
                break
        if best_state is not None and restore is not None and best_epoch != len(self.history_) - 1:
            restore(best_state)
        if best is not None:
            self.best_epoch_ = best_epoch + 1

    def _nonfinite_parameter(self) -> str | None:
        """The first learned float array (attribute ending in ``_``) holding NaN or inf, if any.

        A float64 sum of float32 values cannot overflow, so the sum is finite exactly when
        every value is: one pass over the parameters per epoch, no temporary array.
        """
        for name, value in vars(self).items():
            if (name.endswith("_") and not name.startswith("_") and isinstance(value, np.ndarray)
                    and value.dtype.kind == "f"):
                with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf is the NaN looked for
                    total = np.sum(value, dtype=np.float64) if value.dtype.itemsize <= 4 else None
                if not (np.isfinite(total) if total is not None else np.isfinite(value).all()):
                    return name
        return None

    def _divergence_advice(self) -> str:
        """What to change when training diverges: the step size first, then the penalty."""
        params = self.get_params(deep=False)
        hints = []
        if "learning_rate" in params:
            hints.append(f"lower learning_rate (now {params['learning_rate']!r})")
        if "regularization" in params:
            hints.append(f"raise regularization (now {params['regularization']!r})")
        if "init_std" in params and "learning_rate" not in params:
            hints.append(f"lower init_std (now {params['init_std']!r})")
        return "try to " + " or ".join(hints) if hints else "check the training data for extreme values"

    def _check_solved(self, failed_row: int, side: str, epoch: int | None = None, ids=None) -> None:
        """Raise :class:`ModelError` when an exact solve reported a row (``-1``: all rows solved);
        ``ids`` are the ids of the solved rows (default: the ``side`` vocabulary), or a description."""
        if failed_row < 0:
            return
        if isinstance(ids, str):  # a description rather than the rows' ids
            who = ids
        else:
            if ids is None:
                ids = (self.users_ if side == "user" else self.items_).ids
            who = f"{side} {show(ids[failed_row])}" if failed_row < len(ids) else f"{side} row {failed_row}"
        when = f" at epoch {epoch + 1}" if epoch is not None else ""
        params = self.get_params(deep=False)
        advice = f"raise regularization (now {params.get('regularization')!r})"
        if "init_std" in params:
            advice += f" or lower init_std (now {params['init_std']!r})"
        raise ModelError(f"{type(self).__name__}{when}: the normal equations of {who} are singular or not "
                         f"positive definite; {advice}")

    def _eval_metrics(self, eval_data: Interactions | None, k: int = 10) -> dict:
        """Validation metrics on ``eval_data`` (ids, every row counted): ``val_rmse`` or ``val_ndcg`` etc. at k."""
        if eval_data is None or len(eval_data) == 0:
            return {}
        from .. import metrics

        if self.task == "explicit":
            return {"val_rmse": metrics.measure_ratings(self, eval_data, ["rmse"])["rmse"]}
        res = metrics.measure_topn(self, eval_data, k, metrics=metrics.DEFAULT_RANKING)
        return {f"val_{name.split('@')[0]}": value for name, value in res.values.items()}

    # ---------------------------------------------------------------- prediction
    def predict(self, X, *, return_fallback: bool = False):
        """Predicted score of each (user, item) row of ``X``, in the order given.

        Unknown users or items get the documented fallback (module docstring). With
        ``return_fallback=True`` the result is ``(scores, fallback)``, ``fallback`` a
        boolean array marking the rows that got it. The model is not changed.
        """
        u, i, known = self._pair_codes(X)
        out = np.empty(len(u), dtype=np.float32)
        if known.any():
            out[known] = self._predict_rows(X, u[known], i[known], known)
        if not known.all():
            out[~known] = self._fallback(u[~known], i[~known])
        return (self._clip(out), ~known) if return_fallback else self._clip(out)

    def _pair_codes(self, X):
        """``(u, i, known)``: the user and item codes of the rows of ``X`` (-1 when unknown) and
        the rows whose user and item are both known."""
        self._check_fitted()
        users, items = _pairs(X)
        u = self.users_.codes(users, missing="ignore")
        i = self.items_.codes(items, missing="ignore")
        return u, i, (u >= 0) & (i >= 0)

    def _predict_rows(self, X, u: np.ndarray, i: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``X`` whose user and item are known (``known`` marks them; ``u``,
        ``i`` their codes). The default is :meth:`_predict_codes`; a model whose prediction also reads
        other columns of ``X`` (BayesianFM's day) overrides this."""
        return self._predict_codes(u, i)

    def _predict_codes(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Scores of known (user code, item code) pairs: every model supplies this."""
        raise NotImplementedError

    def _fallback(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Score for rows with an unknown user and/or item (codes are -1 when unknown)."""
        if self.task == "implicit":
            return np.zeros(len(u), dtype=np.float32)
        out = np.full(len(u), self.global_mean_, dtype=np.float64)
        ub, ib = self.user_bias_, self.item_bias_
        if ub is not None:
            out[u >= 0] += ub[u[u >= 0]]
        if ib is not None:
            out[i >= 0] += ib[i[i >= 0]]
        return out.astype(np.float32)

    def _clip(self, pred: np.ndarray) -> np.ndarray:
        scale = getattr(self, "rating_scale_", None)
        if self.task == "explicit" and scale is not None:
            return np.clip(pred, scale[0], scale[1])
        return pred

    def score(self, X, y=None) -> float:
        """Explicit models: minus the RMSE on ``(X, y)``; implicit models: NDCG@10 on ``X``."""
        from .. import metrics

        if self.task == "explicit":
            if y is None:
                data = as_interactions(X)
                y = data.values
                X = data
            return -metrics.rmse(np.asarray(y, dtype=np.float64), self.predict(X))
        return metrics.measure_topn(self, as_interactions(X, y, implicit=True), 10, metrics=["ndcg"])["ndcg@10"]

    # ---------------------------------------------------------------- top-N
    def _score_block(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Dense scores (len(u), n_items) of a block of user codes (what recommend ranks)."""
        raise NotImplementedError(f"{type(self).__name__} cannot score all items")

    def _predict_from_blocks(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Scores of (user, item) code pairs read off ``_score_block`` rows, each distinct user
        scored once (for models whose only scoring is a whole row, e.g. autoencoders, blends)."""
        out = np.empty(len(u), dtype=np.float32)
        order = np.argsort(u, kind="stable")
        uniq, first = np.unique(u[order], return_index=True)
        bounds = np.r_[first, len(u)]
        for s in range(0, len(uniq), self._block_size):
            block = uniq[s:s + self._block_size]
            scores = self._score_block(block)
            for r in range(len(block)):
                rows = order[bounds[s + r]:bounds[s + r + 1]]
                out[rows] = scores[r, i[rows]]
        return out

    def _seen_items(self):
        """Where recommend reads the items each user has seen (``rows(user_codes)``, see
        :mod:`latentrec.models.seen`): the training matrix ``seen_``."""
        from .seen import SeenItems

        if "seen_" not in vars(self):
            raise ModelError(f"this {type(self).__name__} was saved without its training matrix (save(seen=False)): "
                             "pass the history to leave out, recommend(users, seen=interactions), or "
                             "exclude_seen=False")
        return SeenItems(self.seen_)

    def _seen_rows(self, u: np.ndarray, exclude_seen: bool, history) -> tuple[np.ndarray | None, Any]:
        """``(rows, seen)`` for the top-N kernels: row ``rows[r]`` of ``seen`` holds the items seen by
        user ``u[r]`` (:meth:`SeenItems.rows <latentrec.models.seen.SeenItems.rows>`); ``(None, None)``
        when nothing is excluded."""
        if not exclude_seen:
            return None, None
        return (history or self._seen_items()).rows(u)

    def _topn_codes(self, u: np.ndarray, n: int, *, exclude_seen: bool = True,
                    item_mask: np.ndarray | None = None, history=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-n item codes and scores for user codes ``u``; padded with -1 / -inf."""
        from .kernels.topn import topn_masked

        n_items = len(self.items_)
        k = int(min(n, n_items))
        out_c = np.full((len(u), k), -1, dtype=np.int32)
        out_s = np.full((len(u), k), -np.inf, dtype=np.float32)
        rows, seen = self._seen_rows(u, exclude_seen, history)
        for start in range(0, len(u), self._block_size):
            block = u[start:start + self._block_size]
            scores = np.ascontiguousarray(self._score_block(block), dtype=np.float32)
            c, s = topn_masked(scores, k, None if rows is None else rows[start:start + len(block)], seen, item_mask)
            out_c[start:start + len(block)] = c
            out_s[start:start + len(block)] = s
        return out_c, out_s

    def recommend(self, users, n: int = 10, *, exclude_seen: bool = True, items=None,
                  unknown: str = "raise", raw_scores: bool = False, seen=None):
        """Top-``n`` items for each user.

        Parameters
        ----------
        users : id or sequence of ids
        n : int
            How many items; fewer are returned when fewer remain (padding below).
        exclude_seen : bool
            Leave out the items each user has seen: by default those they interacted with
            in training.
        seen : Interactions or DataFrame of (user, item), optional
            What counts as seen instead of the training data (e.g. training plus what the
            users did since), read without refitting; pairs of unknown users or items are
            ignored (see :mod:`latentrec.models.seen`).
        items : sequence of item ids, optional
            Only recommend from these; unknown item ids raise :class:`UnknownIdError`.
        unknown : {"raise", "popular"}
            What to do with a user the model does not know (``"popular"``: the most
            popular items, scored by their training counts).
        raw_scores : bool
            Rating models (``task == "explicit"``) score items by their predicted rating,
            clipped to the training rating scale like :meth:`predict`; ``True`` returns
            the unclipped model scores (same order). Ignored by ranking models, whose
            scores have no scale.

        Returns
        -------
        ids, scores
            For one user: 1-d arrays (only real recommendations). For a sequence
            (every batch result of the library has this one type): ``ids`` is a
            ``numpy.ma.MaskedArray`` and ``scores`` a float32 array, both of shape
            (n_users, min(n, n_items)); a row with fewer items has its tail masked in
            ``ids`` and ``-inf`` in ``scores``, and ``ids.count(axis=1)`` is the number
            of real items per row. ``ids.data`` holds the ids (the padding repeats a
            real id: read only unmasked slots).
        """
        n = self._check_call(n=n, exclude_seen=exclude_seen)
        if unknown not in ("raise", "popular"):
            raise ModelError(f"unknown must be 'raise' or 'popular', got {show(unknown)}")
        user_ids, single = as_id_array(users, "users")
        codes = self.users_.codes(user_ids, missing="raise" if unknown == "raise" else "ignore", what="user")
        mask = None
        if items is not None:
            allowed = self.items_.codes(as_id_array(items, "items", single_ok=False)[0], missing="raise",
                                        what="item")
            mask = np.zeros(len(self.items_), dtype=bool)
            mask[allowed] = True
        history = None
        if seen is not None:
            from .seen import SeenItems

            history = SeenItems.from_interactions(seen, self.users_, self.items_)
        known = codes >= 0
        k = int(min(n, len(self.items_)))
        out_c = np.full((len(codes), k), -1, dtype=np.int32)
        out_s = np.full((len(codes), k), -np.inf, dtype=np.float32)
        if known.any():
            out_c[known], out_s[known] = self._topn_codes(codes[known], n, exclude_seen=exclude_seen, item_mask=mask,
                                                          history=history)
        if not known.all():
            pop = self.item_popularity_.astype(np.float32)
            if mask is not None:
                pop = np.where(mask, pop, -np.inf)
            order = np.argsort(-pop, kind="stable")[:k]
            out_c[~known] = np.where(np.isfinite(pop[order]), order, -1)
            out_s[~known] = pop[order]
        if not raw_scores:
            out_s[known] = self._clip_scores(out_s[known])
        return self._to_ids(out_c, out_s, single)

    def score_kind(self, fold_in: bool = False) -> str:
        """What :meth:`recommend`'s (or, with ``fold_in``, :meth:`recommend_for_interactions`')
        scores are: ``"rating"``, a predicted rating on the training scale (clipped to it unless
        ``raw_scores``), or ``"score"``, a model score whose only meaning is its order."""
        return "rating" if self.task == "explicit" and (self._fold_in_rates or not fold_in) else "score"

    def _clip_scores(self, scores: np.ndarray, fold_in: bool = False) -> np.ndarray:
        """A rating model's top-N scores clipped to the rating scale (the -inf padding stays)."""
        if self.score_kind(fold_in) != "rating":
            return scores
        return np.where(np.isfinite(scores), self._clip(scores), scores).astype(scores.dtype)

    def _to_ids(self, codes: np.ndarray, scores: np.ndarray, single: bool, vocab: Vocabulary | None = None):
        vocab = vocab or self.items_
        valid = codes >= 0
        ids = vocab.ids[np.where(valid, codes, 0)]
        if single:
            return ids[0][valid[0]], scores[0][valid[0]]
        return np.ma.masked_array(ids, mask=~valid), scores  # one type, padded or not (see recommend)

    # ---------------------------------------------------------------- similarity
    def _item_similarity_block(self, i: np.ndarray) -> np.ndarray:
        """Similarity rows of items ``i`` to every item for :meth:`similar_items`: by default the
        cosine between the items' columns of the training matrix (latent models: their vectors)."""
        return _cooccurrence_cosine(self.seen_.T.tocsr(), i)

    def _user_similarity_block(self, u: np.ndarray) -> np.ndarray:
        return _cooccurrence_cosine(self.seen_, u)

    def _similar(self, ids, n: int, vocab: Vocabulary, block_fn, what: str):
        n = self._check_call(n=n)
        from .kernels.topn import topn_masked

        id_array, single = as_id_array(ids, f"{what}s")
        codes = vocab.codes(id_array, missing="raise", what=what)
        k = int(min(n, len(vocab) - 1))
        out_c = np.full((len(codes), max(k, 0)), -1, dtype=np.int32)
        out_s = np.full((len(codes), max(k, 0)), -np.inf, dtype=np.float32)
        if k > 0:
            for start in range(0, len(codes), self._block_size):
                block = codes[start:start + self._block_size]
                sims = np.array(block_fn(block), dtype=np.float32, copy=True)
                sims[np.arange(len(block)), block] = -np.inf  # never similar to itself
                c, s = topn_masked(sims, k, None, None, None)
                out_c[start:start + len(block)], out_s[start:start + len(block)] = c, s
        return self._to_ids(out_c, out_s, single, vocab)

    def similar_items(self, items, n: int = 10):
        """The ``n`` items most similar to each of ``items`` (itself excluded); ids and scores,
        shaped as :meth:`recommend`'s (a sequence of items gives a masked ids array)."""
        self._check_fitted()
        return self._similar(items, n, self.items_, self._item_similarity_block, "item")

    def similar_users(self, users, n: int = 10):
        """The ``n`` users most similar to each of ``users``; ids and scores."""
        self._check_fitted()
        return self._similar(users, n, self.users_, self._user_similarity_block, "user")

    # ---------------------------------------------------------------- fold-in
    def recommend_for_interactions(self, item_ids, weights=None, n: int = 10, *, exclude_seen: bool = True,
                                   raw_scores: bool = False, unknown: str = "raise"):
        """Top-``n`` for a visitor described by the items they interacted with (no refit).

        Parameters
        ----------
        item_ids : sequence of item ids
        weights : sequence of float
            Rating models (``task == "explicit"``): the visitor's rating of each item,
            required; the scores are then predicted ratings. Implicit models: the
            interaction weights, default 1 each.
        n : int
        exclude_seen : bool
            Leave the visitor's items out of the list.
        raw_scores : bool
            As in :meth:`recommend`: rating models' predicted ratings are clipped to the
            rating scale unless ``True``.
        unknown : {"raise", "ignore"}
            An item id the model does not know raises :class:`UnknownIdError`, or, with
            ``"ignore"``, is left out of the visitor's history (as if not given).

        Factor models solve the visitor's factors from the fitted item factors
        (:meth:`_fold_in_factors`, ridge with the model's ``regularization``).
        """
        n = self._check_call(n=n, exclude_seen=exclude_seen)
        if unknown not in ("raise", "ignore"):
            raise ModelError(f"unknown must be 'raise' or 'ignore', got {show(unknown)}")
        item_ids = as_id_array(item_ids, "item_ids")[0]
        if weights is None and self.task == "explicit":
            raise DataError(f"{type(self).__name__} is a rating model: give the visitor's rating of each item, "
                            "recommend_for_interactions(item_ids, ratings)")
        what = "ratings" if self.task == "explicit" else "weights"
        w = np.ones(len(item_ids), dtype=np.float32) if weights is None else _weights(weights, what)
        if len(w) != len(item_ids):
            raise DataError(f"{len(w)} {what} for {len(item_ids)} items; give one per item")
        if not np.all(np.isfinite(w)):
            raise DataError("weights must be finite numbers")
        codes = self.items_.codes(item_ids, missing=unknown, what="item")
        w, codes = w[codes >= 0], codes[codes >= 0]
        scores = self._fold_in_scores(codes, w).astype(np.float32)[None, :]
        from .kernels.topn import topn_masked

        seen = sp.csr_matrix((np.ones(len(codes), np.float32), codes, [0, len(codes)]),
                             shape=(1, len(self.items_))) if exclude_seen and len(codes) else None
        k = int(min(n, len(self.items_)))
        c, s = topn_masked(scores, k, np.zeros(1, np.int32) if seen is not None else None, seen, None)
        if not raw_scores:
            s = self._clip_scores(s, fold_in=True)
        return self._to_ids(c, s, True)

    def _fold_in_scores(self, item_codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Scores over all items for a new user with these items: rating models predict what they
        predict for an unknown user (mu + b_i), ranking models rank by popularity; models that can
        place a new user (factor models, item-item models) override this."""
        if self.task == "explicit":
            n = len(self.items_)
            return self._fallback(np.full(n, -1, dtype=np.int64), np.arange(n))
        return self.item_popularity_.astype(np.float32)

    # ---------------------------------------------------------------- persistence
    def save(self, path, *, seen: bool = True) -> None:
        """Save to a versioned directory of .npy arrays + JSON (atomic; no pickle).

        ``seen=False`` leaves the training matrix ``seen_`` out, for a model whose scores do not
        read it (:attr:`_scores_read_seen` False: factor and embedding models): the directory is
        smaller (20M ratings: 160 MB of matrix beside 42 MB of 64 factors for 165k ids), and the
        loaded model's ``recommend`` then takes the history to exclude as ``seen=`` (or
        ``exclude_seen=False``).
        """
        from ..persist import save_model

        if not seen and self._scores_read_seen:
            raise ModelError(f"{type(self).__name__} scores users from their training rows, so it cannot be "
                             "saved without them (seen=False is for factor and embedding models)")
        save_model(self, path, seen=seen)

    @classmethod
    def load(cls, path) -> "Recommender":
        """Load a model saved by :meth:`save` (never executes code from the directory)."""
        from ..persist import load_model

        model = load_model(path)
        if not isinstance(model, cls):
            raise ModelError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def history_frame(self) -> pd.DataFrame:
        """``history_`` as a DataFrame (one row per epoch)."""
        self._check_fitted()
        return pd.DataFrame(getattr(self, "history_", []))


# ---------------------------------------------------------------- latent models


class EmbeddingModel(Recommender):
    """A model that learns a vector per user and per item (``user_factors_``, ``item_factors_``):
    :meth:`similar_items` and :meth:`similar_users` compare them by cosine. Its scores come from
    the learned arrays alone, so it can be saved without its training matrix (``save(seen=False)``)."""

    _scores_read_seen = False

    def _embeddings(self, side: str) -> np.ndarray:
        """The vectors compared by similarity (``side`` is "user" or "item"); a model whose factors
        carry a non-directional column (BPR's item bias) returns the rest."""
        return self.user_factors_ if side == "user" else self.item_factors_

    def _build_caches(self) -> None:
        super()._build_caches()
        # per side: the compared vectors (contiguous; no copy unless _embeddings slices) and the
        # inverse of their norms, not a normalised copy (that would double the model's memory)
        self._cosine = {}
        for side in ("user", "item"):
            f = np.ascontiguousarray(self._embeddings(side))
            norms = np.sqrt(np.einsum("ij,ij->i", f, f, dtype=np.float64))
            self._cosine[side] = (f, (1.0 / np.maximum(norms, 1e-12)).astype(np.float32))

    def _cosine_block(self, side: str, rows: np.ndarray) -> np.ndarray:
        """Cosine similarity of the vectors ``rows`` of ``side`` to every vector of that side."""
        v, inv = self._cosine[side]
        s = v[rows] @ v.T
        s *= inv[rows, None]
        s *= inv[None, :]
        return s.astype(np.float32, copy=False)

    def _item_similarity_block(self, i: np.ndarray) -> np.ndarray:
        return self._cosine_block("item", i)

    def _user_similarity_block(self, u: np.ndarray) -> np.ndarray:
        return self._cosine_block("user", u)


class FactorModel(EmbeddingModel):
    """A latent-factor model: ``s_ui = p_u · q_i``, plus ``mu + b_u + b_i`` when it learns biases
    (``user_factors_`` P, ``item_factors_`` Q, ``user_bias_``, ``item_bias_``).

    It gets pair scores, the fused top-N kernel (BLAS scores and a one-pass top-k per thread,
    memory bounded), cosine similarity and a ridge fold-in of new users from its factors.
    """

    _state = ("user_factors_", "item_factors_")
    #: users gathered at once by the fused top-N (bounds the memory of the gathered vectors)
    _fused_rows: int = 16384
    #: users scored at once per thread by the fused top-N
    _fused_block: int = 128

    def _predict_codes(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        s = (self.user_factors_[u] * self.item_factors_[i]).sum(axis=1)  # 2x faster than einsum here
        if self.user_bias_ is not None:
            s = s + self.user_bias_[u] + self.item_bias_[i] + np.float32(self.global_mean_)
        return s.astype(np.float32)

    def _score_block(self, u: np.ndarray) -> np.ndarray:
        s = self.user_factors_[u] @ self.item_factors_.T
        if self.item_bias_ is not None:
            s += self.item_bias_[None, :]
            s += (self.user_bias_[u] + np.float32(self.global_mean_))[:, None]
        return s

    def _topn_codes(self, u: np.ndarray, n: int, *, exclude_seen: bool = True,
                    item_mask: np.ndarray | None = None, history=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by ``user_factors_ @ item_factors_.T`` (+ biases): each thread scores its own
        block of users with BLAS and keeps a one-pass top-k, so memory stays bounded."""
        from .kernels.topn import topn_factors

        k = int(min(n, len(self.items_)))
        out_c = np.full((len(u), k), -1, dtype=np.int32)
        out_s = np.full((len(u), k), -np.inf, dtype=np.float32)
        rows, seen = self._seen_rows(u, exclude_seen, history)
        ib, ub = self.item_bias_, self.user_bias_
        # one block of users (a request) gains nothing from a second thread but waits for it
        threads = 1 if len(u) <= self._fused_block else (getattr(self, "n_threads", 0) or 0)
        with kernel_threads(threads):
            for start in range(0, len(u), self._fused_rows):
                block = u[start:start + self._fused_rows]
                row_add = None
                if ib is not None and ub is not None:
                    row_add = ub[block] + np.float32(self.global_mean_)
                c, s = topn_factors(self.user_factors_[block], self.item_factors_, k,
                                    None if rows is None else rows[start:start + len(block)], seen, item_mask,
                                    item_add=ib, row_add=row_add, block=self._fused_block)
                out_c[start:start + len(block)] = c
                out_s[start:start + len(block)] = s
        return out_c, out_s

    def _fold_in_scores(self, item_codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """A new user's scores from the factors folded in (rating models: mu + b_i + p.q_i)."""
        s = self._fold_in_factors(item_codes, weights) @ self.item_factors_.T
        if self.item_bias_ is not None:
            s = s + self.item_bias_ + np.float32(self.global_mean_ if self.task == "explicit" else 0.0)
        return s

    def _fold_in_factors(self, item_codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Ridge solution of a new user's factors from the fitted item factors (explicit default):
        ``(Q'Q + lambda n I) p = Q'(r - mu - b_i)`` with the model's ``regularization`` (0 means none)."""
        v = self.item_factors_[item_codes].astype(np.float64)
        target = weights.astype(np.float64)
        if self.item_bias_ is not None:
            target = target - self.global_mean_ - self.item_bias_[item_codes]
        lam = self.get_params(deep=False).get("regularization")
        reg = (0.1 if lam is None else float(lam)) * max(len(item_codes), 1)
        if reg == 0.0:  # no ridge term: the least-squares (minimum-norm) solution
            return np.linalg.lstsq(v, target, rcond=None)[0].astype(np.float32)
        a = v.T @ v + reg * np.eye(v.shape[1])
        return np.linalg.solve(a, v.T @ target).astype(np.float32)


class ItemWeightsModel(Recommender):
    """Scoring shared by the models whose scores are s_u = x_u W, with ``item_weights_`` a learned
    item x item matrix W: dense for EASE, EDLAE and DLAE, sparse for RP3beta. A subclass learns W in
    ``_fit`` and says what ``similar_items`` reads."""

    task = "implicit"

    def _build_caches(self) -> None:
        super()._build_caches()
        w = self.item_weights_
        self._columns = w.tocsc() if sp.issparse(w) else w  # predict reads W by column

    def _score_block(self, u):
        s = self.seen_[u] @ self.item_weights_
        return np.asarray(s.toarray() if sp.issparse(s) else s, dtype=np.float32)

    def _predict_codes(self, u, i):
        out = np.empty(len(u), dtype=np.float32)
        for s in range(0, len(u), 4096):
            rows = self.seen_[u[s:s + 4096]]
            cols = self._columns[:, i[s:s + 4096]].T  # (block, n_items)
            out[s:s + 4096] = np.asarray(rows.multiply(cols).sum(axis=1)).ravel()
        return out

    def _fold_in_scores(self, item_codes, weights):
        _feedback.check_weights(weights, "recommend_for_interactions")
        if len(item_codes) == 0:
            return self.item_popularity_.astype(np.float32)
        return np.asarray(weights.astype(np.float32) @ self.item_weights_[item_codes], dtype=np.float32).ravel()


def _cooccurrence_cosine(rows: sp.csr_matrix, which: np.ndarray) -> np.ndarray:
    """Cosine between rows ``which`` of a sparse matrix and all its rows (dense result)."""
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    normed = sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ rows
    return np.asarray((normed[which] @ normed.T).todense(), dtype=np.float32)


def as_id_array(ids, what: str, *, single_ok: bool = True) -> tuple[np.ndarray, bool]:
    """``ids`` as a 1-d array and whether a single id (a scalar) was given.

    Raises :class:`~latentrec.errors.DataError` for arrays of two or more
    dimensions (and for a scalar where a sequence is needed).
    """
    if np.ndim(ids) == 0:
        if not single_ok:
            raise DataError(f"{what} must be a sequence of ids, got the single value {show(ids)}")
        value = ids.item() if isinstance(ids, np.ndarray) else ids
        return np.array([value], dtype=object if isinstance(value, str) else None), True
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise DataError(f"{what} must be one id or a 1-d sequence of ids, got an array of shape {arr.shape}")
    return arr, False


def _weights(weights, what: str) -> np.ndarray:
    """Interaction weights as a 1-d float32 array (DataError when not numbers)."""
    try:
        w = np.asarray(weights, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be numbers, got {show(weights)[:80]}") from None
    if w.ndim != 1:
        raise DataError(f"{what} must be a 1-d sequence of numbers, got shape {w.shape}")
    return w


def _pairs(X) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, item ids) of the rows of X, in order, without deduplication."""
    if isinstance(X, Interactions):
        return X.users.take(X.user_codes), X.items.take(X.item_codes)
    if isinstance(X, pd.DataFrame):
        cols = list(X.columns)
        if "user" in cols and "item" in cols:
            return X["user"].to_numpy(), X["item"].to_numpy()
        raise DataError(f"X needs columns named 'user' and 'item', got columns {cols}")
    arr = np.asarray(X)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise DataError(f"X must be Interactions, a DataFrame or an (n, 2) array; got shape {arr.shape}")
    return arr[:, 0], arr[:, 1]


__all__ = ["Recommender", "EmbeddingModel", "FactorModel", "ItemWeightsModel", "Interval", "Options", "UnknownIdError"]
