"""Bayesian personalised ranking by lock-free (Hogwild) SGD with sampled negatives.

Each sample draws an observed (u, i) cell uniformly over the stored cells and a
negative item j uniformly over the catalogue, re-drawn (up to ``max_tries``
times) while j is in u's row — checked by binary search in the sorted CSR row;
a sample whose every draw is seen is skipped. The item bias is the last column
of ``Y`` and the matching column of ``X`` is held at 1.

Random numbers come from a per-chunk xorshift64* stream seeded by the caller, so
one thread (one chunk) is deterministic and :func:`draw_samples` reproduces the
exact triples a single-chunk epoch uses (for the reference test). With several
threads the chunks race on shared rows, like implicit's BPR: not deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_MULT = np.uint64(2685821657736338717)


@njit(inline="always")
def _next(state):
    state ^= state >> np.uint64(12)
    state ^= state << np.uint64(25)
    state ^= state >> np.uint64(27)
    return state, state * _MULT


@njit(inline="always")
def _below(state, n):
    """(new state, a uniform integer in [0, n))."""
    state, r = _next(state)
    return state, np.int64((r >> np.uint64(11)) % np.uint64(n))


@njit(inline="always")
def _in_row(indices, lo, hi, item):
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v < item:
            lo = mid + 1
        elif v > item:
            hi = mid
        else:
            return True
    return False


@njit(inline="always")
def _sample(state, indptr, indices, row_of, n_items, max_tries):
    state, idx = _below(state, indices.shape[0])
    u = row_of[idx]
    i = indices[idx]
    j = -1
    for _ in range(max_tries):
        state, cand = _below(state, n_items)
        if not _in_row(indices, indptr[u], indptr[u + 1], cand):
            j = cand
            break
    return state, u, i, j


@njit(cache=True)
def draw_samples(indptr, indices, row_of, n_items, n_samples, seed, max_tries):
    """The (u, i, j) triples a one-chunk epoch with ``seed`` visits (j = -1: skipped)."""
    out = np.empty((n_samples, 3), dtype=np.int64)
    state = np.uint64(seed) | np.uint64(1)
    for s in range(n_samples):
        state, u, i, j = _sample(state, indptr, indices, row_of, n_items, max_tries)
        out[s, 0] = u
        out[s, 1] = i
        out[s, 2] = j
    return out


@njit(parallel=True, fastmath=True, cache=True)
def bpr_epoch(indptr, indices, row_of, X, Y, learning_rate, regularization, n_samples, seeds,
              max_tries, out_stats):
    """One epoch of ``n_samples`` SGD steps split over ``len(seeds)`` chunks (in place).

    ``out_stats[chunk]`` = (sum of -log sigmoid(x_uij), correctly ordered samples, skipped).
    """
    n_chunks = seeds.shape[0]
    n_items = Y.shape[0]
    k = X.shape[1]
    lr = np.float32(learning_rate)
    reg = np.float32(regularization)
    for ch in prange(n_chunks):
        state = np.uint64(seeds[ch]) | np.uint64(1)
        m = n_samples // n_chunks + (1 if ch < n_samples % n_chunks else 0)
        loss = 0.0
        correct = 0
        skipped = 0
        for _ in range(m):
            state, u, i, j = _sample(state, indptr, indices, row_of, n_items, max_tries)
            if j < 0:
                skipped += 1
                continue
            z = np.float32(0.0)
            for f in range(k):
                z += X[u, f] * (Y[i, f] - Y[j, f])
            if z > np.float32(0.0):
                correct += 1
            # d/dz of log sigmoid(z) = 1 - sigmoid(z) = 1 / (1 + exp(z))
            g = np.float32(1.0) / (np.float32(1.0) + np.exp(z))
            loss += np.log1p(np.exp(-np.float64(z))) if z > -30.0 else -np.float64(z)
            for f in range(k - 1):
                xu = X[u, f]
                yi = Y[i, f]
                yj = Y[j, f]
                X[u, f] = xu + lr * (g * (yi - yj) - reg * xu)
                Y[i, f] = yi + lr * (g * xu - reg * yi)
                Y[j, f] = yj + lr * (-g * xu - reg * yj)
            # last column: item bias (user side fixed at 1)
            b = k - 1
            Y[i, b] += lr * (g - reg * Y[i, b])
            Y[j, b] += lr * (-g - reg * Y[j, b])
        out_stats[ch, 0] = loss
        out_stats[ch, 1] = correct
        out_stats[ch, 2] = skipped
