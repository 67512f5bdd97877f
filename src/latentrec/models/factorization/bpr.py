"""BPR: Bayesian personalised ranking (Rendle et al. 2009) by lock-free SGD.

Maximises sum log sigmoid(x_u . (y_i - y_j) + b_i - b_j) - lambda |theta|^2 over
sampled triples (u, i observed, j not observed by u). Weights are ignored: every
cell with a positive weight is a positive.
"""

from __future__ import annotations

import numpy as np

from ..._util import balanced_bounds, check_random_state, kernel_threads, resolve_threads
from .._feedback import check_weights, to_training
from ..base import FactorModel, Interval, Options
from ..kernels import bpr as kern

#: re-draws of a negative that the user has seen before the sample is skipped
MAX_TRIES = 16


class BPR(FactorModel):
    """Pairwise ranking factorisation with uniformly sampled negatives.

    An epoch visits every positive cell (u, i) once, user by user in a fresh
    random user order (x_u stays in cache while its positives are visited), and
    draws for each a negative j uniformly over the items, re-drawn while u has
    seen j (binary search in u's sorted CSR row).

    Parameters
    ----------
    n_factors : int, default 64
    learning_rate : float, default 0.05
    regularization : float, default 0.01
        L2 penalty applied at every step to the vectors (and item biases) touched.
    n_epochs : int, default 50
    n_threads : int, default 0
        Threads (0: all cores). Threads update shared factors without locks
        (Hogwild), so only ``n_threads=1`` is deterministic for a given
        ``random_state``; with more threads results vary slightly from run to
        run, as with implicit's BPR.
    random_state : int, Generator or None
    early_stopping_rounds : int or None, default None
        With ``eval_set``: stop after this many epochs without a better validation
        NDCG@10 and keep the best epoch's factors (``history_`` has ``val_ndcg``).
    verbose : bool, default False

    Attributes
    ----------
    user_factors_ : float32 (n_users, n_factors + 1)
        The last column is 1.
    item_factors_ : float32 (n_items, n_factors + 1)
        The last column is the item bias b_i, so ``user_factors_ @ item_factors_.T``
        is the ranking score.
    history_ : per epoch ``train_loss`` (mean -log sigmoid over the samples),
        ``train_accuracy`` (share of samples ranked right before the step), ``skipped``.
    """

    task = "implicit"
    _constraints = {
        "n_factors": Interval(int, 1, None),
        "learning_rate": Interval(float, 0, None, closed="right"),
        "regularization": Interval(float, 0, None),
        "n_epochs": Interval(int, 0, None),
        "n_threads": Interval(int, 0, None),
        "verbose": Options(True, False),
        "early_stopping_rounds": Interval(int, 1, None, none_ok=True),
    }

    def __init__(self, *, n_factors: int = 64, learning_rate: float = 0.05, regularization: float = 0.01,
                 n_epochs: int = 50, n_threads: int = 0, early_stopping_rounds: int | None = None, random_state=None,
                 verbose: bool = False):
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.n_epochs = n_epochs
        self.n_threads = n_threads
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, data, eval_data):
        csr = to_training(data).copy()
        csr.data = (csr.data > 0).astype(np.float32)
        csr.eliminate_zeros()
        csr.sort_indices()
        rng = check_random_state(self.random_state)
        k = self.n_factors
        self.user_factors_ = ((rng.random((data.n_users, k + 1)) - 0.5) / k).astype(np.float32)
        self.user_factors_[:, k] = 1.0
        self.item_factors_ = ((rng.random((data.n_items, k + 1)) - 0.5) / k).astype(np.float32)
        self.item_factors_[:, k] = 0.0
        indptr = csr.indptr.astype(np.int64)
        indices = csr.indices.astype(np.int32)
        counts = np.diff(indptr)
        n_threads = resolve_threads(self.n_threads)

        def step(epoch):
            order = rng.permutation(data.n_users).astype(np.int64)
            bounds = balanced_bounds(counts[order], n_threads)
            seeds = rng.integers(1, 2**62, size=n_threads, dtype=np.int64)
            stats = np.zeros((n_threads, 3), dtype=np.float64)
            if csr.nnz:
                with kernel_threads(n_threads):
                    kern.bpr_epoch(indptr, indices, order, bounds, self.user_factors_, self.item_factors_,
                                   float(self.learning_rate), float(self.regularization), seeds, MAX_TRIES, stats)
            loss, correct, skipped = stats.sum(axis=0)
            used = max(csr.nnz - skipped, 1)
            return {"train_loss": float(loss / used), "train_accuracy": float(correct / used),
                    "skipped": int(skipped)}

        self._fit_epochs(step, eval_data)

    def _embeddings(self, side):
        return super()._embeddings(side)[:, :-1]  # the bias column is not a direction

    def _fold_in_scores(self, item_codes, weights):
        # BPR has no closed-form fold-in: score by the mean of the items' latent vectors
        check_weights(weights, "recommend_for_interactions")
        if len(item_codes) == 0:
            return self.item_popularity_.astype(np.float32)
        x = self.item_factors_[item_codes, :-1].mean(axis=0)
        return self.item_factors_[:, :-1] @ x + self.item_factors_[:, -1]
