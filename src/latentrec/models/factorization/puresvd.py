"""PureSVD (Cremonesi, Koren and Turrin 2010): s_u = x_u V Vᵀ, V the top-k right singular vectors of X."""

import numpy as np
from scipy.sparse.linalg import svds

from ..._util import check_random_state
from .._feedback import to_training
from ..base import FactorModel, Interval


class PureSVD(FactorModel):
    """PureSVD: top-N by a truncated SVD of the user x item matrix X (q_i = v_i, p_u = x_u V)."""

    task = "implicit"
    _constraints = {"n_factors": Interval(int, 1, None)}

    def __init__(self, *, n_factors: int = 20, random_state=None):
        self.n_factors = n_factors
        self.random_state = random_state

    def _fit(self, data, eval_data):
        X = to_training(data).astype(np.float64)
        k = min(int(self.n_factors), min(X.shape) - 1)
        v0 = check_random_state(self.random_state).uniform(-1.0, 1.0, min(X.shape))
        vt = svds(X, k=k, v0=v0, solver="arpack")[2]
        self.item_factors_ = np.ascontiguousarray(vt.T, dtype=np.float32)
        self.user_factors_ = np.asarray(X @ self.item_factors_, dtype=np.float32)

    def _fold_in_factors(self, item_codes, weights):
        return weights.astype(np.float32) @ self.item_factors_[item_codes]  # p = x V, exactly as in fit
