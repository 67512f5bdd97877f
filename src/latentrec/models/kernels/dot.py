"""numba kernel of the neural (biased) dot product's mini-batch epoch on the CPU (DotProduct, BiasedDotProduct).

The same loss, batches and lazy Adam (or plain SGD) as :class:`latentrec.models.neural._nets.DotProductStep`, in
one compiled call per epoch: torch ops pay a pass over memory per operation (~30 per batch
for gather, gradients, ``index_add_``, the moments and the update), this pays one pass over
the batch's ratings and one over the rows it touched. Each batch's gradients are taken at
the parameters before the batch (mini-batch semantics, as torch), summed per distinct row in
a dense buffer, then Adam runs on the touched rows only — in parallel, rows being independent.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def dot_epoch(table, m, v, grad, mark, touched, users, items, values, perm, batch_size, n_users, k, biased, mu,
              reg, reg_b, lr, adam, t, b1, b2, eps):
    """One epoch over ``values[perm]`` in batches; returns (sum of squared errors, Adam step count).

    ``table`` holds user rows then item rows, columns [factors (k) | bias]; ``m``, ``v`` its
    Adam moments; ``grad`` a zero buffer like ``table`` and ``mark`` a zero int8 array over its
    rows (both left zero); ``touched`` an int64 buffer of at least 2 * batch_size."""
    n = len(perm)
    w = table.shape[1]
    sse = 0.0
    users, items, values = users[perm], items[perm], values[perm]
    for start in range(0, n, batch_size):
        end = min(n, start + batch_size)
        c = 2.0 / (end - start)
        n_touched = 0
        for j in range(start, end):
            uu = users[j]
            ii = items[j] + n_users
            pred = np.float32(0.0)
            for f in range(k):
                pred += table[uu, f] * table[ii, f]
            if biased:
                pred += table[uu, k] + table[ii, k] + mu
            e = pred - values[j]
            sse += e * e
            ce = np.float32(c * e)
            cr = np.float32(c * reg)
            for f in range(k):
                pu = table[uu, f]
                qi = table[ii, f]
                grad[uu, f] += ce * qi + cr * pu
                grad[ii, f] += ce * pu + cr * qi
            if biased:
                grad[uu, k] += ce + c * reg_b * table[uu, k]
                grad[ii, k] += ce + c * reg_b * table[ii, k]
            if mark[uu] == 0:
                mark[uu] = 1
                touched[n_touched] = uu
                n_touched += 1
            if mark[ii] == 0:
                mark[ii] = 1
                touched[n_touched] = ii
                n_touched += 1
        t += 1
        step = np.float32(lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t) if adam else lr)
        f1, f2, g1, g2, fe = np.float32(b1), np.float32(b2), np.float32(1.0 - b1), np.float32(1.0 - b2), np.float32(eps)
        for a in numba.prange(n_touched):
            row = touched[a]
            mark[row] = 0
            for f in range(w):
                g = grad[row, f]
                grad[row, f] = 0.0
                if adam:
                    mm = f1 * m[row, f] + g1 * g
                    vv = f2 * v[row, f] + g2 * g * g
                    m[row, f] = mm
                    v[row, f] = vv
                    table[row, f] -= step * mm / (np.sqrt(vv) + fe)
                else:
                    table[row, f] -= step * g
    return sse, t
