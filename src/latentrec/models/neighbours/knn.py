"""Neighbourhood models: user- and item-based KNN on ratings, item-KNN on implicit feedback.

Similarities are kept sparse: for each item (or user) only its ``max_similarities``
most similar positive neighbours are stored (a CSR matrix built row by row by a
numba kernel, :mod:`latentrec.models.kernels.knn`), so no n x n dense matrix is
ever formed. See docs/knn.md for the formulas, the fallbacks and the memory use.

Notation: r_ui a rating, μ the global mean, b_u/b_i the regularised biases of
:class:`~latentrec.models.baselines.Biases`, b_ui = μ + b_u + b_i, s_ij a similarity.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..._util import kernel_threads
from ...data.interactions import Interactions
from ...errors import ModelError
from ..base import Interval, Options, Recommender
from ..baselines import Biases
from ..kernels.knn import COSINE, PEARSON, SCALED_DOT, predict_pairs, sparse_topk_similarity

_SIMILARITIES = ("cosine", "pearson", "adjusted_cosine")


def _group_mean(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    sums = np.bincount(codes, weights=values, minlength=n)
    counts = np.bincount(codes, minlength=n)
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def _dense_rows(matrix: sp.csr_matrix, rows: np.ndarray, fill: float = -np.inf) -> np.ndarray:
    """Rows of a sparse matrix as a dense float32 block, absent entries set to ``fill``."""
    block = matrix[rows].tocoo()
    out = np.full((len(rows), matrix.shape[1]), fill, dtype=np.float32)
    out[block.row, block.col] = block.data
    return out


class _ExplicitKNN(Recommender):
    """Shared code of :class:`UserKNN` and :class:`ItemKNN` (see their docstrings)."""

    _user_based = False
    _constraints = {
        "n_neighbors": Interval(int, 1, None),
        "similarity": Options(*_SIMILARITIES),
        "shrinkage": Interval(float, 0, None),
        "min_support": Interval(int, 1, None),
        "min_neighbors": Interval(int, 0, None),
        "baseline": Options(True, False),
        "damping": Interval(float, 0, None),
        "max_similarities": Interval(int, 1, None, none_ok=True),
        "item_damping": Interval(float, 0, None),
        "user_damping": Interval(float, 0, None),
        "n_threads": Interval(int, 0, None),
    }

    def __init__(self, *, n_neighbors: int = 40, similarity: str = "cosine", shrinkage: float = 100.0,
                 min_support: int = 1, min_neighbors: int = 1, baseline: bool = True,
                 damping: float = 0.25, max_similarities: int | None = None, item_damping: float = 3.0,
                 user_damping: float = 5.0, n_threads: int = 0):
        self.n_neighbors = n_neighbors
        self.similarity = similarity
        self.shrinkage = shrinkage
        self.min_support = min_support
        self.min_neighbors = min_neighbors
        self.baseline = baseline
        self.damping = damping
        self.max_similarities = max_similarities
        self.item_damping = item_damping
        self.user_damping = user_damping
        self.n_threads = n_threads

    # ------------------------------------------------------------------ fitting
    def _n_keep(self) -> int:
        if self.max_similarities is None:
            return max(10 * self.n_neighbors, 500)
        if self.max_similarities < self.n_neighbors:
            raise ModelError(f"{type(self).__name__}: max_similarities ({self.max_similarities}) must be >= "
                             f"n_neighbors ({self.n_neighbors}), or None")
        return self.max_similarities

    def _fit(self, data: Interactions, eval_data) -> None:
        n_keep = self._n_keep()
        R = data.to_csr()
        users = np.repeat(np.arange(R.shape[0], dtype=np.int32), np.diff(R.indptr))
        items = R.indices
        r = R.data.astype(np.float32)
        if self.baseline:
            biases = Biases(item_damping=self.item_damping, user_damping=self.user_damping).fit(data)
            self.user_bias_ = biases.user_bias_.astype(np.float32)
            self.item_bias_ = biases.item_bias_.astype(np.float32)
        else:
            self.user_mean_ = _group_mean(users, r, R.shape[0])
            self.item_mean_ = _group_mean(items, r, R.shape[1])
        resid = r - self._offsets(users, items)
        self.residuals_ = sp.csr_matrix((resid.astype(np.float32), R.indices, R.indptr), shape=R.shape)

        # the values similarities are computed on: residuals from the baseline, else the ratings
        x = (resid if self.baseline else r).astype(np.float64)
        ent, ctx = (users, items) if self._user_based else (items, users)
        n_ent = R.shape[0] if self._user_based else R.shape[1]
        n_ctx = R.shape[1] if self._user_based else R.shape[0]
        if self.similarity == "adjusted_cosine":  # centre on the other side (the context)
            x = x - _group_mean(ctx, x, n_ctx)[ctx]
        elif self.similarity == "pearson":  # shift invariant: centring only conditions the float32 sums
            x = x - _group_mean(ent, x, n_ent)[ent]
        E = sp.csr_matrix((x.astype(np.float32), (ent, ctx)), shape=(n_ent, n_ctx))
        mode = PEARSON if self.similarity == "pearson" else COSINE
        with kernel_threads(self.n_threads):
            self.similarity_ = sparse_topk_similarity(
                E, mode, shrinkage=self.shrinkage, min_support=self.min_support, max_keep=n_keep)

    def _offsets(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The part of a prediction that does not come from neighbours (b_ui, or a mean)."""
        if self.baseline:
            return (np.float32(self.global_mean_) + self.user_bias_[u] + self.item_bias_[i]).astype(np.float32)
        if self._user_based:
            return self.user_mean_[u]
        return self.item_mean_[i]

    def _build_caches(self) -> None:
        super()._build_caches()
        m = sp.csr_matrix(self.residuals_ if not self._user_based else self.residuals_.T.tocsr())
        m.sort_indices()
        self._context = m  # residuals indexed by the context: users x items (item-based) or items x users
        if self._user_based:  # top-N sums over the users' rated pattern (the residuals with ones)
            rated = self.residuals_.copy()
            rated.data = np.ones_like(rated.data)
            self._rated = rated
        else:  # top-N and fold-in sums over the transposed similarities and their pattern
            ST = self.similarity_.T.tocsr()
            PT = ST.copy()
            PT.data = np.ones_like(PT.data)
            self._ST, self._PT = ST, PT

    # ------------------------------------------------------------------ prediction
    def _predict_codes(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return self._neighbour_pass(u, i)[0]

    def _neighbour_pass(self, u: np.ndarray, i: np.ndarray):
        """(predictions, neighbour counts) of known code pairs."""
        u = np.asarray(u, dtype=np.int32)
        i = np.asarray(i, dtype=np.int32)
        targets, contexts = (u, i) if self._user_based else (i, u)
        with kernel_threads(self.n_threads):
            return predict_pairs(targets, contexts, self._offsets(u, i), self.similarity_, self._context,
                                 self.n_neighbors, self.min_neighbors, self.damping)

    def neighbor_counts(self, X) -> np.ndarray:
        """How many neighbours each (user, item) row of ``X`` is predicted from; a row with fewer than
        ``min_neighbors`` (or an unknown id, count 0) gets the baseline instead."""
        u, i, known = self._pair_codes(X)
        out = np.zeros(len(u), dtype=np.int64)
        if known.any():
            out[known] = self._neighbour_pass(u[known], i[known])[1]
        return out

    def fallback_rate(self, X) -> float:
        """Share of the rows of ``X`` predicted by the baseline (fewer than ``min_neighbors``
        neighbours, or an unknown id)."""
        counts = self.neighbor_counts(X)
        return float(np.mean(counts < max(self.min_neighbors, 1))) if len(counts) else 0.0

    def _score_block(self, u: np.ndarray) -> np.ndarray:
        """Estimates over all items from all stored neighbours (no k cut; see docs/knn.md)."""
        if self._user_based:
            Sb = self.similarity_[u]
            pattern = Sb.copy()
            pattern.data = np.ones_like(pattern.data)
            num = (Sb @ self.residuals_).toarray()
            den = (Sb @ self._rated).toarray()
            cnt = (pattern @ self._rated).toarray()
        else:
            num, den, cnt = self._item_sums(self.residuals_[u])
        if self.baseline:
            off = np.float32(self.global_mean_) + self.user_bias_[u][:, None] + self.item_bias_[None, :]
        elif self._user_based:
            off = self.user_mean_[u][:, None]
        else:
            off = self.item_mean_[None, :]
        return self._combine(off, num, den, cnt)

    def _item_sums(self, resid: sp.csr_matrix):
        """Σ_j s_ij e_uj, Σ_j s_ij and the neighbour count, for rows of residuals over items."""
        rated = resid.copy()
        rated.data = np.ones_like(rated.data)
        return (resid @ self._ST).toarray(), (rated @ self._ST).toarray(), (rated @ self._PT).toarray()

    def _combine(self, off, num, den, cnt) -> np.ndarray:
        ok = (cnt >= max(self.min_neighbors, 1)) & (den > 0)
        adj = np.divide(num, den + np.float32(self.damping), out=np.zeros_like(num), where=ok)
        return (off + adj).astype(np.float32)

    def _fallback(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.full(len(u), self.global_mean_, dtype=np.float32)
        ku, ki = u >= 0, i >= 0
        if self.baseline:
            out[ku] += self.user_bias_[u[ku]]
            out[ki] += self.item_bias_[i[ki]]
        elif self._user_based:
            out[ku] = self.user_mean_[u[ku]]
        else:
            out[ki] = self.item_mean_[i[ki]]
        return out


_EXPLICIT_DOC = """
    Parameters
    ----------
    n_neighbors : int, default 40
        k: at most this many neighbours enter each prediction — the k most
        similar {neighbours} among those that rated/were rated by the other side.
    similarity : {{"cosine", "pearson", "adjusted_cosine"}}, default "cosine"
        Computed over the common support on the baseline residuals r_ui − b_ui when
        ``baseline`` is True (so "cosine" is Surprise's ``pearson_baseline``), else on the
        ratings. "pearson" centres each {entity}'s values on their mean over the common
        support; "adjusted_cosine" centres every value on the mean of the {other} it
        belongs to.
    shrinkage : float, default 100
        Each similarity is multiplied by n / (n + shrinkage), n the common support
        (Koren's shrunk similarity); 0 disables it.
    min_support : int, default 1
        Pairs with fewer common {other}s than this get no similarity.
    min_neighbors : int, default 1
        With fewer usable neighbours a prediction falls back to its offset (b_ui, or
        the {entity}'s mean rating when ``baseline`` is False).
    baseline : bool, default True
        True: r̂_ui = b_ui + Σ s·(r − b) / (Σ s + damping) (Surprise's KNNBaseline when
        damping is 0) with the biases of :class:`~latentrec.models.baselines.Biases`.
        False: the {entity} mean replaces b_ui (Surprise's KNNWithMeans).
    damping : float, default 0.25
        Pseudo-similarity mass at the offset in the denominator: shrinks the
        neighbours' correction when the neighbours are few or weakly similar.
    max_similarities : int or None, default None
        How many similarities are stored per {entity} (>= n_neighbors); None keeps
        max(10 * n_neighbors, 500). Memory is n_{entity}s x max_similarities x 8 bytes.
    item_damping, user_damping : float, default 3, 5
        λ_i and λ_u of the baseline biases (used when ``baseline`` is True). The
        defaults (and ``damping``) were chosen on an 80/20 split of ml-latest-small.
    n_threads : int, default 0
        Threads of the numba kernels; 0 means all.

    Only positive similarities are stored and used. ``predict`` applies the k
    cut exactly; ``recommend`` scores every item from all stored neighbours in
    two sparse products (no k cut), which ranks the same way in practice and
    costs far less. Unknown users/items fall back to μ plus the known bias (or the
    known mean).
"""


class ItemKNN(_ExplicitKNN):
    """Item-based neighbourhood model on explicit ratings (item-item similarities)."""

    __doc__ += _EXPLICIT_DOC.format(neighbours="items similar to i", entity="item", other="user")
    _user_based = False

    def _item_similarity_block(self, i: np.ndarray) -> np.ndarray:
        return _dense_rows(self.similarity_, i)

    def _fold_in_scores(self, item_codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """A visitor's ratings (``weights``) of ``item_codes``: the item-based estimate of every
        item, with the visitor's user bias taken as 0 (or the item means as offsets)."""
        off = (np.float32(self.global_mean_) + self.item_bias_) if self.baseline else self.item_mean_
        if len(item_codes) == 0:
            return off.astype(np.float32)
        resid = sp.csr_matrix(((weights - off[item_codes]).astype(np.float32), item_codes, [0, len(item_codes)]),
                              shape=(1, len(self.items_)))
        return self._combine(off[None, :], *self._item_sums(resid))[0]


class UserKNN(_ExplicitKNN):
    """User-based neighbourhood model on explicit ratings (user-user similarities)."""

    __doc__ += _EXPLICIT_DOC.format(neighbours="users similar to u", entity="user", other="item")
    _user_based = True
    _fold_in_rates = False  # a visitor's fold-in scores are similarity-weighted ratings of their items

    def _user_similarity_block(self, u: np.ndarray) -> np.ndarray:
        return _dense_rows(self.similarity_, u)


class ImplicitItemKNN(Recommender):
    """Item-based KNN on implicit feedback: score_ui = Σ_j x_uj · s_ji over the user's items j.

    s is the sparse top-k item-item similarity: cosine of the items' user
    vectors, optionally TF-IDF weighted (cosine of the weighted vectors) or BM25
    weighted (plain dot product of the weighted vectors), as in the ``implicit``
    library's Cosine/TFIDF/BM25 recommenders. Users are weighted by
    idf_u = log(n_items) − log(1 + n_u); BM25 also normalises each item's length.

    Parameters
    ----------
    n_neighbors : int, default 20
        K, the similarities kept per item.
    weighting : {"none", "tfidf", "bm25"}, default "none"
    k1 : float, default 1.2
        BM25 saturation (only with ``weighting="bm25"``).
    b : float in [0, 1], default 0.75
        BM25 length normalisation (only with ``weighting="bm25"``).
    n_threads : int, default 0
        Threads of the similarity kernel; 0 means all.
    K1, B : deprecated
        The earlier names of ``k1`` and ``b`` (lower case like every other
        hyper-parameter); still read, with a DeprecationWarning at fit, for one release.
    """

    task = "implicit"
    _constraints = {
        "n_neighbors": Interval(int, 1, None),
        "weighting": Options("none", "tfidf", "bm25"),
        "k1": Interval(float, 0, None, closed="neither"),
        "b": Interval(float, 0, 1),
        "K1": Interval(float, 0, None, closed="neither", none_ok=True),
        "B": Interval(float, 0, 1, none_ok=True),
        "n_threads": Interval(int, 0, None),
    }

    def __init__(self, *, n_neighbors: int = 20, weighting: str = "none", k1: float = 1.2, b: float = 0.75,
                 n_threads: int = 0, K1: float | None = None, B: float | None = None):
        self.n_neighbors = n_neighbors
        self.weighting = weighting
        self.k1 = k1
        self.b = b
        self.n_threads = n_threads
        self.K1 = K1
        self.B = B

    def _bm25(self) -> tuple[float, float]:
        """(k1, b), the deprecated upper-case names winning when given (with a warning)."""
        import warnings

        k1, b = self.k1, self.b
        for old, new in (("K1", "k1"), ("B", "b")):
            value = getattr(self, old)
            if value is not None:
                warnings.warn(f"ImplicitItemKNN({old}=...) is deprecated; use {new}=... (the name changes, "
                              "the meaning does not)", DeprecationWarning, stacklevel=4)
                k1, b = (value, b) if old == "K1" else (k1, value)
        return float(k1), float(b)

    def _fit(self, data: Interactions, eval_data) -> None:
        k1, b = self._bm25()
        X = data.to_csr().T.tocsr()  # items x users
        X.sort_indices()
        item_of = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        x = X.data.astype(np.float64)
        idf = np.log(X.shape[0]) - np.log1p(np.bincount(X.indices, minlength=X.shape[1]))
        if self.weighting == "tfidf":
            w = np.sqrt(x) * idf[X.indices]
        elif self.weighting == "bm25":
            length = np.bincount(item_of, weights=x, minlength=X.shape[0])
            norm = (1.0 - b) + b * length / max(length.mean(), 1e-12)
            w = x * (k1 + 1.0) / (k1 * norm[item_of] + x) * idf[X.indices]
        else:
            w = x
        W = sp.csr_matrix((w.astype(np.float32), X.indices, X.indptr), shape=X.shape)
        if self.weighting == "bm25":
            scale = np.ones(X.shape[0], dtype=np.float32)
        else:
            norms = np.sqrt(np.bincount(item_of, weights=w * w, minlength=X.shape[0]))
            scale = (1.0 / np.maximum(norms, 1e-12)).astype(np.float32)
        with kernel_threads(self.n_threads):
            self.similarity_ = sparse_topk_similarity(W, SCALED_DOT, max_keep=self.n_neighbors, scale=scale)

    def _score_block(self, u: np.ndarray) -> np.ndarray:
        return (self.seen_[u] @ self.similarity_).toarray().astype(np.float32)

    def _build_caches(self) -> None:
        super()._build_caches()
        self._ST = self.similarity_.T.tocsr()

    def _predict_codes(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        prod = self.seen_[u].multiply(self._ST[i])
        return np.asarray(prod.sum(axis=1), dtype=np.float32).ravel()

    def _item_similarity_block(self, i: np.ndarray) -> np.ndarray:
        return _dense_rows(self.similarity_, i)

    def _fold_in_scores(self, item_codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if len(item_codes) == 0:
            return np.zeros(len(self.items_), dtype=np.float32)
        row = sp.csr_matrix((weights.astype(np.float32), item_codes, [0, len(item_codes)]),
                            shape=(1, len(self.items_)))
        return (row @ self.similarity_).toarray().ravel().astype(np.float32)


__all__ = ["UserKNN", "ItemKNN", "ImplicitItemKNN"]
