"""Ordered-probit likelihood of :class:`BayesianFM` (``loss="ordinal"``).

The ratings are K ordered classes (the distinct training values, e.g. 1..5).
Albert & Chib (1993)'s data augmentation: each row has a latent score
z_n ~ N(r̂_n, 1) and falls in class k when c_{k-1} < z_n <= c_k (c_{-1} = -inf,
c_{K-1} = +inf). Given the cutpoints c, z is truncated normal and the FM sees z
as a Gaussian target of precision 1, so the Gibbs sweep of the squared loss is
reused unchanged (α fixed at 1). The cutpoints are drawn from their conditional
given the FM's scores with z integrated out (the collapsed step that keeps them
from being pinned between neighbouring z's, the slow mixing of sampling c | z):
an independence Metropolis-Hastings step whose proposal is the Laplace
approximation N(mode, -H^-1) of that conditional, mode found by Newton's method
(flat prior on c). BayesianFM fixes the first cutpoint at 0 and samples the
intercept w0 (prior N(0, 1)) as the location, as an earlier myFM commit did (chosen on
validation parts of u1..u5.base: docs/bayesian.md).

A prediction is the expected rating Σ_k value_k P(class k | r̂, c).
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri

from ..kernels import bfm as kern

_SQRT_2PI = np.sqrt(2.0 * np.pi)
#: Newton's method for the proposal's mode stops after a step below this (see :func:`_mode`)
STOP = 1e-4


def classes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct rating values and each row's class index."""
    levels, cls = np.unique(np.asarray(values, np.float64), return_inverse=True)
    return levels, cls.astype(np.int64)


def initial_cutpoints(cls: np.ndarray, n_classes: int) -> np.ndarray:
    """The cutpoints that fit the class shares exactly when every score is 0."""
    share = np.cumsum(np.bincount(cls, minlength=n_classes))[:-1] / len(cls)
    return ndtri(np.clip(share, 1e-6, 1 - 1e-6))


def _bounds(eta, cut, cls):
    ext = np.concatenate([[-np.inf], cut, [np.inf]])
    return ext[cls] - eta, ext[cls + 1] - eta


def _log_prob(lo, hi):
    """log(Φ(hi) - Φ(lo)) for lo < hi, accurate in both tails."""
    upper = lo > 0  # the interval is in the upper tail: use the mirror image
    a = np.where(upper, -hi, lo)
    b = np.where(upper, -lo, hi)
    lb, la = log_ndtr(b), log_ndtr(a)
    with np.errstate(divide="ignore"):  # an empty interval has log-probability -inf
        return lb + np.log1p(-np.exp(np.minimum(la - lb, 0.0)))


def log_likelihood(eta, cut, cls) -> float:
    if np.any(np.diff(cut) <= 0):
        return -np.inf
    return float(kern.ordinal_stats(eta, cut, cls, False)[0])


def _gradient_hessian(eta, cut, cls, with_ll: bool = False):
    """Gradient and (tridiagonal) Hessian of the log-likelihood in the cutpoints (and with ``with_ll``
    the log-likelihood), from the per-class sums of one numba pass over the rows
    (:func:`latentrec.models.kernels.bfm.ordinal_stats`; :func:`_gradient_hessian_numpy` is the reference)."""
    ll, st = kern.ordinal_stats(eta, cut, cls, True)
    g, H = _assemble(len(cut), st[0], st[1], st[2], st[3], st[4])
    return (g, H, float(ll)) if with_ll else (g, H)


def _assemble(K1, up_g, dn_g, up_h, dn_h, cross):
    # cut[k] is the upper bound of class k and the lower bound of class k + 1
    g = up_g[:K1] - dn_g[1:]
    H = np.diag(up_h[:K1] + dn_h[1:])
    off = cross[1:K1]
    H[np.arange(K1 - 1), np.arange(1, K1)] = off
    H[np.arange(1, K1), np.arange(K1 - 1)] = off
    return g, H


def _gradient_hessian_numpy(eta, cut, cls):
    """NumPy reference of :func:`_gradient_hessian` (tests)."""
    K1 = len(cut)
    lo, hi = _bounds(eta, cut, cls)
    logp = _log_prob(lo, hi)
    # φ(x)/P and x φ(x)/P, 0 at an infinite bound
    fin_lo, fin_hi = np.isfinite(lo), np.isfinite(hi)
    lo0, hi0 = np.where(fin_lo, lo, 0.0), np.where(fin_hi, hi, 0.0)
    r_lo = np.where(fin_lo, np.exp(-0.5 * lo0 ** 2 - logp) / _SQRT_2PI, 0.0)
    r_hi = np.where(fin_hi, np.exp(-0.5 * hi0 ** 2 - logp) / _SQRT_2PI, 0.0)
    # per-class sums (class k: lower bound cut[k - 1], upper bound cut[k]); r_hi = 0 in the top
    # class and r_lo = 0 in the bottom one, so every row can be summed

    def per_class(v):
        return np.bincount(cls, weights=v, minlength=K1 + 1)

    return _assemble(K1, per_class(r_hi), per_class(r_lo), per_class(-hi0 * r_hi - r_hi ** 2),
                     per_class(lo0 * r_lo - r_lo ** 2), per_class(r_lo * r_hi))


def _mode(eta, cut, cls, free, max_steps: int = 50):
    """Newton's method from ``cut``; returns the mode, the Hessian there and the log-likelihood at
    ``cut``; only the cutpoints at the indices ``free`` move. Newton converges quadratically, so once a
    step is below ``STOP`` = 1e-4 the next would be ~1e-8 (1e-6 of the cutpoints' posterior sd, ~5e-3 on ml-100k): stop there, and keep the Hessian
    of that last step (taken within 1e-4 of the mode). Each pass over the rows is a Newton step; this
    saves one to two of them per sweep against iterating to 1e-10 and evaluating the Hessian again."""
    c = cut.copy()
    ll_start = None
    for _ in range(max_steps):
        g, H, ll = _gradient_hessian(eta, c, cls, with_ll=True)
        if ll_start is None:
            ll_start = ll
        step = np.zeros_like(c)
        step[free] = np.linalg.solve(H[np.ix_(free, free)], g[free])
        new = c - step
        while np.any(np.diff(new) <= 0):  # stay ordered: halve the step
            step *= 0.5
            new = c - step
        c = new
        if np.max(np.abs(step)) < STOP:
            break
    return c, H, ll_start


def sample_cutpoints(eta, cut, cls, rng, fix_first: bool = False) -> tuple[np.ndarray, bool]:
    """One independence MH draw of the cutpoints given the scores ``eta``; returns (cut, accepted).
    With ``fix_first`` the first cutpoint stays where it is (BayesianFM fixes it at 0 and samples the
    intercept w0 instead) and the step draws the others from their conditional."""
    free = np.arange(1, len(cut)) if fix_first else np.arange(len(cut))
    if len(free) == 0:  # two classes and the one cutpoint fixed: nothing to draw
        return cut, True
    mode, H, ll_cut = _mode(eta, cut, cls, free)
    prec = -H[np.ix_(free, free)]
    prop = mode.copy()
    prop[free] += np.linalg.cholesky(np.linalg.inv(prec)) @ rng.standard_normal(len(free))

    def log_q(c):
        d = (c - mode)[free]
        return -0.5 * d @ prec @ d

    log_ratio = (log_likelihood(eta, prop, cls) - ll_cut) + log_q(cut) - log_q(prop)
    if np.log(rng.uniform()) < log_ratio:
        return prop, True
    return cut, False


def sample_latent(eta, cut, cls, rng) -> np.ndarray:
    """z_n ~ N(eta_n, 1) truncated to its class's interval (inverse CDF, mirrored in the upper tail)."""
    lo, hi = _bounds(eta, cut, cls)
    u = rng.uniform(size=len(eta))
    upper = lo > 0
    a = np.where(upper, -hi, lo)  # draw x ~ N(0,1) on (a, b), then mirror back where upper
    b = np.where(upper, -lo, hi)
    pa, pb = ndtr(a), ndtr(b)
    x = ndtri(np.clip(pa + u * (pb - pa), 1e-300, 1.0 - 1e-16))
    x = np.clip(x, a, b)
    return eta + np.where(upper, -x, x)


def expected_rating(eta, cut, levels) -> np.ndarray:
    """Σ_k levels_k P(class k | eta, cut) = levels_0 + Σ_k (levels_{k+1} − levels_k) P(z > cut_k);
    ``cut`` (..., K - 1) broadcasts against ``eta`` (...)."""
    levels = np.asarray(levels, np.float64)
    above = ndtr(np.asarray(eta, np.float64)[..., None] - np.asarray(cut, np.float64))  # (..., K - 1)
    return levels[0] + above @ np.diff(levels)


def expected_rows(qu, qi, bu, bi, u, i, qt, bt, t, qs, bs, ses, cuts, levels, block: int = 4096) -> np.ndarray:
    """NumPy reference of ``kern.ordinal_rows_expected``: each row's expected rating averaged over
    the saved samples, every sample's score rebuilt from its block of the stacked factors."""
    S = cuts.shape[0]
    k = qu.shape[1] // S
    out = np.empty(len(u))
    for lo in range(0, len(u), block):
        sl = slice(lo, lo + block)
        fu = qu[u[sl]].reshape(-1, S, k).astype(np.float64)
        fi = qi[i[sl]].reshape(-1, S, k).astype(np.float64)
        eta = S * np.einsum("nsk,nsk->ns", fu, fi) + bu[u[sl]] + bi[i[sl]]
        ctx = fu + fi
        if len(t):
            ft = qt[t[sl]].reshape(-1, S, k).astype(np.float64)
            eta += bt[t[sl]] + S * np.einsum("nsk,nsk->ns", ft, ctx)
            ctx = ctx + ft
        if len(ses):
            e = ses[sl]
            seen = e >= 0
            fs = qs[np.maximum(e, 0)].reshape(-1, S, k).astype(np.float64)
            eta += np.where(seen[:, None], bs[np.maximum(e, 0)] + S * np.einsum("nsk,nsk->ns", fs, ctx), 0.0)
        out[sl] = kern.ordinal_expected(eta, cuts, levels)
    return out
