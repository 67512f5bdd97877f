"""Truncated SVD of the user-mean-centred rating matrix.

The classic first latent-factor model: centre every rating on its user's mean,
treat the missing cells of the centred matrix as zeros (the user's mean), take
the k leading singular triplets (scipy's ARPACK ``svds`` on the sparse matrix,
no dense matrix is formed) and predict

    r̂_ui = m_u + Σ_k u_uk · s_k · v_ik.

Because missing entries count as zeros, predictions are pulled towards the
user's mean; this is the method's known bias, kept here on purpose so that it
stays the honest baseline it is in the seed write-ups (regularised models in
:mod:`latentrec.models.factorization.mf` learn from the observed cells only).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds
from threadpoolctl import threadpool_limits

from ..._util import check_random_state
from ...data.interactions import Interactions
from ...errors import ModelError
from ..base import FactorModel, Interval


class TruncatedSVD(FactorModel):
    """Rank-``n_factors`` SVD of the user-mean-centred ratings (missing cells = 0 after centring).

    Parameters
    ----------
    n_factors : int, default 20
        k, the number of singular triplets kept; must be < min(n_users, n_items).
    random_state : int, Generator or None, default None
        Seeds ARPACK's starting vector, so fits are repeatable.

    Attributes
    ----------
    user_factors_ : float32 (n_users, k)
        U_k · diag(sqrt(s_k)).
    item_factors_ : float32 (n_items, k)
        V_k · diag(sqrt(s_k)); ``similar_items`` is the cosine between these rows.
    singular_values_ : float32 (k,), decreasing.
    user_bias_ : float32 (n_users,)
        m_u − μ, so that μ + user_bias_ is the user's mean; ``item_bias_`` is zero.

    Unknown users are predicted μ; a known user with an unknown item gets m_u.
    """

    _constraints = {"n_factors": Interval(int, 1, None)}

    def __init__(self, *, n_factors: int = 20, random_state=None):
        self.n_factors = n_factors
        self.random_state = random_state

    def _fit(self, data: Interactions, eval_data) -> None:
        n_users, n_items = data.matrix_shape
        k = self.n_factors
        if k >= min(n_users, n_items):
            raise ModelError(f"TruncatedSVD: n_factors must be < min(n_users, n_items) = "
                             f"{min(n_users, n_items)} for this data, got {k}")
        rng = check_random_state(self.random_state)
        R = data.to_csr()
        users = np.repeat(np.arange(n_users), np.diff(R.indptr))
        sums = np.bincount(users, weights=R.data.astype(np.float64), minlength=n_users)
        user_mean = sums / np.maximum(np.diff(R.indptr), 1)
        centred = sp.csr_matrix((R.data - user_mean[users], R.indices, R.indptr), shape=R.shape, dtype=np.float64)
        v0 = rng.uniform(-1.0, 1.0, min(n_users, n_items))
        # ARPACK's work is sparse mat-vecs and small dense steps: BLAS threads only add
        # contention (8x slower on ml-100k on a busy 2-core machine), so hold BLAS to one
        with threadpool_limits(limits=1, user_api="blas"):
            u, s, vt = svds(centred, k=k, v0=v0, solver="arpack")
        order = np.argsort(-s, kind="stable")
        u, s, vt = u[:, order], s[order], vt[order]
        # fix each triplet's sign (ARPACK's is arbitrary): largest |v| entry positive
        signs = np.sign(vt[np.arange(k), np.argmax(np.abs(vt), axis=1)])
        signs[signs == 0] = 1.0
        u, vt = u * signs, vt * signs[:, None]
        root = np.sqrt(s)
        self.singular_values_ = s.astype(np.float32)
        self.user_factors_ = (u * root).astype(np.float32)
        self.item_factors_ = (vt.T * root).astype(np.float32)
        self.user_bias_ = (user_mean - self.global_mean_).astype(np.float32)
        self.item_bias_ = np.zeros(n_items, dtype=np.float32)
        resid = centred.data - np.einsum("ij,ij->i", self.user_factors_[users], self.item_factors_[R.indices])
        self.history_.append({"epoch": 1, "train_loss": float(np.mean(resid ** 2))})


__all__ = ["TruncatedSVD"]
