"""EASE: embarrassingly shallow autoencoder (Steck 2019), a closed-form item-item model.

B = argmin |X - X B|^2 + lambda |B|^2 subject to diag(B) = 0, solved by
P = (X^T X + lambda I)^-1, B_ij = -P_ij / P_jj (i != j), B_jj = 0. A user's
scores are x_u B. The dense n_items x n_items matrices limit it to catalogues of
some tens of thousands of items; the memory is estimated before anything is built.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from ...errors import LatentrecWarning, ModelError
from .._feedback import to_training
from ..base import Interval, ItemWeightsModel

#: bytes per n_items^2 cell while fitting: the sparse product X^T X (float32 value + int32 index),
#: its dense float32 copy, inverted in place, and the copy LAPACK's column-major layout may take
BYTES_PER_CELL = 8 + 4 + 4


def gram(X) -> np.ndarray:
    """The dense float32 Gram matrix X^T X of the training matrix (items x items)."""
    return np.asarray((X.T @ X).toarray(), dtype=np.float32)


def invert(a: np.ndarray, what: str = "X^T X + lambda I") -> np.ndarray:
    """The inverse of the regularised Gram matrix ``a`` (float32, overwritten), by LAPACK's LU.

    float32, as LensKit's EASE: on ml-latest-small (9.7k items) the float64 inverse took 1.8x as
    long on one thread and every model's NDCG@10 agreed to 5 decimals; LU, because OpenBLAS's
    Cholesky inverse (potri) measured 2.2x slower than its LU inverse in float64."""
    try:
        out = scipy.linalg.inv(a, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        out = None
    if out is None or not np.isfinite(np.sum(out, dtype=np.float64)):  # finite sum <=> every entry finite
        raise ModelError(f"{what} is singular or not finite; raise regularization")
    return out


def ease_memory_gb(n_items: int) -> float:
    """Peak memory (GiB) EASE needs to fit ``n_items`` items."""
    return BYTES_PER_CELL * float(n_items) ** 2 / 2**30


class EASE(ItemWeightsModel):
    """Closed-form item-item autoencoder for implicit feedback.

    Parameters
    ----------
    regularization : float, default 500
        lambda added to the diagonal of the item Gram matrix X^T X.
    max_memory_gb : float, default 8
        Refuse to fit (:class:`ModelError`) when the estimated peak memory
        (:func:`ease_memory_gb`, about 20 n_items^2 bytes) exceeds this; warn
        when it exceeds half of it.

    Attributes
    ----------
    item_weights_ : float32 (n_items, n_items)
        B, with a zero diagonal.
    """

    _constraints = {
        "regularization": Interval(float, 0, None, closed="neither"),
        "max_memory_gb": Interval(float, 0, None, closed="neither"),
    }

    def __init__(self, *, regularization: float = 500.0, max_memory_gb: float = 8.0):
        self.regularization = regularization
        self.max_memory_gb = max_memory_gb

    def _check_memory(self, n: int) -> None:
        """Refuse (ModelError) or warn when the dense fit of ``n`` items exceeds ``max_memory_gb``."""
        name = type(self).__name__
        need = ease_memory_gb(n)
        if need > self.max_memory_gb:
            raise ModelError(
                f"{name} would need about {need:.1f} GiB for {n:,} items (dense {n:,} x {n:,} matrices), more "
                f"than max_memory_gb={self.max_memory_gb:g}; filter rare items (k-core) "
                f"or use ImplicitALS")
        if need > 0.5 * self.max_memory_gb:
            warnings.warn(f"{name} will use about {need:.1f} GiB for {n:,} items "
                          f"(max_memory_gb={self.max_memory_gb:g})", LatentrecWarning, stacklevel=4)

    def _fit(self, data, eval_data):
        n = data.n_items
        self._check_memory(n)
        g = gram(to_training(data))
        g[np.diag_indices(n)] += np.float32(self.regularization)
        p = invert(g)
        del g
        p /= -np.diag(p)[None, :]
        p[np.diag_indices(n)] = 0.0
        self.item_weights_ = p

    def _item_similarity_block(self, i):
        # the learned weights themselves: B_ij is how much having i predicts j
        return self.item_weights_[i]
