"""ImplicitALS: weighted regularised matrix factorisation (Hu, Koren & Volinsky 2008).

Notation (docs/notation.md, docs/implicit.md): d_ui is the feedback weight (a
count, a play time, 1 for a like), p_ui = 1 when d_ui > 0 else 0, and the
confidence is

* ``confidence="linear"``: c_ui = 1 + alpha d_ui
* ``confidence="log"``:    c_ui = 1 + alpha log(1 + d_ui / epsilon)

on observed cells and w0 = ``unobserved_weight`` everywhere else (1, the
Hu–Koren–Volinsky convention, by default). The loss is

    sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + sum_u lambda_u |x_u|^2 + sum_i lambda_i |y_i|^2

over *all* cells, with the frequency-scaled penalty of Rendle et al. 2021
("Revisiting the performance of iALS on item recommendation benchmarks")
lambda_u = lambda (n_u + w0 n_items)^nu, n_u the row's stored cells (likewise
lambda_i with n_users); ``nu=0`` (default) is the constant lambda. The ``implicit`` library instead gives an observed cell the
confidence alpha_implicit d_ui itself, so for binary data implicit's alpha
corresponds to latentrec's ``alpha + 1``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..._util import check_random_state, kernel_threads, resolve_threads
from ...errors import DataError
from .._feedback import append_ids, check_weights, confidence, replace_rows, rows_for, to_training
from ..base import FactorModel, Interval, Options
from ..kernels import ials as kern


class ImplicitALS(FactorModel):
    """Weighted ALS for implicit feedback, solved by conjugate gradient or exactly.

    Each epoch updates every item's factors given the users', then every user's
    given the items' (so the fitted user factors are the exact or CG solution for
    the final item factors, as :meth:`recommend_for_interactions` computes them).

    Parameters
    ----------
    n_factors : int, default 64
        Dimension of the latent space.
    regularization : float, default 50.0
        lambda, the L2 penalty on every factor vector (not scaled by counts).
    alpha : float, default 5.0
        Confidence slope: c = 1 + alpha d (linear) or 1 + alpha log(1 + d/epsilon).
        ``alpha=0`` weighs observed and unobserved cells alike.
    unobserved_weight : float, default 1.0
        w0 > 0, the weight of every unobserved cell (Rendle et al.'s alpha_0).
    nu : float, default 0.0
        Exponent of the frequency-scaled penalty lambda (n_u + w0 n_items)^nu;
        0 keeps lambda constant.

    The defaults of ``regularization`` and ``alpha`` are the values chosen on
    validation splits carved from the training data of both ml-100k and
    ml-latest-small by ``benchmarks/implicit_feedback.py`` (NDCG@10 on 5-fold ml-100k:
    0.442 against 0.360 with 1.0 / 1.0).
    confidence : {"linear", "log"}, default "linear"
    epsilon : float, default 1.0
        Scale of the log confidence.
    n_epochs : int, default 15
        Alternating sweeps (items then users).
    solver : {"cg", "cholesky"}, default "cg"
        "cg": ``cg_steps`` warm-started conjugate-gradient steps per row (fast);
        "cholesky": the exact solution of each row's normal equations (float64).
    cg_steps : int, default 3
    n_threads : int, default 0
        Threads for the numba kernels (0: all cores).
    random_state : int, Generator or None
        Seeds the initial factors; with the same seed a refit is identical
        (each row's update does not depend on the thread that runs it).
    early_stopping_rounds : int or None, default None
        With ``eval_set``: stop after this many epochs without a better validation
        NDCG@10 and keep the best epoch's factors (``history_`` has ``val_ndcg``).
    verbose : bool, default False
        Progress bar per epoch.

    Attributes
    ----------
    user_factors_, item_factors_ : float32 arrays (n_users, n_factors), (n_items, n_factors)
    history_ : list of dict
        Per epoch: ``train_loss`` (the weighted squared error plus penalty divided
        by the total confidence n_users n_items + sum (c - 1)), ``epoch_s``, and
        with ``eval_set`` the ranking metrics ``val_precision``, ``val_ndcg``, ... at 10.
    """

    task = "implicit"
    _constraints = {
        "n_factors": Interval(int, 1, None),
        "regularization": Interval(float, 0, None),
        "alpha": Interval(float, 0, None),
        "unobserved_weight": Interval(float, 0, None, closed="neither"),
        "nu": Interval(float, 0, None),
        "confidence": Options("linear", "log"),
        "epsilon": Interval(float, 0, None, closed="right"),
        "n_epochs": Interval(int, 0, None),
        "solver": Options("cg", "cholesky"),
        "cg_steps": Interval(int, 1, None),
        "n_threads": Interval(int, 0, None),
        "verbose": Options(True, False),
        "early_stopping_rounds": Interval(int, 1, None, none_ok=True),
    }

    def __init__(self, *, n_factors: int = 64, regularization: float = 50.0, alpha: float = 5.0,
                 unobserved_weight: float = 1.0, nu: float = 0.0, confidence: str = "linear", epsilon: float = 1.0, n_epochs: int = 15, solver: str = "cg",
                 cg_steps: int = 3, n_threads: int = 0, early_stopping_rounds: int | None = None, random_state=None,
                 verbose: bool = False):
        self.n_factors = n_factors
        self.regularization = regularization
        self.alpha = alpha
        self.unobserved_weight = unobserved_weight
        self.nu = nu
        self.confidence = confidence
        self.epsilon = epsilon
        self.n_epochs = n_epochs
        self.solver = solver
        self.cg_steps = cg_steps
        self.n_threads = n_threads
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ fitting
    def _coefs(self, d):
        """(c - w0, c p) per stored cell (the kernels' acoef, bcoef)."""
        acoef, bcoef = confidence(d, self.confidence, float(self.alpha), float(self.epsilon))
        return (acoef + np.float32(1.0 - float(self.unobserved_weight))).astype(np.float32), bcoef

    def _row_penalty(self, counts: np.ndarray, n_other: int) -> np.ndarray:
        """lambda_r = lambda (n_r + w0 n_other)^nu per row (float32)."""
        lam = float(self.regularization)
        if float(self.nu) == 0.0:
            return np.full(len(counts), lam, dtype=np.float32)
        base = np.asarray(counts, dtype=np.float64) + float(self.unobserved_weight) * n_other
        return (lam * base ** float(self.nu)).astype(np.float32)

    def _fit(self, data, eval_data):
        csr = to_training(data)
        csc = csr.T.tocsr()
        rng = check_random_state(self.random_state)
        k = self.n_factors
        self.user_factors_ = (rng.standard_normal((data.n_users, k)) * 0.01).astype(np.float32)
        self.item_factors_ = (rng.standard_normal((data.n_items, k)) * 0.01).astype(np.float32)
        users = _Side(csr, *self._coefs(csr.data))
        items = _Side(csc, *self._coefs(csc.data))
        users.reg = self._row_penalty(np.diff(users.indptr), data.n_items)
        items.reg = self._row_penalty(np.diff(items.indptr), data.n_users)
        total_conf = (float(self.unobserved_weight) * data.n_users * data.n_items
                      + float(users.acoef.sum(dtype=np.float64)))
        n_threads = resolve_threads(self.n_threads)

        def step(epoch):
            with kernel_threads(n_threads):
                self._sweep(items, self.item_factors_, self.user_factors_, n_threads, name="item", epoch=epoch)
                loss = self._sweep(users, self.user_factors_, self.item_factors_, n_threads, name="user",
                                   epoch=epoch)
            penalty = (float(users.reg @ np.square(self.user_factors_, dtype=np.float64).sum(axis=1))
                       + float(items.reg @ np.square(self.item_factors_, dtype=np.float64).sum(axis=1)))
            return {"train_loss": (loss + penalty) / total_conf}

        self._fit_epochs(step, eval_data)

    def _sweep(self, side: "_Side", X: np.ndarray, Y: np.ndarray, n_threads: int, solver: str | None = None,
               *, name: str = "user", epoch: int | None = None, ids=None):
        """Update every row of X (the ``name`` side) from Y in place; returns the weighted squared
        error of those rows. The Cholesky solver raises :class:`ModelError` on a singular system."""
        w0 = float(self.unobserved_weight)
        reg = side.reg if side.reg is not None else self._row_penalty(np.diff(side.indptr), Y.shape[0])
        bounds = side.bounds(self.n_factors, 4 * n_threads)
        if (solver or self.solver) == "cholesky":
            y64 = Y.astype(np.float64)
            yty = w0 * (y64.T @ y64)
            out = np.zeros(len(bounds) - 1, dtype=np.float64)
            failed = kern.cholesky_sweep(side.indptr, side.indices, side.acoef, side.bcoef, X, Y, yty, yty, reg, w0,
                                         bounds, out)
            self._check_solved(failed, name, epoch, ids)
            return float(out.sum(dtype=np.float64))
        yty = (w0 * (Y.T @ Y)).astype(np.float32)
        out = np.zeros(len(bounds) - 1, dtype=np.float32)
        kern.cg_sweep(side.indptr, side.indices, side.acoef, side.bcoef, X, Y, yty, yty, reg,
                      np.float32(w0), int(self.cg_steps), bounds, out)
        return float(out.sum(dtype=np.float64))

    # ------------------------------------------------------------ fold-in
    def _build_caches(self) -> None:
        super()._build_caches()
        v = self.item_factors_.astype(np.float64)
        self._item_gram = v.T @ v  # Y'Y of every fold-in

    def _fold_in_factors(self, item_codes, weights):
        """Exact least squares for a new user's factors with confidence weights (float64)."""
        check_weights(weights, "recommend_for_interactions")
        d = np.bincount(item_codes, weights=weights, minlength=len(self.items_))
        codes = np.flatnonzero(np.bincount(item_codes, minlength=len(self.items_)) > 0)
        acoef, bcoef = self._coefs(d[codes])
        v = self.item_factors_[codes].astype(np.float64)
        lam = float(self._row_penalty(np.array([len(codes)]), len(self.items_))[0])
        a = float(self.unobserved_weight) * self._item_gram + lam * np.eye(self.n_factors)
        a += (v * acoef[:, None].astype(np.float64)).T @ v
        b = v.T @ bcoef.astype(np.float64)
        try:
            x = np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            x = None
        if x is None or not np.isfinite(x).all():
            self._check_solved(0, "user", ids="the visitor folded in")
        return x.astype(np.float32)

    def _fold_in_scores(self, item_codes, weights):
        check_weights(weights, "recommend_for_interactions")
        if len(item_codes) == 0:  # nothing known about this visitor: most popular first
            return self.item_popularity_.astype(np.float32)
        return self._fold_in_factors(item_codes, weights) @ self.item_factors_.T

    # ------------------------------------------------------------ partial fit
    def partial_fit_users(self, user_ids, interactions) -> "ImplicitALS":
        """Re-solve the factors of some users from their (new) interactions, items fixed.

        Parameters
        ----------
        user_ids : sequence of user ids
            Known users get their history replaced; new ids are appended to the
            vocabulary.
        interactions : sparse matrix (len(user_ids), n_items) in the model's item
            codes, or Interactions / DataFrame of (user, item[, weight]) rows for
            these users. Unknown items are dropped and counted in ``unknown_counts_``.

        Each row is solved exactly (Cholesky), as :meth:`recommend_for_interactions` does.
        """
        self._check_call()
        ids, rows, n_unknown = rows_for(user_ids, interactions, self.users_, self.items_, "user")
        side = _Side(rows, *self._coefs(rows.data))
        sub = np.zeros((len(ids), self.n_factors), dtype=np.float32)
        with kernel_threads(self.n_threads) as n_threads:  # solved before anything changes: an error leaves
            self._sweep(side, sub, self.item_factors_, n_threads, solver="cholesky", name="user", ids=ids)
        users, codes = append_ids(self.users_, ids)  # the model as it was
        n = len(users)
        grown = np.zeros((n, self.n_factors), dtype=np.float32)
        grown[:len(self.user_factors_)] = self.user_factors_
        self.users_ = users
        self.seen_ = replace_rows(self.seen_, codes, rows, n)
        grown[codes] = sub
        self.user_factors_ = grown
        self.item_popularity_ = np.bincount(self.seen_.indices, minlength=len(self.items_)).astype(np.int64)
        self.unknown_counts_ = {"items": n_unknown}
        self._build_caches()
        return self

    def partial_fit_items(self, item_ids, interactions) -> "ImplicitALS":
        """Re-solve the factors of some items from their (new) interactions, users fixed.

        ``interactions`` is a sparse matrix (len(item_ids), n_users) in the model's
        user codes, or Interactions / DataFrame of (user, item[, weight]) rows for
        these items; unknown users are dropped and counted. New item ids are appended.
        """
        self._check_call()
        ids, rows, n_unknown = rows_for(item_ids, interactions, self.items_, self.users_, "item")
        side = _Side(rows, *self._coefs(rows.data))
        sub = np.zeros((len(ids), self.n_factors), dtype=np.float32)
        with kernel_threads(self.n_threads) as n_threads:  # solved first, as in partial_fit_users
            self._sweep(side, sub, self.user_factors_, n_threads, solver="cholesky", name="item", ids=ids)
        items, codes = append_ids(self.items_, ids)
        n = len(items)
        grown = np.zeros((n, self.n_factors), dtype=np.float32)
        grown[:len(self.item_factors_)] = self.item_factors_
        self.items_ = items
        self.seen_ = replace_rows(self.seen_.T.tocsr(), codes, rows, n).T.tocsr()
        self.seen_.sort_indices()
        grown[codes] = sub
        self.item_factors_ = grown
        self.item_popularity_ = np.bincount(self.seen_.indices, minlength=n).astype(np.int64)
        self.unknown_counts_ = {"users": n_unknown}
        self._build_caches()
        return self


class _Side:
    """One side's CSR arrays and confidence coefficients, ready for the kernels."""

    def __init__(self, csr: sp.csr_matrix, acoef: np.ndarray, bcoef: np.ndarray):
        if csr.nnz and not csr.has_sorted_indices:
            raise DataError("internal: the training matrix must have sorted indices")
        self.indptr = csr.indptr.astype(np.int64)
        self.indices = csr.indices.astype(np.int32)
        self.acoef, self.bcoef = acoef, bcoef
        self.reg = None  # per-row penalties; computed by the model when None
        self._bounds = {}

    def bounds(self, n_factors: int, n_chunks: int) -> np.ndarray:
        key = (n_factors, n_chunks)
        if key not in self._bounds:
            self._bounds[key] = kern.cost_bounds(self.indptr, n_factors, n_chunks)
        return self._bounds[key]
