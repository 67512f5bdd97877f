"""Synthetic data with a planted latent structure, for fast tests and scale benchmarks.

Ratings follow r = μ + b_u + b_i + p_u·q_i + noise, rounded and clipped to the
scale; which items a user rates follows a Zipf-like popularity long tail. The
implicit generator plants the same structure in which items are chosen.
"""

from __future__ import annotations

import numpy as np

from .._util import check_random_state
from .interactions import Interactions
from .vocab import Vocabulary


def _capped(weights: np.ndarray, cap: float) -> np.ndarray:
    """Normalise ``weights`` with no share above ``cap``.

    Without the cap, the heaviest users (or items) of a large set would be asked
    for more pairs than there are items (users), and sampling distinct pairs
    would never finish.
    """
    w = weights / weights.sum()
    for _ in range(50):
        over = w > cap
        if not over.any():
            break
        w[over] = cap
        w /= w.sum()
    return w


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    # a plain sort: numpy 2's hash-based np.unique is several times slower on int64 keys
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def _sample_pairs(rng, n_users, n_items, n_rows, popularity_exponent, item_affinity=None):
    """Distinct (user, item) pairs: user activity and item popularity both long-tailed."""
    user_w = _capped(rng.pareto(1.5, n_users) + 1.0, 0.5 * n_items / n_rows)
    item_rank = rng.permutation(n_items)
    item_w = _capped(1.0 / (item_rank + 1.0) ** popularity_exponent, 0.5 * n_users / n_rows)
    need = n_rows
    keys = np.empty(0, dtype=np.int64)
    for _ in range(20):
        draw = int(need * 1.3) + 16
        u = rng.choice(n_users, size=draw, p=user_w)
        i = rng.choice(n_items, size=draw, p=item_w)
        if item_affinity is not None:  # keep pairs the planted structure prefers
            keep = rng.random(draw) < item_affinity(u, i)
            u, i = u[keep], i[keep]
        new = u.astype(np.int64) * n_items + i
        keys = _sorted_unique(np.concatenate([keys, new]))
        if len(keys) >= n_rows:
            break
        need = n_rows - len(keys)
    keys = rng.permutation(keys)[:n_rows]
    return (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)


def synthetic_ratings(n_users: int = 500, n_items: int = 300, n_ratings: int = 20_000, *, rank: int = 5,
                      noise: float = 0.3, scale: tuple[float, float] = (1.0, 5.0), step: float | None = 1.0,
                      popularity_exponent: float = 0.8, random_state=0, with_timestamps: bool = True) -> Interactions:
    """Explicit ratings with a planted rank-``rank`` structure plus biases.

    The planted parts are kept on the result as ``planted`` (a dict with ``mu``,
    ``user_bias``, ``item_bias``, ``P``, ``Q``) so tests can check recovery.
    """
    if n_ratings > n_users * n_items:
        raise ValueError(f"{n_ratings} ratings do not fit in {n_users} x {n_items} cells")
    rng = check_random_state(random_state)
    lo, hi = scale
    mu = lo + 0.6 * (hi - lo)
    spread = (hi - lo) / 4.0
    bu = rng.normal(0, 0.3 * spread, n_users).astype(np.float32)
    bi = rng.normal(0, 0.4 * spread, n_items).astype(np.float32)
    P = rng.normal(0, np.sqrt(spread / rank), (n_users, rank)).astype(np.float32)
    Q = rng.normal(0, np.sqrt(spread / rank), (n_items, rank)).astype(np.float32)
    u, i = _sample_pairs(rng, n_users, n_items, n_ratings, popularity_exponent)
    r = mu + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i]) + rng.normal(0, noise, len(u))
    if step:
        r = np.round((r - lo) / step) * step + lo
    r = np.clip(r, lo, hi).astype(np.float32)
    ts = (1_000_000_000 + np.sort(rng.integers(0, 10**8, len(u)))) if with_timestamps else None
    if ts is not None:
        ts = ts[rng.permutation(len(u))]
    data = Interactions(Vocabulary(np.arange(n_users, dtype=np.int64)), Vocabulary(np.arange(n_items, dtype=np.int64)),
                        u, i, r, ts, rating_scale=scale, name=f"synthetic-ratings-{n_ratings}")
    data.planted = {"mu": mu, "user_bias": bu, "item_bias": bi, "P": P, "Q": Q}
    return data


def synthetic_implicit(n_users: int = 500, n_items: int = 300, n_interactions: int = 20_000, *, rank: int = 5,
                       popularity_exponent: float = 0.5, counts: bool = False, random_state=0,
                       with_timestamps: bool = True) -> Interactions:
    """Implicit feedback: a user's items are drawn with probability rising with p_u·q_i.

    With ``counts=True`` the weights are play counts (geometric, larger for
    better-matching items); otherwise every weight is 1.
    """
    if n_interactions > n_users * n_items:
        raise ValueError(f"{n_interactions} interactions do not fit in {n_users} x {n_items} cells")
    rng = check_random_state(random_state)
    P = rng.normal(0, 1.0 / np.sqrt(rank), (n_users, rank)).astype(np.float32)
    Q = rng.normal(0, 1.0 / np.sqrt(rank), (n_items, rank)).astype(np.float32)

    def affinity(u, i):
        z = np.einsum("ij,ij->i", P[u], Q[i]) * 8.0
        return 1.0 / (1.0 + np.exp(-z))

    u, i = _sample_pairs(rng, n_users, n_items, n_interactions, popularity_exponent, affinity)
    w = np.ones(len(u), dtype=np.float32)
    if counts:
        w = rng.geometric(np.clip(1.0 - 0.8 * affinity(u, i), 0.05, 1.0)).astype(np.float32)
    ts = (1_000_000_000 + rng.integers(0, 10**8, len(u))) if with_timestamps else None
    data = Interactions(Vocabulary(np.arange(n_users, dtype=np.int64)), Vocabulary(np.arange(n_items, dtype=np.int64)),
                        u, i, w, ts, rating_scale=None, name=f"synthetic-implicit-{n_interactions}")
    data.planted = {"P": P, "Q": Q}
    return data
