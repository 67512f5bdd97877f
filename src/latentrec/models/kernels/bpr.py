"""Bayesian personalised ranking by lock-free (Hogwild) SGD with sampled negatives.

An epoch visits every positive (u, i) cell once, user by user in an order the
caller shuffles every epoch, and draws for each a negative item j uniformly over
the catalogue, re-drawn (up to ``max_tries`` times) while j is in u's row —
checked by binary search in the sorted CSR row; a sample whose every draw is
seen is skipped. The item bias is the last column
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
    # Lemire's multiply-shift: the top 32 bits scaled to [0, n) without a division
    return state, np.int64(((r >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


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
def _negative(state, indptr, indices, u, n_items, max_tries):
    """(state, a uniform item u has not seen, or -1 after ``max_tries`` seen draws)."""
    for _ in range(max_tries):
        state, cand = _below(state, n_items)
        if not _in_row(indices, indptr[u], indptr[u + 1], cand):
            return state, cand
    return state, -1


@njit(cache=True)
def draw_samples(indptr, indices, order, n_items, seed, max_tries):
    """The (u, i, j) triples a one-chunk epoch visiting users in ``order`` draws (j = -1: skipped)."""
    n = 0
    for pos in range(order.shape[0]):
        u = order[pos]
        n += indptr[u + 1] - indptr[u]
    out = np.empty((n, 3), dtype=np.int64)
    state = np.uint64(seed) | np.uint64(1)
    s = 0
    for pos in range(order.shape[0]):
        u = order[pos]
        for p in range(indptr[u], indptr[u + 1]):
            state, j = _negative(state, indptr, indices, u, n_items, max_tries)
            out[s, 0] = u
            out[s, 1] = indices[p]
            out[s, 2] = j
            s += 1
    return out


@njit(parallel=True, fastmath=True, cache=True)
def bpr_epoch(indptr, indices, order, bounds, X, Y, learning_rate, regularization, seeds, max_tries, out_stats):
    """One epoch over every positive cell (in place): users in ``order``, chunk ``c`` taking
    ``order[bounds[c]:bounds[c + 1]]`` with its own random stream ``seeds[c]``.

    Visiting a user's positives together keeps x_u in cache (the factor rows of a
    shuffled stream of cells would each be a cache miss); the user order is
    reshuffled by the caller every epoch. ``out_stats[chunk]`` = (sum of
    -log sigmoid(x_uij), correctly ordered samples, skipped samples).
    """
    n_chunks = bounds.shape[0] - 1
    n_items = Y.shape[0]
    k = X.shape[1]
    lr = np.float32(learning_rate)
    reg = np.float32(regularization)
    for ch in prange(n_chunks):
        state = np.uint64(seeds[ch]) | np.uint64(1)
        xu = np.empty(k, dtype=np.float32)
        yi = np.empty(k, dtype=np.float32)
        yj = np.empty(k, dtype=np.float32)
        loss = 0.0
        correct = 0
        skipped = 0
        for pos in range(bounds[ch], bounds[ch + 1]):
            u = order[pos]
            for p in range(indptr[u], indptr[u + 1]):
                i = indices[p]
                state, j = _negative(state, indptr, indices, u, n_items, max_tries)
                if j < 0:
                    skipped += 1
                    continue
                # copy the three rows to local buffers: the loops below then vectorise
                z = np.float32(0.0)
                for f in range(k):
                    xu[f] = X[u, f]
                    yi[f] = Y[i, f]
                    yj[f] = Y[j, f]
                for f in range(k):
                    z += xu[f] * (yi[f] - yj[f])
                if z > np.float32(0.0):
                    correct += 1
                # d/dz of log sigmoid(z) = 1 - sigmoid(z) = 1 / (1 + exp(z))
                ez = np.exp(-z) if z > np.float32(-30.0) else np.float32(1e13)
                g = ez / (np.float32(1.0) + ez)
                loss += np.log1p(ez)
                for f in range(k - 1):
                    X[u, f] = xu[f] + lr * (g * (yi[f] - yj[f]) - reg * xu[f])
                for f in range(k - 1):
                    Y[i, f] = yi[f] + lr * (g * xu[f] - reg * yi[f])
                for f in range(k - 1):
                    Y[j, f] = yj[f] + lr * (-g * xu[f] - reg * yj[f])
                # last column: item bias (user side fixed at 1)
                b = k - 1
                Y[i, b] = yi[b] + lr * (g - reg * yi[b])
                Y[j, b] = yj[b] + lr * (-g - reg * yj[b])
        out_stats[ch, 0] = loss
        out_stats[ch, 1] = correct
        out_stats[ch, 2] = skipped
