"""BayesianFM: a factorization machine trained by Gibbs sampling (libFM's MCMC engine).

Model (docs/bayesian.md, in docs/notation.md's terms): a rating row has the
feature vector x (user id, item id and the presets' blocks) and

    r̂(x) = w0 + Σ_j w_j x_j + Σ_{j<l} (v_j · v_l) x_j x_l,

with Gaussian noise of precision α. Every feature group g (user ids, item ids,
implicit items, ...) has its own normal-gamma hyper-prior: w_j ~ N(μ_g, 1/λ_g),
v_jf ~ N(μ_gf, 1/λ_gf), μ ~ N(0, 1/(γ0 λ)), λ ~ Gamma(α_λ/2, β_λ/2), α ~
Gamma(α0/2, β0/2) with γ0 = α_λ = β_λ = α0 = β0 = 1 (Freudenthaler et al.
2011, Rendle 2012). One sample is one Gibbs sweep: α, the hyper-parameters, w0,
then every w_j and v_jf from its Gaussian conditional, computed on the
relational blocks of Rendle 2013 (:mod:`latentrec.models.kernels.bfm`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..._util import check_random_state, kernel_threads, progress
from ...data.interactions import Interactions
from ...errors import DataError, ModelError
from ..base import FactorModel, Interval, Options
from ..kernels import bfm as kern
from . import _features as feat
from . import _ordinal as ordinal

#: fixed hyper-prior constants (libFM's and myFM's defaults)
ALPHA_0 = BETA_0 = GAMMA_0 = ALPHA_LAMBDA = BETA_LAMBDA = 1.0
MU_0 = 0.0
#: prior precision of w0 (myFM's reg_0)
REG_0 = 1.0
#: loss="auto" uses the ordered probit when the training ratings take at most this many values
MAX_ORDINAL_LEVELS = 10
#: the per-entity sums and residuals, kept incrementally, are recomputed every REFRESH samples
REFRESH = 10
#: one-hot feature groups at least this large are drawn in parallel (kern.sweep_parameters)
PARALLEL_GROUP = 1024


class _Features:
    """Constraint for ``features``: a tuple of distinct preset names."""

    def describe(self) -> str:
        return "a tuple of distinct names from " + ", ".join(map(repr, feat.PRESETS))

    def check(self, value) -> bool:
        if isinstance(value, str):
            value = (value,)
        if not isinstance(value, (tuple, list)):
            return False
        return all(isinstance(v, str) and v in feat.PRESETS for v in value) and len(set(value)) == len(value)


class BayesianFM(FactorModel):
    """Bayesian factorization machine by Gibbs sampling, with feature presets.

    ``BayesianFM()`` is grouped Bayesian matrix factorisation (user id + item id):
    r̂_ui = w0 + w_u + w_i + v_u · v_i with a hyper-prior per group.
    ``features`` adds Rendle et al. (2019)'s blocks; ``("implicit_user",
    "implicit_item", "day")`` is their "Bayesian timeSVD++ flipped". Predictions
    average the kept samples (those after ``n_burn_in``).

    Parameters
    ----------
    n_factors : int, default 10
        Rank k of the pairwise interactions.
    n_iter : int, default 300
        Gibbs samples drawn in all (burn-in included).
    n_burn_in : int, default 20
        First samples discarded; must be < ``n_iter``.
    features : tuple of str, default ()
        Any of ``"implicit_user"`` (the items the user rated, 1/sqrt(n) each),
        ``"implicit_item"`` (the users who rated the item), ``"day"`` (day of the
        rating; needs timestamps), ``"user_day"`` (the (user, day) pair: a
        day-specific user bias and factor, as timeSVD++'s; needs timestamps; a
        pair unseen in training gets the prior mean), ``"user_attributes"`` (columns of the data's
        ``user_metadata``), ``"item_attributes"`` (``genres`` and ``year`` of
        ``item_metadata``). See :mod:`latentrec.models.bayesian._features`.
    n_saved_samples : int or None, default None
        Kept samples stored after fit for ``predict``, ``recommend`` and ``save``.
        None: every kept sample while the stored arrays fit in ``max_saved_mb``,
        else as many as fit, evenly thinned (ml-100k: all 280; ML-20M at rank 32:
        ~23). An int: that many, evenly thinned. docs/bayesian.md gives the RMSE
        thinning costs.
    max_saved_mb : float, default 512
        Memory budget (MB) of the stored samples when ``n_saved_samples`` is None.
    init_std : float, default 0.1
        v_jf start as N(0, init_std²).
    loss : {"auto", "squared", "ordinal"}, default "auto"
        ``"squared"``: Gaussian likelihood with a sampled noise precision.
        ``"ordinal"``: ordered probit on the distinct training rating values
        (Albert & Chib 1993's latent scores, cutpoints by a Metropolis-Hastings
        step; :mod:`latentrec.models.bayesian._ordinal`); predictions are the
        expected rating. ``"auto"``: ordinal when the training ratings take 2 to
        10 distinct values (star ratings), squared otherwise. The default was
        chosen on a validation part of ml-100k's u1.base (docs/bayesian.md):
        0.8694 ordinal against 0.8722 squared at 300 samples.
    n_threads : int, default 0
        0 = all cores. Results do not depend on it (every random number is drawn
        before the parallel kernels), so one seed gives one model.
    random_state : int, Generator or None
    verbose : bool, default False
        Progress bar over samples with the current train RMSE.

    Attributes
    ----------
    user_factors_, item_factors_ : float32 (n_users, S·k), (n_items, S·k)
        The S saved samples' per-entity interaction vectors (user id, implicit
        items and attributes summed), side by side and divided by sqrt(S), so
        that ``user_factors_[u] @ item_factors_[i]`` is the sample average of
        the pairwise term.
    user_bias_, item_bias_ : float32
        Sample averages of the linear and within-entity terms (w0 − μ and the
        average day folded into ``item_bias_``).
    days_, day_factors_, day_bias_ : with ``"day"``: the training days (days since
        1970-01-01) and their centred factors / biases.
    session_users_, session_days_, session_factors_, session_bias_ : with ``"user_day"``:
        the training (user code, day) pairs and their factors / biases, centred on the
        unseen pair (whose terms are folded into the other biases), so a row of an
        unseen pair, or without a timestamp, adds nothing.
    loss_ : str
        The likelihood used ("squared" or "ordinal"; ``loss="auto"`` resolved).
    cutpoints_, rating_values_ : with ``loss="ordinal"``: the saved samples' average
        cutpoints (K − 1) and the K rating values of the classes.
    cutpoint_samples_, user_bias_samples_, item_bias_samples_, day_bias_samples_, session_bias_samples_ : with
        ``loss="ordinal"``: every saved sample's cutpoints (S, K − 1) and biases (entities, S);
        ``predict`` averages each sample's expected rating.
    history_ : list of dict
        Per sample: ``train_loss`` (train RMSE of that sample; under the probit its
        expected ratings are interpolated from a table, within 1e-5), ``alpha`` (noise
        precision), ``epoch_s`` (the sample's seconds) and with ``eval_set``: ``val_rmse`` (RMSE of the
        average of the kept samples so far; of the sample itself during burn-in; a
        user or item unknown to the training data counts as an empty entity).
    """

    _persisted_arrays = {"days_": ("int", (None,)), "day_factors_": ("float", (None, None)),
                         "day_bias_": ("float", (None,)), "cutpoints_": ("float", (None,)),
                         "rating_values_": ("float", (None,)), "cutpoint_samples_": ("float", (None, None)),
                         "user_bias_samples_": ("float", ("users", None)),
                         "item_bias_samples_": ("float", ("items", None)),
                         "day_bias_samples_": ("float", (None, None)),
                         "session_users_": ("int", (None,)), "session_days_": ("int", (None,)),
                         "session_factors_": ("float", (None, None)), "session_bias_": ("float", (None,)),
                         "session_bias_samples_": ("float", (None, None))}
    _persisted_state = {"n_kept_samples_": (lambda v: type(v) is int and v >= 1, "a positive integer"),
                        "loss_": (lambda v: v in ("squared", "ordinal"), "'squared' or 'ordinal'")}
    _constraints = {
        "n_factors": Interval(int, 1, None),
        "n_iter": Interval(int, 1, None),
        "n_burn_in": Interval(int, 0, None),
        "features": _Features(),
        "n_saved_samples": Interval(int, 1, None, none_ok=True),
        "max_saved_mb": Interval(float, 0, None, closed="neither"),
        "init_std": Interval(float, 0, None),
        "loss": Options("auto", "squared", "ordinal"),
        "n_threads": Interval(int, 0, None),
        "verbose": Options(True, False),
    }

    def __init__(self, *, n_factors: int = 10, n_iter: int = 300, n_burn_in: int = 20, features=(),
                 n_saved_samples: int | None = None, max_saved_mb: float = 512.0, init_std: float = 0.1,
                 loss: str = "auto", n_threads: int = 0,
                 random_state=None, verbose: bool = False):
        self.n_factors = n_factors
        self.n_iter = n_iter
        self.n_burn_in = n_burn_in
        self.features = features
        self.n_saved_samples = n_saved_samples
        self.max_saved_mb = max_saved_mb
        self.init_std = init_std
        self.loss = loss
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    def _validate_params(self) -> None:
        super()._validate_params()
        if self.n_burn_in >= self.n_iter:
            raise ModelError(f"BayesianFM: n_burn_in must be < n_iter ({self.n_iter}), got {self.n_burn_in}")

    def _fit(self, data: Interactions, eval_data: Interactions | None) -> None:
        features = feat.check_features(self.features)
        rng = check_random_state(self.random_state)
        wider = feat.add_side_only_entities(data, features)
        if wider is not data:  # side-table users/items without ratings become known entities (cold start)
            data = wider
            self.users_, self.items_, self.seen_ = data.users, data.items, data.to_csr()
            self.item_popularity_ = np.bincount(data.item_codes, minlength=data.n_items).astype(np.int64)
        design, idx = feat.build_design(data, features)
        self.loss_ = resolve_loss(self.loss, data.values)
        levels = ordinal.classes(data.values)[0] if self.loss_ == "ordinal" else None
        if levels is not None and len(levels) < 2:
            raise DataError(f"BayesianFM(loss='ordinal') needs at least 2 distinct rating values in the "
                            f"training data; got only {levels.tolist()}")
        sampler = _Sampler(design, idx, data.values, self.n_factors, float(self.init_std), rng, levels=levels)
        eval_idx = None
        if eval_data is not None and len(eval_data):
            # the eval rows in this model's (compacted) codes; an unknown user or item is an empty entity (-1)
            eu = self.users_.codes(eval_data.users.take(eval_data.user_codes), missing="ignore")
            ei = self.items_.codes(eval_data.items.take(eval_data.item_codes), missing="ignore")
            eval_idx = feat.rows_index(design, eu, ei, eval_data.timestamps)
        n_kept = self.n_iter - self.n_burn_in
        n_save = min(self._n_to_save(design, levels), n_kept)
        save_at = set((self.n_burn_in + np.round(np.linspace(0, n_kept - 1, n_save))).astype(int).tolist())
        saved = _SavedSamples(n_save)
        cuts: list[np.ndarray] = []
        state = {"eval_sum": None, "n_kept": 0, "val": None}
        bar = progress(range(self.n_iter), total=self.n_iter, desc="BayesianFM", enabled=self.verbose)
        bar_it = iter(bar)

        def step(sample):
            next(bar_it, None)
            with kernel_threads(self.n_threads):
                rmse, alpha = sampler.sweep()
            if not np.isfinite(rmse) or not sampler.finite():
                raise ModelError(f"BayesianFM diverged at sample {sample + 1}: a parameter or the train RMSE "
                                 f"({rmse}) is not finite")
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(train_rmse=f"{rmse:.4f}")
            if sample >= self.n_burn_in:
                state["n_kept"] += 1
            if eval_idx is not None:
                with kernel_threads(self.n_threads):
                    pred = sampler.predict_ratings(eval_idx)
                if sample >= self.n_burn_in:
                    state["eval_sum"] = pred if state["eval_sum"] is None else state["eval_sum"] + pred
                    pred = state["eval_sum"] / state["n_kept"]
                pred = self._clip(pred)
                state["val"] = float(np.sqrt(np.mean((pred - eval_data.values) ** 2)))
            if sample in save_at:
                saved.add(self._saved_piece(sampler.summary(), design))
                if levels is not None:
                    cuts.append(sampler.cut.copy())
            return {"train_loss": rmse, "alpha": alpha}

        evaluate = (lambda: {"val_rmse": state["val"]}) if eval_idx is not None else None
        self._run_epochs(self.n_iter, step, evaluate=evaluate, verbose=False)
        if hasattr(bar, "close"):
            bar.close()
        self._store(saved, design, cuts if levels is not None else None)
        if levels is not None:
            self.rating_values_ = levels
        self.n_kept_samples_ = state["n_kept"]

    def _n_to_save(self, design, levels) -> int:
        """``n_saved_samples``, or with None the most samples whose stored arrays fit in ``max_saved_mb``:
        per sample k float32 factors per entity, under the probit also a float32 bias per entity."""
        if self.n_saved_samples is not None:
            return int(self.n_saved_samples)
        per_entity = self.n_factors + (1 if levels is not None else 0)
        per_sample = 4.0 * per_entity * design.n_entities
        return max(1, int(self.max_saved_mb * 2 ** 20 // per_sample))

    @staticmethod
    def _saved_piece(smp: dict, design) -> dict:
        """One saved sample as the prediction needs it: float32 factors per relation and float64 biases.

        A row's score is w0 + Σ_r d_r + Σ_{r<r'} q_r · q_r'. The day's q_t and d_t are kept centred on
        the rating-weighted average day (q̄, d̄), the (user, day) pair's q_s and d_s on the unseen pair
        (q0, d0), and what the centring takes out is folded into the user, item and day biases, so that
        a row without a timestamp (the average day, an unseen pair) is the user-item part alone:

            score = b_u + b_i + q_u·q_i + [b_t + q_t'·(q_u + q_i)] + [b_s + q_s'·(q_u + q_i + q_t')]
            b_u = d_u + q_u·(q̄ + q0),  b_i = d_i + q_i·(q̄ + q0) + w0 + d̄ + d0 + q0·q̄,
            b_t = d_t − d̄ + q0·q_t',   b_s = d_s − d0 + q_s'·q̄   (q_t' = q_t − q̄, q_s' = q_s − q0).
        """
        qu, du, qi, di = smp["q"][0], smp["d"][0], smp["q"][1], smp["d"][1]
        k = qu.shape[1]
        qbar, dbar, q0, d0 = np.zeros(k), 0.0, np.zeros(k), 0.0
        piece = {}
        if "user_day" in design.relations:
            r = design.relations.index("user_day")
            qs, ds = smp["q"][r], smp["d"][r]
            q0, d0 = qs[-1].copy(), float(ds[-1])  # the unseen pair: the relation's last entity
        if "day" in design.relations:
            r = design.relations.index("day")
            qt, dt = smp["q"][r], smp["d"][r]
            qbar = design.day_weights @ qt
            dbar = float(design.day_weights @ dt)
            piece["qt"] = (qt - qbar).astype(np.float32)
            piece["bt"] = dt - dbar + (qt - qbar) @ q0
        if "user_day" in design.relations:
            piece["qs"] = (qs[:-1] - q0).astype(np.float32)
            piece["bs"] = ds[:-1] - d0 + (qs[:-1] - q0) @ qbar
        piece["bu"] = du + qu @ (qbar + q0)
        piece["bi"] = di + qi @ (qbar + q0) + smp["w0"] + dbar + d0 + float(q0 @ qbar)
        piece["qu"] = qu.astype(np.float32)
        piece["qi"] = qi.astype(np.float32)
        return piece

    def _store(self, saved: "_SavedSamples", design, cuts=None) -> None:
        """The saved samples (:meth:`_saved_piece`) as the prediction arrays; under the probit (``cuts``)
        also every sample's biases and cutpoints, since the expected rating is not linear in the score."""
        a = saved.arrays()
        scale = np.float32(1.0 / np.sqrt(saved.count))
        for key in ("qu", "qi", "qt", "qs"):
            if key in a:
                a[key] *= scale
        self.user_factors_, self.item_factors_ = a["qu"], a["qi"]
        self.user_bias_ = a["bu"].mean(axis=1).astype(np.float32)
        self.item_bias_ = (a["bi"].mean(axis=1) - self.global_mean_).astype(np.float32)
        if "qt" in a:
            self.days_ = design.days.astype(np.int64)
            self.day_factors_ = a["qt"]
            self.day_bias_ = a["bt"].mean(axis=1).astype(np.float32)
        if "qs" in a:
            self.session_users_ = design.session_users.astype(np.int64)
            self.session_days_ = design.session_days.astype(np.int64)
            self.session_factors_ = a["qs"]
            self.session_bias_ = a["bs"].mean(axis=1).astype(np.float32)
        if cuts is not None:
            self.cutpoint_samples_ = np.asarray(cuts, np.float64)
            self.cutpoints_ = self.cutpoint_samples_.mean(axis=0)
            self.user_bias_samples_ = a["bu"].astype(np.float32)
            self.item_bias_samples_ = a["bi"].astype(np.float32)
            if "bt" in a:
                self.day_bias_samples_ = a["bt"].astype(np.float32)
            if "bs" in a:
                self.session_bias_samples_ = a["bs"].astype(np.float32)

    # ------------------------------------------------------------------ prediction
    def _predict_rows(self, X, u, i, known) -> np.ndarray:
        """The average over the saved samples of the rows with a known user and item
        (with ``loss="ordinal"``: of every sample's expected rating at its cutpoints).

        With the ``"day"`` feature, rows carry their day through the timestamps of an
        :class:`Interactions` or a ``timestamp`` column of a DataFrame (a day not seen in
        training counts as the nearest training day); rows without a timestamp get
        the training-average day. With ``"user_day"`` a row whose (user, day) pair was
        seen in training gets that pair's terms; any other row the unseen pair's (its prior
        mean). Unknown users/items fall back as in every model.
        """
        ts = _timestamps(X)
        t = s = None
        if ts is not None and getattr(self, "days_", None) is not None:
            t = feat.nearest_day(self.days_, ts[known])
        if ts is not None and getattr(self, "session_users_", None) is not None:
            s = feat.session_codes(self.session_users_, self.session_days_, u, ts[known])
            s[s == len(self.session_users_)] = -1  # the unseen pair: its terms are in the biases
        u, i = np.asarray(u, np.int64), np.asarray(i, np.int64)
        with kernel_threads(self.n_threads):
            if getattr(self, "cutpoint_samples_", None) is not None:
                return kern.ordinal_rows_expected(self.user_factors_, self.item_factors_, self.user_bias_samples_,
                                                  self.item_bias_samples_, u, i, *self._day_pair_args(t, s, True),
                                                  self.cutpoint_samples_, self.rating_values_).astype(np.float32)
            out = kern.rows_mean_score(self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_,
                                       u, i, *self._day_pair_args(t, s, False))
        return (out + self.global_mean_).astype(np.float32)

    def _day_pair_args(self, t, s, per_sample: bool) -> tuple:
        """The prediction kernels' day and pair arguments (factors, biases, codes; empty for none):
        ``t`` day codes or None, ``s`` (user, day) pair codes (-1: unseen) or None; the biases of
        every saved sample (``per_sample``, the probit) or their mean."""
        width = self.user_factors_.shape[1]
        bias_shape = (0, self.cutpoint_samples_.shape[0]) if per_sample else (0,)
        none = (np.empty((0, width), np.float32), np.empty(bias_shape, np.float32), np.empty(0, np.int64))
        day = none if t is None else (self.day_factors_, self.day_bias_samples_ if per_sample else self.day_bias_,
                                      np.asarray(t, np.int64))
        pair = none if s is None else (self.session_factors_,
                                       self.session_bias_samples_ if per_sample else self.session_bias_,
                                       np.asarray(s, np.int64))
        return day + pair

    def _fallback(self, u, i) -> np.ndarray:
        """As every model (global mean plus the known side's bias). With ``loss="ordinal"`` the biases
        are latent scores: a row with a known user or item gets the expected rating (average
        cutpoints) at its known side's bias plus the other side's average bias."""
        out = super()._fallback(u, i)
        some = (u >= 0) | (i >= 0)
        if getattr(self, "cutpoints_", None) is not None and some.any():
            uk, ik = u[some], i[some]
            score = (np.where(uk >= 0, self.user_bias_[np.maximum(uk, 0)], self.user_bias_.mean())
                     + np.where(ik >= 0, self.item_bias_[np.maximum(ik, 0)], self.item_bias_.mean())
                     + self.global_mean_)
            out[some] = ordinal.expected_rating(score, self.cutpoints_, self.rating_values_)
        return out


def resolve_loss(loss: str, ratings) -> str:
    """The likelihood ``loss`` stands for on these training ratings (``"auto"``: ordinal for 2 to
    ``MAX_ORDINAL_LEVELS`` distinct values)."""
    if loss != "auto":
        return loss
    return "ordinal" if 2 <= len(np.unique(np.asarray(ratings))) <= MAX_ORDINAL_LEVELS else "squared"


def _timestamps(X) -> np.ndarray | None:
    """Timestamps (seconds) of the rows of ``X`` when it carries them."""
    if isinstance(X, Interactions):
        return X.timestamps
    if isinstance(X, pd.DataFrame) and "timestamp" in X.columns:
        col = X["timestamp"]
        if pd.api.types.is_datetime64_any_dtype(col):
            return col.astype("int64").to_numpy() // 10**9
        return pd.to_numeric(col).to_numpy(np.int64)
    return None


class _SavedSamples:
    """The saved samples' pieces (:meth:`BayesianFM._saved_piece`), written in place as they come:
    per factor key (q*) an (entities, S·k) float32 array holding the samples side by side, per bias
    key (b*) an (entities, S) float64 array; no list of pieces and no stacked copy of it."""

    def __init__(self, n: int):
        self.n, self.count, self._arrays = n, 0, {}

    def add(self, piece: dict) -> None:
        for key, v in piece.items():
            a = self._arrays.get(key)
            if a is None:
                shape = (len(v), self.n * v.shape[1]) if v.ndim == 2 else (len(v), self.n)
                a = self._arrays[key] = kern.empty_2d(*shape, np.float32 if v.ndim == 2 else np.float64)
            if v.ndim == 2:
                a[:, self.count * v.shape[1]:(self.count + 1) * v.shape[1]] = v
            else:
                a[:, self.count] = v
        self.count += 1

    def arrays(self) -> dict:
        """The arrays, once every one of the ``n`` samples is in (``save_at`` holds n distinct samples)."""
        if self.count != self.n:
            raise ModelError(f"BayesianFM saved {self.count} samples, expected {self.n}")
        return self._arrays


class _Sampler:
    """State of one Gibbs chain: parameters, per-entity sums, residuals and hyper-parameters."""

    def __init__(self, design, idx, y, k, init_std, rng, levels=None):
        self.d, self.idx, self.k, self.rng = design, idx, k, rng
        self.ratings = np.asarray(y, np.float64)
        self.n = len(self.ratings)
        self.levels = levels
        if levels is None:  # the Gaussian target is the rating
            self.y = self.ratings
            self.w0 = float(self.y.mean())
        else:  # ordered probit: the target is the latent score z, drawn given the class and the cutpoints
            self.cls = np.searchsorted(levels, self.ratings).astype(np.int64)
            self.cut = ordinal.initial_cutpoints(self.cls, len(levels))
            # the first cutpoint is fixed at 0 and w0 (sampled as under the Gaussian) carries the location
            self.w0 = -float(self.cut[0])
            self.cut = self.cut - self.cut[0]
            self.y = ordinal.sample_latent(np.full(self.n, self.w0), self.cut, self.cls, rng)
            self.n_accepted = 0
        p, n_ent, G = design.n_features, design.n_entities, len(design.group_names)
        self.er_ptr, self.er_rows = feat.entity_rows(idx, n_ent)
        ef, fe = design.ef, design.fe
        self.ef = (ef.indptr.astype(np.int64), ef.indices.astype(np.int32), ef.data.astype(np.float64))
        # unsigned indices for the sweep kernel: numba then skips the negative-index wraparound checks
        # (measured ~25 % of kern.sweep_parameters' time)
        self.fe = (fe.indptr.astype(np.uint64), fe.indices.astype(np.uint32), fe.data.astype(np.float64))
        self.w = np.zeros(p)
        self.V = rng.normal(0.0, init_std, (p, k)) if init_std > 0 else np.zeros((p, k))
        self.Q = np.zeros((n_ent, k))
        self.L = np.zeros(n_ent)
        self.S = np.zeros(n_ent)
        self.mu_w, self.lam_w = np.zeros(G), np.ones(G)
        self.mu_v, self.lam_v = np.zeros((G, k)), np.ones((G, k))
        self.alpha = 1.0
        self.resid = np.empty(self.n)
        self.n_sweeps = 0
        self.sizes = np.diff(design.g_start).astype(np.float64)
        self.g_start = design.g_start.astype(np.int64)
        self.ent_start = np.asarray(design.ent_start, np.int64)
        self.rel_groups = np.asarray(design.rel_groups, np.int64)
        # one-hot groups whose features are drawn in parallel (independent: they share no entity)
        self.g_parallel = design.g_onehot & (self.sizes >= PARALLEL_GROUP)
        # the fused kernel applies a relation's change to a row through the row's next relation
        if len(design.relations) < 2 or (idx < 0).any():
            raise ModelError("BayesianFM: every training row needs an entity in each of >= 2 relations")
        self.chunks = kern.row_chunks(self.ent_start, self.er_ptr)
        # per entry of er_rows: the row's entity in every relation, then the row itself
        self.er_idx = np.ascontiguousarray(np.column_stack([idx[self.er_rows], self.er_rows]), dtype=np.uint32)
        self.er_ptr_u = self.er_ptr.astype(np.uint64)

    def _group_sums(self, a):
        return np.add.reduceat(a, self.g_start[:-1], axis=0)

    def _hyper(self, theta, mu, lam):
        """Draw (μ_g, λ_g) of every group (columns of 2-d ``theta`` independently)."""
        n = self.sizes if theta.ndim == 1 else self.sizes[:, None]
        sum_t = self._group_sums(theta)
        mu = self.rng.normal((sum_t + GAMMA_0 * MU_0) / (n + GAMMA_0), 1.0 / np.sqrt((n + GAMMA_0) * lam))
        sq = self._group_sums((theta - np.repeat(mu, self.sizes.astype(np.int64), axis=0)) ** 2)
        shape = (ALPHA_LAMBDA + n + 1.0) / 2.0
        rate = (BETA_LAMBDA + sq + GAMMA_0 * (mu - MU_0) ** 2) / 2.0
        lam = self.rng.gamma(shape, 1.0 / rate)
        return mu, lam

    def sweep(self) -> tuple[float, float]:
        rng = self.rng
        if self.n_sweeps % REFRESH == 0:  # recompute the incrementally kept sums (rounding drift)
            kern.entity_sums(*self.ef, self.w, self.V, self.Q, self.L, self.S)
            kern.row_predict(self.idx, self.w0, self.Q, self.L, self.S, self.resid)
            np.subtract(self.y, self.resid, out=self.resid)
        self.n_sweeps += 1
        if self.levels is None:
            sse = float(self.resid @ self.resid)
            self.alpha = float(rng.gamma((ALPHA_0 + self.n) / 2.0, 2.0 / (BETA_0 + sse)))
        else:  # cutpoints | scores, then the latent targets | scores, cutpoints (probit: α = 1)
            eta = self.y - self.resid
            self.cut, accepted = ordinal.sample_cutpoints(eta, self.cut, self.cls, rng, fix_first=True)
            self.n_accepted += accepted
            # ordinal.sample_latent in numba, in place (the same uniforms)
            kern.ordinal_latent(self.y, self.resid, self.cut, self.cls, rng.uniform(size=self.n))
        self.mu_w, self.lam_w = self._hyper(self.w, self.mu_w, self.lam_w)
        self.mu_v, self.lam_v = self._hyper(self.V, self.mu_v, self.lam_v)
        # w0 ~ N(0, 1/REG_0); under the probit (α = 1) it is the location, the first cutpoint being fixed at 0
        prec = self.alpha * self.n + REG_0
        new_w0 = (self.alpha * (self.resid.sum() + self.w0 * self.n)) / prec + rng.standard_normal() / np.sqrt(prec)
        self.resid -= new_w0 - self.w0
        self.w0 = float(new_w0)
        self.sweep_parameters()
        if self.levels is None:
            return float(np.sqrt(np.mean(self.resid ** 2))), self.alpha
        sse = kern.ordinal_sse(self.y, self.resid, self.cut, self.levels, self.ratings)
        return float(np.sqrt(sse / self.n)), self.alpha

    def sweep_parameters(self) -> None:
        """Draw every w_j (relation by relation), then every column f of V (relation by relation)."""
        d = self.d
        z = self.rng.standard_normal((self.k + 1, d.n_features))
        kern.sweep_parameters(self.idx, self.er_idx, self.ent_start, self.rel_groups, self.g_start,
                              self.g_parallel, self.chunks,
                              *self.fe, self.er_ptr_u, self.w, self.V, self.Q, self.L, self.S, self.resid,
                              self.mu_w, self.lam_w, self.mu_v, self.lam_v, self.alpha, z)

    def finite(self) -> bool:
        return bool(np.isfinite(self.w0) and np.isfinite(self.w.sum()) and np.isfinite(self.V.sum()))

    def predict_rows(self, idx) -> np.ndarray:
        out = np.empty(len(idx))
        kern.row_predict(idx, self.w0, self.Q, self.L, self.S, out)
        return out

    def predict_ratings(self, idx) -> np.ndarray:
        """This sample's predicted ratings (under the probit: the expected rating at its cutpoints)."""
        score = self.predict_rows(idx)
        if self.levels is None:
            return score
        return kern.ordinal_expected(score[:, None], self.cut[None, :], self.levels)

    def summary(self) -> dict:
        """Per relation: the entities' Q and d = L + (|Q|² − S)/2, and w0 (one saved sample).

        An entity without rows (a side-table user or item: cold start) has an id whose parameters
        this sample drew from its group prior; the summary uses the prior mean instead (the
        prediction is linear in them, so this is their average without the draw's noise)."""
        q, dd = [], []
        for r in range(len(self.d.relations)):
            lo, hi = int(self.d.ent_start[r]), int(self.d.ent_start[r + 1])
            Q, L, S = self.Q[lo:hi].copy(), self.L[lo:hi].copy(), self.S[lo:hi].copy()
            empty = np.flatnonzero(self.er_ptr[lo + 1:hi + 1] == self.er_ptr[lo:hi])
            if len(empty):
                g = int(self.d.rel_groups[r])  # the relation's first group is its id (one-hot, value 1)
                j = int(self.d.g_start[g]) + empty
                Q[empty] += self.mu_v[g] - self.V[j]
                L[empty] += self.mu_w[g] - self.w[j]
                S[empty] += (self.mu_v[g] ** 2).sum() - (self.V[j] ** 2).sum(axis=1)
            q.append(Q)
            dd.append(L + 0.5 * ((Q ** 2).sum(axis=1) - S))
        return {"q": q, "d": dd, "w0": self.w0}
