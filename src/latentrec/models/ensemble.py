"""Ensemble: a weighted blend of fitted ranking models, weights fitted on a validation slice.

Each member m scores every item for a user; the scores are standardised per
user (z_m = (s_m - mean_u s_m) / std_u s_m over the catalogue, so members on
different scales blend), and the ensemble ranks by

    s_u = sum_m w_m z_m(u),   w_m >= 0, sum_m w_m = 1 .

The weights are fitted on the training data only: ``fit`` carves a per-user
``validation_size`` slice from the rows it is given (``split.user_holdout``, users
with at least 5 rows), fits every member on the rest, and picks the weights on
the simplex grid of step ``step`` that give the highest NDCG@``k`` on the slice
(all items ranked, the rest's items excluded, slice items unknown to the rest
still counted in the denominators). The members are then refitted on all the
rows with their own hyper-parameters. The test part of an outer split is never
seen.
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import metrics, registry
from .._persist_checks import any_json
from .._util import check_random_state, seed_from
from ..errors import ModelError
from .base import Interval, Recommender
from .kernels.topn import topn_masked

#: attributes every member shares with the ensemble (same training data): saved once
_SHARED = ("users_", "items_", "seen_", "item_popularity_", "global_mean_", "rating_scale_", "train_checksum_",
           "item_metadata_", "history_", "unknown_counts_", "eval_unknown_")


def _standardize(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores (float32); a constant row becomes zeros."""
    s = scores.astype(np.float32, copy=True)
    s -= s.mean(axis=1, keepdims=True)
    std = s.std(axis=1, keepdims=True)
    s /= np.where(std > 0, std, 1.0)
    return s


def simplex_grid(n: int, step: float) -> np.ndarray:
    """Every weight vector of ``n`` non-negative multiples of ``step`` summing to 1 (rows)."""
    m = int(round(1.0 / step))
    rows = [c for c in itertools.product(range(m + 1), repeat=n - 1) if sum(c) <= m]
    return np.array([[*c, m - sum(c)] for c in rows], dtype=np.float64) / m


class Ensemble(Recommender):
    """Weighted blend of the scores of registered ranking models, weights fitted on a validation slice.

    The module docstring gives the method.

    Parameters
    ----------
    models : tuple of str, default ("edlae", "rp3beta", "implicit-als")
        Registry names of the members.
    model_params : dict or None, default None
        Registry name -> hyper-parameters of that member (others keep their
        registry defaults). A member that takes ``random_state`` and is given
        none gets one drawn from this model's ``random_state``.
    weights : tuple of float or None, default None
        Fixed blend weights (one per member, non-negative, normalised to sum 1);
        None fits them on the validation slice.
    validation_size : float, default 0.2
        Per-user fraction of the training rows used to fit the weights.
    step : float, default 0.1
        Grid step of the weight search (3 members at 0.1: 66 candidates).
    k : int, default 10
        Cut-off of the NDCG the weights maximise.
    random_state : int, Generator or None, default 0
        Seeds the validation slice and the members' seeds.

    Attributes
    ----------
    weights_ : float64 (n_models,)
        The blend weights used.
    validation_ndcg_ : float
        NDCG@k of those weights on the validation slice (NaN with fixed weights).
    members_ : list of Recommender
        The members, refitted on all the training rows.
    """

    task = "implicit"
    # the members' own attributes are saved flattened as member<i>_<name>; each member re-checks its
    # arrays' meaning when rebuilt, here they must be finite numbers of at most 2 dimensions
    _persisted_arrays = {"weights_": ("float", (None,))}
    _persisted_patterns = ((r"member\d+_\w+_", ("number", ())),)
    _persisted_state = {"validation_ndcg_": (lambda v: isinstance(v, float), "a number or NaN"),
                        "model_names_": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                                         "a list of registry names")}
    _persisted_sparse_patterns = ((r"member\d+_(item_weights|similarity)_", ("items", "items")),)
    _persisted_state_patterns = ((r"member\d+_\w+_", (any_json, "a JSON value")),)
    _constraints = {
        "validation_size": Interval(float, 0, 1, closed="neither"),
        "step": Interval(float, 0, 1, closed="right"),
        "k": Interval(int, 1, None),
    }

    def __init__(self, *, models=("edlae", "rp3beta", "implicit-als"), model_params=None, weights=None,
                 validation_size: float = 0.2, step: float = 0.1, k: int = 10, random_state=0):
        self.models = models
        self.model_params = model_params
        self.weights = weights
        self.validation_size = validation_size
        self.step = step
        self.k = k
        self.random_state = random_state

    # ------------------------------------------------------------ fitting
    def _validate_params(self) -> None:
        super()._validate_params()
        names = [self.models] if isinstance(self.models, str) else list(self.models or [])
        if not names:
            raise ModelError("Ensemble: models must name at least one registered model")
        for name in names:
            entry = registry.get(name)  # ModelError naming the known models
            if entry.task != "implicit" or entry.name == "ensemble":
                raise ModelError(f"Ensemble: member {name!r} is not an implicit-feedback ranking model")
        extra = set(self.model_params or {}) - set(names)
        if extra:
            raise ModelError(f"Ensemble: model_params names {sorted(extra)}, which are not among models {names}")
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64)
            if w.shape != (len(names),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ModelError(f"Ensemble: weights must be {len(names)} non-negative numbers, not all 0; "
                                 f"got {self.weights!r}")

    def _names(self) -> list[str]:
        return [self.models] if isinstance(self.models, str) else list(self.models)

    def _make_members(self, rng) -> list[Recommender]:
        out = []
        for name in self._names():
            params = dict((self.model_params or {}).get(name, {}))
            model = registry.create(name, **params)
            if "random_state" in model.get_params() and "random_state" not in params:
                model.set_params(random_state=seed_from(rng))
            out.append(model)
        return out

    def _fit(self, data, eval_data):
        from ..split import user_holdout

        rng = check_random_state(self.random_state)
        members = self._make_members(rng)
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64)
            self.weights_, self.validation_ndcg_ = w / w.sum(), float("nan")
        elif len(members) == 1:
            self.weights_, self.validation_ndcg_ = np.ones(1), float("nan")
        else:
            rest, val = user_holdout(data, test_size=float(self.validation_size), min_interactions=5,
                                     random_state=seed_from(rng))
            if len(val) == 0:
                raise ModelError("Ensemble: no user has 5 or more rows, so there is no validation slice to fit "
                                 "the weights on; pass weights=")
            for m in members:
                m.fit(rest)
            self.weights_, self.validation_ndcg_ = self._search(members, rest, val)
        for m in members:
            m.fit(data)
        self._set_members(members)

    def _search(self, members, rest, val) -> tuple[np.ndarray, float]:
        """The simplex-grid weights with the best NDCG@k on ``val`` (codes of this model's data)."""
        truth = val.to_csr()
        users = np.flatnonzero(np.diff(truth.indptr) > 0).astype(np.int32)
        seen = rest.to_csr()
        cands = simplex_grid(len(members), float(self.step))
        total = np.zeros(len(cands))
        for start in range(0, len(users), self._block_size):
            block = users[start:start + self._block_size]
            z = [self._member_scores_in(m, block) for m in members]
            for c, w in enumerate(cands):
                blend = sum(np.float32(wm) * zm for wm, zm in zip(w, z) if wm > 0)
                codes, _ = topn_masked(blend, int(self.k), block, seen, None)
                total[c] += metrics.ranking_metrics(codes, truth[block], k=int(self.k),
                                                    metrics=("ndcg",))["ndcg"] * len(block)
        best = int(np.argmax(total))  # first of the ties: the grid lists small first weights first
        return cands[best], float(total[best] / max(len(users), 1))

    def _member_scores_in(self, member, users) -> np.ndarray:
        """Standardised scores of ``member`` (fitted on a subset of rows) for this model's user
        codes ``users``, over this model's items; items the member does not know get the row minimum."""
        ucodes = member.users_.codes(self.users_.take(users), missing="raise")
        cols = member.items_.codes(self.items_.ids, missing="ignore")
        raw = np.asarray(member._score_block(ucodes), dtype=np.float32)
        full = np.empty((len(users), len(cols)), dtype=np.float32)
        full[:] = raw.min(axis=1, keepdims=True)
        full[:, cols >= 0] = raw[:, cols[cols >= 0]]
        return _standardize(full)

    # ------------------------------------------------------------ members and persistence
    def _set_members(self, members) -> None:
        self.members_ = members
        self.model_names_ = self._names()
        for i, m in enumerate(members):
            for name, value in vars(m).items():
                if name.endswith("_") and not name.startswith("_") and name not in _SHARED:
                    setattr(self, f"member{i}_{name}", value)

    def _build_caches(self):
        super()._build_caches()
        if hasattr(self, "members_"):  # fitted: the members prepared themselves
            return
        rng = np.random.default_rng(0)  # seeds are irrelevant to a loaded (fitted) member
        members = self._make_members(rng)
        for i, m in enumerate(members):
            for name in _SHARED:
                if hasattr(self, name):
                    setattr(m, name, getattr(self, name))
            prefix = f"member{i}_"
            for name, value in list(vars(self).items()):
                if name.startswith(prefix):
                    setattr(m, name[len(prefix):], value)
            m._build_caches()
        self.members_ = members

    def _persist_extra(self, name, value):
        if name == "members_":  # rebuilt from the member<i>_ attributes at load
            return None
        raise TypeError(type(value).__name__)

    # ------------------------------------------------------------ scoring
    def _blend(self, parts) -> np.ndarray:
        return sum(np.float32(w) * _standardize(np.atleast_2d(p)) for w, p in zip(self.weights_, parts) if w > 0)

    def _score_block(self, u):
        return self._blend([m._score_block(u) for m in self.members_])

    def _predict_codes(self, u, i):
        return self._predict_from_blocks(u, i)

    def _fold_in_scores(self, item_codes, weights):
        return self._blend([m._fold_in_scores(item_codes, weights) for m in self.members_])[0]

    def _item_similarity_block(self, i):
        return self._blend([m._item_similarity_block(i) for m in self.members_])
