"""Splits that keep train and test honest.

Every splitter returns Interactions that share the parent's vocabularies; train
and test are disjoint, their union is the input, nothing is dropped.
"""

from __future__ import annotations

import numpy as np

from ._util import check_random_state
from .data.interactions import Interactions
from .errors import DataError


def random_split(data: Interactions, test_size: float = 0.2, *, random_state=None) -> tuple[Interactions, Interactions]:
    """Random holdout: each row goes to test with probability-free exact count round(test_size * n)."""
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size must be in (0, 1), got {test_size!r}")
    rng = check_random_state(random_state)
    n = len(data)
    n_test = int(round(test_size * n))
    perm = rng.permutation(n)
    test_mask = np.zeros(n, dtype=bool)
    test_mask[perm[:n_test]] = True
    return data.subset(~test_mask), data.subset(test_mask)
