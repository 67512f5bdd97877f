"""Explicit-rating matrix factorisation: biased MF by SGD, ALS with biases, SVD++.

Notation (docs/notation): r̂_ui = μ + b_u + b_i + p_u · q_i, with μ the global
mean, b_u / b_i the user / item biases and p_u, q_i the latent factors. SVD++
adds the implicit-feedback term |N(u)|^-1/2 Σ_{j ∈ N(u)} y_j to p_u (N(u): the
items u rated in training). The numba kernels are in
:mod:`latentrec.models.kernels.sgd` and :mod:`latentrec.models.kernels.als`.

How the defaults were chosen: on ml-100k, every candidate setting was scored on
validation folds carved from the *training* part of each 5-fold split (10 % of
the training rows, seed 1) — never on the test folds — and the best mean
validation RMSE was kept (benchmarks/explicit.py ``--tune`` reruns that search).
"""

from __future__ import annotations

import numpy as np

from ..._util import balanced_bounds, check_random_state, kernel_threads, resolve_threads
from ...data.interactions import Interactions
from ..base import FactorModel, Interval, Options
from ..kernels import als as als_kern
from ..kernels import sgd as sgd_kern

_COMMON = {
    "n_factors": Interval(int, 1, None),
    "n_epochs": Interval(int, 1, None),
    "regularization": Interval(float, 0, None),
    "bias_regularization": Interval(float, 0, None),
    "init_std": Interval(float, 0, None),
    "n_threads": Interval(int, 0, None),
    "early_stopping_rounds": Interval(int, 1, None, none_ok=True),
    "verbose": Options(True, False),
}
_SGD = {
    **_COMMON,
    "learning_rate": Interval(float, 0, None, closed="right"),
    "lr_decay": Interval(float, 0, 1, closed="right"),
}


class _MFBase(FactorModel):
    """Shared plumbing: initialisation, the epoch loop wiring, snapshots for early stopping."""

    _state = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")

    def _init_params(self, data: Interactions, rng: np.random.Generator, k: int) -> None:
        std = float(self.init_std)
        self.user_factors_ = rng.normal(0.0, std, (data.n_users, k)).astype(np.float32)
        self.item_factors_ = rng.normal(0.0, std, (data.n_items, k)).astype(np.float32)
        if getattr(self, "biased", True):
            self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
            self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)

    def _bias_arrays(self):
        """(b_u, b_i, μ) for the kernels; zero-length arrays and μ = 0 for an unbiased model."""
        if self.user_bias_ is None:
            return np.zeros(0, np.float32), np.zeros(0, np.float32), np.float32(0.0)
        return self.user_bias_, self.item_bias_, np.float32(self.global_mean_)


class BiasedMF(_MFBase):
    """Biased matrix factorisation (Funk SVD) trained by stochastic gradient descent.

    r̂_ui = μ + b_u + b_i + p_u · q_i (``biased=False``: r̂_ui = p_u · q_i). Every
    epoch visits the training ratings in a fresh random order (copied into
    contiguous buffers) and, for each rating with error e = r_ui − r̂_ui, updates
    b_u += η(e − λ_b b_u), b_i += η(e − λ_b b_i), p_u += η(e q_i − λ p_u),
    q_i += η(e p_u − λ q_i), with η = ``learning_rate`` · ``lr_decay`` ** epoch.

    Parameters
    ----------
    n_factors : int, default 100
    n_epochs : int, default 80
    learning_rate : float, default 0.015
        η at the first epoch (> 0).
    regularization : float, default 0.1
        λ on the factors.
    bias_regularization : float, default 0.02
        λ_b on the biases.
    lr_decay : float in (0, 1], default 0.97
        η is multiplied by this after every epoch.
    init_std : float, default 0.1
        Factors start as N(0, init_std²); biases start at 0.
    biased : bool, default True
        False gives the plain dot-product model (no μ, b_u, b_i).
    n_threads : int, default 0
        0 uses every core: the shuffled ratings are cut into one chunk per thread
        and the threads update the shared factors without locks (Hogwild), so
        results vary slightly between runs. 1 is the deterministic mode: the same
        ``random_state`` gives bit-identical factors.
    early_stopping_rounds : int or None, default None
        With ``eval_set`` given to ``fit``: stop after this many epochs without a
        better validation RMSE and restore the best epoch's parameters.
    random_state : int, Generator or None
    verbose : bool, default False

    Attributes
    ----------
    user_factors_, item_factors_ : float32 (n_users, k), (n_items, k)
    user_bias_, item_bias_ : float32 (absent when ``biased=False``)
    history_ : list of dict
        Per epoch: ``train_loss`` — the training RMSE of the errors seen during the
        epoch (each before its own update), ``learning_rate``, ``epoch_s`` and
        ``val_rmse`` when ``eval_set`` was given.
    """

    _constraints = {**_SGD, "biased": Options(True, False)}

    def __init__(self, *, n_factors: int = 100, n_epochs: int = 80, learning_rate: float = 0.015,
                 regularization: float = 0.1, bias_regularization: float = 0.02, lr_decay: float = 0.97,
                 init_std: float = 0.1, biased: bool = True, n_threads: int = 0,
                 early_stopping_rounds: int | None = None, random_state=None, verbose: bool = False):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.lr_decay = lr_decay
        self.init_std = init_std
        self.biased = biased
        self.n_threads = n_threads
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, data, eval_data):
        rng = check_random_state(self.random_state)
        self._init_params(data, rng, self.n_factors)
        n_threads = resolve_threads(self.n_threads)
        n = len(data)
        buf_u = np.empty(n, np.int32)
        buf_i = np.empty(n, np.int32)
        buf_r = np.empty(n, np.float32)
        reg, reg_b = np.float32(self.regularization), np.float32(self.bias_regularization)

        def step(epoch):
            lr = np.float32(self.learning_rate * self.lr_decay ** epoch)
            perm = rng.permutation(n)
            bu, bi, mu = self._bias_arrays()
            with kernel_threads(n_threads):
                sgd_kern.gather_rows(perm, data.user_codes, data.item_codes, data.values, buf_u, buf_i, buf_r)
                sq = sgd_kern.sgd_epoch(buf_u, buf_i, buf_r, self.user_factors_, self.item_factors_, bu, bi,
                                        mu, lr, reg, reg_b, bool(self.biased), n_threads)
            loss = float(np.sqrt(sq.sum() / n))
            return {"train_loss": loss, "learning_rate": float(lr)}

        self._fit_epochs(step, eval_data)


class ALS(_MFBase):
    """Explicit alternating least squares with biases (count-weighted regularisation).

    Alternates exact solves: all users' [p_u, b_u] given the items, then all
    items' [q_i, b_i] given the users, each row minimising its squared error plus
    n_u (λ |p_u|² + λ_b b_u²) (ALS-WR, as Spark MLlib; n_u = the row's ratings).
    Rows are solved in parallel (numba ``prange``, chunks of equal nnz) by a
    float64 Cholesky factorisation of the (k+1)² normal matrix. Deterministic
    for any ``n_threads``.

    Parameters
    ----------
    n_factors : int, default 100
    n_epochs : int, default 6
        Each epoch is one user sweep and one item sweep (validation RMSE bottoms
        out after 4-6 epochs on ml-100k at these settings).
    regularization : float, default 0.1
        λ on the factors.
    bias_regularization : float, default 0.05
        λ_b on the biases.
    init_std : float, default 0.1
        Item factors start as N(0, init_std²) (users are solved first).
    biased : bool, default True
        False solves the plain dot-product model around 0 (no μ, b_u, b_i).
    n_threads : int, default 0 (all cores)
    early_stopping_rounds : int or None, default None
        Patience on ``val_rmse`` when ``fit`` gets an ``eval_set`` (best epoch restored).
    random_state : int, Generator or None
    verbose : bool, default False

    Attributes
    ----------
    user_factors_, item_factors_, user_bias_, item_bias_ : float32
    history_ : list of dict
        ``train_loss`` is the training RMSE after the epoch; ``val_rmse`` with ``eval_set``.
    """

    _constraints = {**_COMMON, "regularization": Interval(float, 0, None, closed="right"),
                    "bias_regularization": Interval(float, 0, None, closed="right"),
                    "biased": Options(True, False)}

    def __init__(self, *, n_factors: int = 100, n_epochs: int = 6, regularization: float = 0.1,
                 bias_regularization: float = 0.05, init_std: float = 0.1, biased: bool = True,
                 n_threads: int = 0, early_stopping_rounds: int | None = None, random_state=None,
                 verbose: bool = False):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.init_std = init_std
        self.biased = biased
        self.n_threads = n_threads
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, data, eval_data):
        rng = check_random_state(self.random_state)
        self._init_params(data, rng, self.n_factors)
        self.user_factors_[:] = 0.0
        n_threads = resolve_threads(self.n_threads)
        R = data.to_csr()
        C = R.T.tocsr()
        C.sort_indices()
        rows = [(R.indptr.astype(np.int64), R.indices.astype(np.int32), R.data.astype(np.float32)),
                (C.indptr.astype(np.int64), C.indices.astype(np.int32), C.data.astype(np.float32))]
        chunks = 8 * n_threads
        bounds = [balanced_bounds(np.diff(r[0]) + 1, chunks) for r in rows]
        reg, reg_b, biased = float(self.regularization), float(self.bias_regularization), bool(self.biased)
        n = len(data)

        def step(epoch):
            bu, bi, mu = self._bias_arrays()
            if not biased:
                bu = bi = np.zeros(1, np.float32)
            with kernel_threads(n_threads):
                self._check_solved(als_kern.als_sweep(*rows[0], self.user_factors_, bu, self.item_factors_, bi, mu,
                                                      reg, reg_b, biased, bounds[0]), "user", epoch)
                self._check_solved(als_kern.als_sweep(*rows[1], self.item_factors_, bi, self.user_factors_, bu, mu,
                                                      reg, reg_b, biased, bounds[1]), "item", epoch)
                sq = sgd_kern.squared_error(data.user_codes, data.item_codes, data.values, self.user_factors_,
                                            self.item_factors_, bu, bi, mu, biased, n_threads)
            return {"train_loss": float(np.sqrt(sq.sum() / n))}

        self._fit_epochs(step, eval_data)


class SVDpp(_MFBase):
    """SVD++ (Koren 2008): biased MF plus the implicit feedback of which items a user rated.

    r̂_ui = μ + b_u + b_i + q_i · (p_u + |N(u)|^-1/2 Σ_{j ∈ N(u)} y_j), trained by
    SGD user by user with the updates of Koren (2008) / Surprise's SVDpp. The
    implicit sum is kept per user and updated in place, and the y_j updates are
    accumulated and applied once per user pass — the same arithmetic as the
    per-rating formulation, linear instead of quadratic in a user's ratings
    (:func:`latentrec.models.kernels.sgd.svdpp_epoch`). Users are visited in a
    fresh random order every epoch; with several threads, chunks of users of equal
    rating count run in parallel without locks (Hogwild).

    Parameters
    ----------
    n_factors : int, default 100
    n_epochs : int, default 60
    learning_rate : float, default 0.01
    regularization : float, default 0.08
        λ on p_u, q_i and y_j.
    bias_regularization : float, default 0.02
    lr_decay : float in (0, 1], default 0.97
    init_std : float, default 0.1
        p, q and y start as N(0, init_std²).
    n_threads : int, default 0
        0: all cores (not bit-reproducible); 1: deterministic.
    early_stopping_rounds : int or None, default None
    random_state : int, Generator or None
    verbose : bool, default False

    Attributes
    ----------
    user_factors_ : float32 (n_users, k)
        The effective user vectors p_u + |N(u)|^-1/2 Σ y_j (so scoring, top-N and
        similarity use the full model).
    user_own_factors_ : float32 (n_users, k)
        p_u alone.
    implicit_factors_ : float32 (n_items, k)
        y_j.
    item_factors_, user_bias_, item_bias_ : float32
    history_ : ``train_loss`` (RMSE of the pre-update errors in the epoch), ``learning_rate``, ``val_rmse``.
    """

    _constraints = _SGD
    _state = ("user_own_factors_", "item_factors_", "implicit_factors_", "user_bias_", "item_bias_")

    def __init__(self, *, n_factors: int = 100, n_epochs: int = 60, learning_rate: float = 0.01,
                 regularization: float = 0.08, bias_regularization: float = 0.02, lr_decay: float = 0.97,
                 init_std: float = 0.1, n_threads: int = 0, early_stopping_rounds: int | None = None,
                 random_state=None, verbose: bool = False):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.lr_decay = lr_decay
        self.init_std = init_std
        self.n_threads = n_threads
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, data, eval_data):
        rng = check_random_state(self.random_state)
        self._init_params(data, rng, self.n_factors)
        self.user_own_factors_ = self.user_factors_
        self.implicit_factors_ = rng.normal(0.0, float(self.init_std),
                                            (data.n_items, self.n_factors)).astype(np.float32)
        n_threads = resolve_threads(self.n_threads)
        R = data.to_csr()
        indptr, indices, values = R.indptr.astype(np.int64), R.indices.astype(np.int32), R.data.astype(np.float32)
        counts = np.diff(indptr)
        reg, reg_b = np.float32(self.regularization), np.float32(self.bias_regularization)
        n = len(data)

        def step(epoch):
            lr = np.float32(self.learning_rate * self.lr_decay ** epoch)
            order = rng.permutation(data.n_users).astype(np.int32)
            bounds = balanced_bounds(counts[order] + 1, n_threads)
            with kernel_threads(n_threads):
                sq = sgd_kern.svdpp_epoch(indptr, indices, values, order, bounds, self.user_own_factors_,
                                          self.item_factors_, self.implicit_factors_, self.user_bias_,
                                          self.item_bias_, np.float32(self.global_mean_), lr, reg, reg_b)
            loss = float(np.sqrt(sq.sum() / n))
            return {"train_loss": loss, "learning_rate": float(lr)}

        self._indptr, self._indices = indptr, indices
        try:
            self._fit_epochs(step, eval_data)
            self._effective()
        finally:
            del self._indptr, self._indices

    def _effective(self) -> None:
        """user_factors_ = p_u + |N(u)|^-1/2 Σ y_j from the current parameters."""
        with kernel_threads(self.n_threads):
            z = sgd_kern.implicit_sums(self._indptr, self._indices, self.implicit_factors_)
        self.user_factors_ = self.user_own_factors_ + z

    def _evaluator(self, eval_data):
        inner = super()._evaluator(eval_data)
        if inner is None:
            return None

        def evaluate():
            self._effective()
            return inner()

        return evaluate

    def _fold_in_factors(self, item_codes, weights):
        """A new user's effective vector: the implicit term of the given items plus ridge-solved p."""
        if len(item_codes) == 0:
            return np.zeros(self.item_factors_.shape[1], np.float32)
        z = self.implicit_factors_[item_codes].sum(axis=0) / np.sqrt(len(item_codes))
        q = self.item_factors_[item_codes].astype(np.float64)
        target = weights - self.global_mean_ - self.item_bias_[item_codes] - q @ z
        lam = float(self.regularization) * len(item_codes)
        p = np.linalg.solve(q.T @ q + lam * np.eye(q.shape[1]), q.T @ target)
        return (p + z).astype(np.float32)


__all__ = ["BiasedMF", "ALS", "SVDpp"]
