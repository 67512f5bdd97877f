"""PureSVD: the shared suite, and the scores against a dense NumPy SVD."""

import numpy as np

import latentrec as lr
from latentrec.models import PureSVD
from model_suite import ModelSuite


class TestPureSVD(ModelSuite):
    fold_in_is_exact = True  # p_u = x_u V in fit and in fold-in
    model_factory = staticmethod(lambda: PureSVD(n_factors=10, random_state=0))
    task = "implicit"
    quality = 0.17  # Popularity reaches 0.136 on this split
    varied_params = {"n_factors": 3}


def test_scores_are_the_rank_k_projection_of_a_dense_svd():
    data = lr.synthetic_implicit(n_users=50, n_items=30, n_interactions=400, random_state=2)
    model = PureSVD(n_factors=4, random_state=0).fit(data)
    X = model.seen_.toarray().astype(np.float64)
    v = np.linalg.svd(X, full_matrices=False)[2][:4].T
    np.testing.assert_allclose(model._score_block(np.arange(50)), X @ v @ v.T, atol=1e-4)
