"""Baselines: global/user/item means, regularised biases, popularity.

Tuned simple baselines beat many published methods; every comparison includes them.

Notation (docs/notation.md): r̂_ui = μ + b_u + b_i for :class:`Biases`.
"""

from __future__ import annotations

import numpy as np

from ..data.interactions import Interactions
from .base import Interval, Recommender


class GlobalMean(Recommender):
    """Predicts the mean training rating μ for every pair; ranks nothing (all items tie)."""

    def __init__(self):
        pass

    def _fit(self, data, eval_data):
        pass

    def _predict_codes(self, u, i):
        return np.full(len(u), self.global_mean_, dtype=np.float32)

    def _score_block(self, u):
        return np.full((len(u), len(self.items_)), self.global_mean_, dtype=np.float32)


class _MeanBaseline(Recommender):
    """Shared code of the user/item mean baselines (damped towards μ by ``damping``)."""

    _constraints = {"damping": Interval(float, 0, None)}

    def _means(self, codes, values, n, damping):
        sums = np.bincount(codes, weights=values, minlength=n)
        counts = np.bincount(codes, minlength=n)
        return ((sums + damping * self.global_mean_) / np.maximum(counts + damping, 1e-12)).astype(np.float32)

    def _fallback(self, u, i):
        out = np.full(len(u), self.global_mean_, dtype=np.float32)
        um, im = getattr(self, "user_mean_", None), getattr(self, "item_mean_", None)
        if um is not None and im is not None:  # UserItemMean: each side falls back to μ, then average
            ku, ki = u >= 0, i >= 0
            out[ku & ~ki] = 0.5 * (um[u[ku & ~ki]] + self.global_mean_)
            out[ki & ~ku] = 0.5 * (im[i[ki & ~ku]] + self.global_mean_)
        elif um is not None:
            out[u >= 0] = um[u[u >= 0]]
        elif im is not None:
            out[i >= 0] = im[i[i >= 0]]
        return out


class UserMean(_MeanBaseline):
    """Predicts each user's mean rating (unknown users: μ).

    Parameters
    ----------
    damping : float, default 0
        Pseudo-ratings at μ added to each user's mean (Bayesian damping).
    """

    def __init__(self, *, damping: float = 0.0):
        self.damping = damping

    def _fit(self, data, eval_data):
        self.user_mean_ = self._means(data.user_codes, data.values, data.n_users, self.damping)

    def _predict_codes(self, u, i):
        return self.user_mean_[u]

    def _score_block(self, u):
        return np.repeat(self.user_mean_[u][:, None], len(self.items_), axis=1)


class ItemMean(_MeanBaseline):
    """Predicts each item's mean rating (unknown items: μ); ranks items by mean rating.

    Parameters
    ----------
    damping : float, default 0
        Pseudo-ratings at μ added to each item's mean.
    """

    def __init__(self, *, damping: float = 0.0):
        self.damping = damping

    def _fit(self, data, eval_data):
        self.item_mean_ = self._means(data.item_codes, data.values, data.n_items, self.damping)

    def _predict_codes(self, u, i):
        return self.item_mean_[i]

    def _score_block(self, u):
        return np.repeat(self.item_mean_[None, :], len(u), axis=0)


class UserItemMean(_MeanBaseline):
    """The average of the UserMean and ItemMean predictions.

    Each side falls back to μ when its id is unknown, so an unknown item gives
    (user mean + μ) / 2 and an unknown user and item give μ.
    """

    def __init__(self, *, damping: float = 0.0):
        self.damping = damping

    def _fit(self, data, eval_data):
        self.user_mean_ = self._means(data.user_codes, data.values, data.n_users, self.damping)
        self.item_mean_ = self._means(data.item_codes, data.values, data.n_items, self.damping)

    def _predict_codes(self, u, i):
        return (0.5 * (self.user_mean_[u] + self.item_mean_[i])).astype(np.float32)

    def _score_block(self, u):
        return 0.5 * (self.user_mean_[u][:, None] + self.item_mean_[None, :])


class Biases(Recommender):
    """Regularised user and item biases: r̂_ui = μ + b_u + b_i, fitted by alternating least squares.

    Each sweep sets b_i = Σ_u (r_ui − μ − b_u) / (λ_i + |U_i|), then
    b_u = Σ_i (r_ui − μ − b_i) / (λ_u + |I_u|) — the damped means of Koren's
    baseline predictor (Surprise's BaselineOnly with ALS).

    Parameters
    ----------
    item_damping : float, default 2
        λ_i, the item bias regularisation (pseudo-count).
    user_damping : float, default 5
        λ_u, the user bias regularisation.

    The defaults were chosen on validation splits carved from the training part
    of each ml-100k fold (benchmarks/biases_defaults.py); Surprise's BaselineOnly
    uses 10 and 15.
    n_epochs : int, default 10
        Alternating sweeps.
    """

    _constraints = {
        "item_damping": Interval(float, 0, None),
        "user_damping": Interval(float, 0, None),
        "n_epochs": Interval(int, 1, None),
    }

    def __init__(self, *, item_damping: float = 2.0, user_damping: float = 5.0, n_epochs: int = 10):
        self.item_damping = item_damping
        self.user_damping = user_damping
        self.n_epochs = n_epochs

    def _fit(self, data: Interactions, eval_data):
        u, i = data.user_codes, data.item_codes
        r = data.values.astype(np.float64) - self.global_mean_
        n_u = np.bincount(u, minlength=data.n_users)
        n_i = np.bincount(i, minlength=data.n_items)
        bu = np.zeros(data.n_users)
        bi = np.zeros(data.n_items)

        def step(epoch):
            nonlocal bu, bi
            bi = np.bincount(i, weights=r - bu[u], minlength=data.n_items) / (self.item_damping + n_i)
            bu = np.bincount(u, weights=r - bi[i], minlength=data.n_users) / (self.user_damping + n_u)
            self.user_bias_, self.item_bias_ = bu.astype(np.float32), bi.astype(np.float32)
            resid = r - bu[u] - bi[i]
            return {"train_loss": float(np.mean(resid**2))}

        self._run_epochs(self.n_epochs, step, evaluate=lambda: self._eval_metrics(eval_data))

    def _predict_codes(self, u, i):
        return (np.float32(self.global_mean_) + self.user_bias_[u] + self.item_bias_[i]).astype(np.float32)

    def _score_block(self, u):
        return (np.float32(self.global_mean_) + self.user_bias_[u][:, None] + self.item_bias_[None, :])

    def _fold_in_scores(self, item_codes, weights):
        """A visitor's predicted ratings: mu + b_i (their own bias does not change the ranking)."""
        return (np.float32(self.global_mean_) + self.item_bias_).astype(np.float32)


class Popularity(Recommender):
    """Ranks items by how many training users interacted with them (the ranking baseline).

    ``predict`` returns the item's share of interactions, so larger is more popular.
    """

    task = "implicit"

    def __init__(self):
        pass

    def _fit(self, data, eval_data):
        self.item_score_ = (self.item_popularity_ / max(len(data), 1)).astype(np.float32)

    def _predict_codes(self, u, i):
        return self.item_score_[i]

    def _score_block(self, u):
        return np.repeat(self.item_score_[None, :], len(u), axis=0)

    def _fold_in_scores(self, item_codes, weights):
        return self.item_score_
