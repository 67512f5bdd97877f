"""numba kernels of NeuMF's hand-written mini-batch step on the CPU (:class:`latentrec.models.neural._nets.NeuMFStep`).

A NeuMF batch is B observed pairs, each with its M − 1 sampled negatives: the pairs form a
(B, M) grid whose rows share one user. The dense layers' matrix products stay with torch
(BLAS); these kernels do the per-pair work around them in one pass each, where torch ops
paid ~15 passes and autograd a scatter per gathered tensor:

* :func:`distinct_items` — the batch's distinct items and each pair's position among them
  (a slot table over the catalogue instead of a sort);
* :func:`first_layer` — h0 = relu(A_b + C_i + b0) per pair from the user half A = p' W_user
  (once per row of the grid) and the item half C = q' W_item (once per distinct item), and
  the GMF term (p_b ⊙ w_g) · q_i;
* :func:`output_bce` — the output layer, the binary cross-entropy on logits (label 1 in the
  grid's first column) and its gradient at the output and at the last hidden layer;
* :func:`first_layer_backward` — relu's mask on layer 0's gradient, summed per grid row (user
  side) and per distinct item (item side, in a fixed number of chunks), with the GMF gradients;
* :func:`rows_adam` — SparseAdam's lazy Adam (or SGD) on the table rows the batch touched.

tests/test_kernels_neumf.py checks each against a plain NumPy / torch reference on tiny
inputs, and tests/test_neural.py the whole step against autograd + SparseAdam / Adam / SGD.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def distinct_items(items, slot, out):
    """(d, at, counts): ``out[:d]`` the distinct values of ``items`` (first appearance order), ``at``
    each entry's position there, ``counts`` (d,) float32 their multiplicities. ``slot`` is an int64
    array over the catalogue, all −1 on entry and on exit."""
    n = len(items)
    at = np.empty(n, np.int64)
    d = 0
    for j in range(n):
        it = items[j]
        s = slot[it]
        if s < 0:
            s = d
            slot[it] = d
            out[d] = it
            d += 1
        at[j] = s
    counts = np.zeros(d, np.float32)
    for j in range(n):
        counts[at[j]] += 1.0
    for a in range(d):
        slot[out[a]] = -1
    return d, at, counts


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def first_layer(a_user, c_item, b0, at, pw, q, m, h0, sg):
    """h0[r] = relu(a_user[b] + c_item[at[r]] + b0) and sg[r] = pw[b] · q[at[r]] for the pairs r = b m + j."""
    n_rows, width = a_user.shape
    k = pw.shape[1]
    for b in numba.prange(n_rows):
        for j in range(m):
            r = b * m + j
            c = at[r]
            for f in range(width):
                x = a_user[b, f] + c_item[c, f] + b0[f]
                h0[r, f] = x if x > 0 else np.float32(0.0)
            acc = np.float32(0.0)
            for f in range(k):
                acc += pw[b, f] * q[c, f]
            sg[r] = acc


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def output_bce(h, wm, c, sg, m, ds, dz):  # c: np.float32
    """Scores s = sg + h wm + c, labels 1 where r % m == 0; ds = (σ(s) − y) / n (the mean BCE's
    gradient at s) and dz = ds wm ⊙ [h > 0] (at the last layer's pre-activation). Returns the BCE sum."""
    n, width = h.shape
    inv = np.float32(1.0 / n)
    total = 0.0
    for r in numba.prange(n):
        s = sg[r] + c
        for f in range(width):
            s += h[r, f] * wm[f]
        y = np.float32(1.0) if r % m == 0 else np.float32(0.0)
        e = np.exp(-abs(s))
        total += max(s, np.float32(0.0)) - s * y + np.log1p(e)
        sig = np.float32(1.0) / (np.float32(1.0) + e) if s >= 0 else e / (np.float32(1.0) + e)
        d = (sig - y) * inv
        ds[r] = d
        for f in range(width):
            dz[r, f] = d * wm[f] if h[r, f] > 0 else np.float32(0.0)
    return total


#: the pairs of a batch are cut into this many contiguous chunks for the item-side sums, whatever the
#: thread count (so the sums, and the fit, are the same with 1 or 2 threads)
CHUNKS = 2


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def first_layer_backward(dh0, h0, at, ds, pw, q, m, d_user, g_pw, d_item, g_q):
    """One pass over the pairs r = b m + j: dz = dh0 ⊙ [h0 > 0]; per grid row b d_user[b] = Σ_j dz[r] and
    g_pw[b] = Σ_j ds[r] q[at[r]]; per distinct item c d_item[c] = Σ dz[r], g_q[c] = Σ ds[r] pw[b] over its
    pairs. ``d_item``/``g_q`` are (CHUNKS + 1, d, ·) buffers: each chunk of grid rows sums into its own
    slice, and slice CHUNKS receives their total."""
    n_rows = pw.shape[0]
    width = dh0.shape[1]
    k = pw.shape[1]
    n_items = d_item.shape[1]
    per = (n_rows + CHUNKS - 1) // CHUNKS
    for chunk in numba.prange(CHUNKS):
        di = d_item[chunk]
        gq = g_q[chunk]
        di[:] = 0.0
        gq[:] = 0.0
        for b in range(chunk * per, min(n_rows, (chunk + 1) * per)):
            for f in range(width):
                d_user[b, f] = 0.0
            for f in range(k):
                g_pw[b, f] = 0.0
            for j in range(m):
                r = b * m + j
                c = at[r]
                d = ds[r]
                for f in range(width):
                    x = dh0[r, f] if h0[r, f] > 0 else np.float32(0.0)
                    d_user[b, f] += x
                    di[c, f] += x
                for f in range(k):
                    g_pw[b, f] += d * q[c, f]
                    gq[c, f] += d * pw[b, f]
    for c in numba.prange(n_items):
        for f in range(width):
            acc = np.float32(0.0)
            for chunk in range(CHUNKS):
                acc += d_item[chunk, c, f]
            d_item[CHUNKS, c, f] = acc
        for f in range(k):
            acc = np.float32(0.0)
            for chunk in range(CHUNKS):
                acc += g_q[chunk, c, f]
            g_q[CHUNKS, c, f] = acc


@numba.njit(cache=True, nogil=True, fastmath=True)
def _accumulate_rows(grad, mark, touched, n_touched, rows, g):
    """Add each occurrence's gradient g[a] to grad[rows[a]], listing every row seen for the first
    time (``mark`` 0) in ``touched`` after the ``n_touched`` already there; returns the new count."""
    for a in range(len(rows)):
        row = rows[a]
        for f in range(grad.shape[1]):
            grad[row, f] += g[a, f]
        if mark[row] == 0:
            mark[row] = 1
            touched[n_touched] = row
            n_touched += 1
    return n_touched


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def rows_adam(table, mom1, mom2, grad, mark, touched, rows_a, g_a, rows_b, g_b, lr, adam, t, b1, b2, eps):
    """Sum the per-occurrence row gradients g_a (rows ``rows_a``) and g_b (rows ``rows_b``) per row of
    ``table`` (``grad``, ``mark`` zero on entry and exit; ``touched`` room for both), then lazy Adam with
    bias correction by the step count ``t`` (SparseAdam's rule) or SGD on those rows only."""
    width = table.shape[1]
    n_touched = _accumulate_rows(grad, mark, touched, 0, rows_a, g_a)
    n_touched = _accumulate_rows(grad, mark, touched, n_touched, rows_b, g_b)
    step = np.float32(lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t) if adam else lr)
    f1, f2, g1, g2, fe = np.float32(b1), np.float32(b2), np.float32(1.0 - b1), np.float32(1.0 - b2), np.float32(eps)
    for a in numba.prange(n_touched):
        row = touched[a]
        mark[row] = 0
        for f in range(width):
            g = grad[row, f]
            grad[row, f] = 0.0
            if adam:
                mm = f1 * mom1[row, f] + g1 * g
                vv = f2 * mom2[row, f] + g2 * g * g
                mom1[row, f] = mm
                mom2[row, f] = vv
                table[row, f] -= step * mm / (np.sqrt(vv) + fe)
            else:
                table[row, f] -= step * g


@numba.njit(cache=True, nogil=True, fastmath=True)
def dense_step(param, grad, mom1, mom2, lr, weight_decay, adam, t, b1, b2, eps):
    """torch.optim.Adam's update (L2 ``weight_decay`` added to the gradient, eps after the bias-corrected
    root) or torch.optim.SGD's on the flat ``param`` with gradient ``grad``; ``t`` the step count."""
    bc1 = 1.0 - b1 ** t
    bc2_root = math.sqrt(1.0 - b2 ** t)
    step = np.float32(lr / bc1)
    f2, g1, g2 = np.float32(b2), np.float32(1.0 - b1), np.float32(1.0 - b2)
    root, fe, wd, rate = np.float32(bc2_root), np.float32(eps), np.float32(weight_decay), np.float32(lr)
    for f in range(len(param)):
        g = grad[f] + wd * param[f]
        if adam:
            mm = mom1[f] + (g - mom1[f]) * g1
            vv = f2 * mom2[f] + g2 * g * g
            mom1[f] = mm
            mom2[f] = vv
            param[f] -= step * mm / (np.sqrt(vv) / root + fe)
        else:
            param[f] -= rate * g
