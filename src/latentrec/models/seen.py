"""What ``recommend`` leaves out: the items each user has already interacted with.

A fitted model reads its seen items through :meth:`Recommender._seen_items` (by
default :class:`SeenItems` over the training matrix ``seen_``); ``recommend`` asks
only for the rows of the users it ranks, so a model whose training pairs live
elsewhere (SparkALS fitted on a Spark DataFrame keeps them on the cluster) answers
with those rows alone. A caller can hand ``recommend`` another history
(``seen=Interactions``: e.g. the training data plus what the user did since),
without refitting. This is the role LensKit's training-history lookup plays in its
pipelines; here it is one small protocol:

* ``rows(user_codes) -> (index, csr_matrix)``, in the model's item codes: row ``index[r]``
  of the matrix holds the items to leave out for ``user_codes[r]`` (the training matrix
  itself is handed over as it is, with the codes as the index: nothing is copied).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.interactions import Interactions, as_interactions
from ..data.vocab import Vocabulary
from ..errors import DataError


class SeenItems:
    """Seen items held in a user x item CSR matrix (codes of the model's vocabularies)."""

    def __init__(self, matrix: sp.spmatrix):
        self.matrix = sp.csr_matrix(matrix)

    def rows(self, user_codes: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
        return user_codes, self.matrix

    @classmethod
    def from_interactions(cls, data, users: Vocabulary, items: Vocabulary) -> "SeenItems":
        """The pairs of ``data`` (Interactions or a DataFrame of user, item) recoded to a model's
        vocabularies. Pairs whose user or item the model does not know are left out: such an item
        can never be recommended, and such a user is ranked by ``unknown="popular"``, not by scores."""
        if isinstance(data, pd.DataFrame) and len(data) == 0 and {"user", "item"} <= set(data.columns):
            return cls(sp.csr_matrix((len(users), len(items)), dtype=np.float32))  # nobody has seen anything
        if not isinstance(data, Interactions):
            try:
                data = as_interactions(data, implicit=True, who="seen")
            except DataError as exc:
                raise DataError(f"seen: {exc}") from None
        coded, _ = data.recode(users, items)
        ones = np.ones(len(coded), dtype=np.float32)
        return cls(sp.csr_matrix((ones, (coded.user_codes, coded.item_codes)), shape=(len(users), len(items))))


__all__ = ["SeenItems"]
