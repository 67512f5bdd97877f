"""RP3beta: a three-step random walk on the user-item graph, re-weighted by popularity.

Paudel, Christoffel, Newell & Bernstein, "Updatable, accurate, diverse, and
scalable recommendations for interactive applications" (ACM TiiS 2017); strong
in Ferrari Dacrema et al., "Are we really making much progress?" (RecSys 2019).

With P_ui = d_ui / sum_j d_uj (user -> item) and P_iu = d_ui / sum_v d_vi
(item -> user) the transition probabilities of the bipartite graph, the
item-item weight is the probability of walking i -> u -> j with every step's
probability raised to ``alpha``, divided by j's popularity to the power ``beta``:

    W_ij = (sum_u P_iu^alpha P_uj^alpha) / pop_j^beta ,

of which each row keeps its ``n_neighbors`` largest entries (W_ii excluded), then
rows are rescaled to sum to 1 (``normalize``). A user's scores are d_u W (the
third step from the user; on binary data the same ranking as P_u W). beta = 0,
alpha = 1 is the plain P3 walk.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._feedback import to_training
from ..base import Interval, ItemWeightsModel, Options
from ..kernels.topn import topn_masked


def _row_normalize(m: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(m.sum(axis=1), dtype=np.float64).ravel()
    return (sp.diags(1.0 / np.maximum(sums, 1e-30)) @ m).tocsr()


class RP3beta(ItemWeightsModel):
    """Item-item random walk with popularity penalty (RP3beta).

    Parameters
    ----------
    alpha : float, default 0.8
        Exponent on every transition probability (module docstring).
    beta : float, default 0.5
        Popularity exponent: W_ij is divided by pop_j^beta.
    n_neighbors : int, default 200
        Entries kept per row of W.
    normalize : bool, default True
        Rescale each kept row of W to sum to 1.
    block_size : int, default 1024
        Items whose rows of W are built at once (a dense block x n_items array).

    The defaults are the setting ``benchmarks/implicit_feedback.py`` chose most
    often on the validation splits of ml-100k's training parts (1.7k items,
    holdout seeds 0, 1, 2) from alpha {0.8, 1}, beta {0.3, 0.5, 0.7},
    n_neighbors {50, 200}: alpha 0.8 and beta 0.5 each time, 200 neighbours
    twice (50 once); ml-latest-small was not re-validated.

    Attributes
    ----------
    item_weights_ : float32 CSR (n_items, n_items)
        W, ``n_neighbors`` entries per row at most.
    """

    _persisted_sparse = {"item_weights_": ("items", "items")}
    _constraints = {
        "alpha": Interval(float, 0, None, closed="neither"),
        "beta": Interval(float, 0, None),
        "n_neighbors": Interval(int, 1, None),
        "normalize": Options(True, False),
        "block_size": Interval(int, 1, None),
    }

    def __init__(self, *, alpha: float = 0.8, beta: float = 0.5, n_neighbors: int = 200, normalize: bool = True,
                 block_size: int = 1024):
        self.alpha = alpha
        self.beta = beta
        self.n_neighbors = n_neighbors
        self.normalize = normalize
        self.block_size = block_size

    def _fit(self, data, eval_data):
        X = to_training(data).astype(np.float32)
        n = data.n_items
        a = float(self.alpha)
        p_ui = _row_normalize(X)
        p_iu = _row_normalize(X.T.tocsr())
        if a != 1.0:
            p_ui.data **= a
            p_iu.data **= a
        pop = np.asarray((X > 0).sum(axis=0), dtype=np.float64).ravel()
        col_scale = np.where(pop > 0, np.maximum(pop, 1.0) ** -float(self.beta), 0.0).astype(np.float32)
        k = int(min(self.n_neighbors, max(n - 1, 1)))
        rows, cols, vals = [], [], []
        for start in range(0, n, self.block_size):
            stop = min(start + self.block_size, n)
            block = np.asarray((p_iu[start:stop] @ p_ui).todense(), dtype=np.float32)
            block *= col_scale[None, :]
            block[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never its own neighbour
            c, s = topn_masked(block, k)
            keep = (c >= 0) & (s > 0)
            r = np.repeat(np.arange(start, stop), k).reshape(-1, k)
            rows.append(r[keep])
            cols.append(c[keep])
            vals.append(s[keep])
        w = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n, n), dtype=np.float32)
        if self.normalize:
            w = _row_normalize(w).astype(np.float32)
        w.sort_indices()
        self.item_weights_ = w

    def _item_similarity_block(self, i):
        # the walk's own transition weights: W_ij, how strongly i leads to j
        return np.asarray(self.item_weights_[i].todense(), dtype=np.float32)
