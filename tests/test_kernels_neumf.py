"""NeuMF's step kernels (models/kernels/neumf.py) against plain NumPy / torch references on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from latentrec.models.kernels import neumf as kern

torch = pytest.importorskip("torch")

B, M, H, K, N_ITEMS = 7, 4, 5, 3, 9


def _grid(seed=0):
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, N_ITEMS, (B, M)).astype(np.int64)
    slot = np.full(N_ITEMS, -1, np.int64)
    out = np.empty(B * M, np.int64)
    d, at, counts = kern.distinct_items(grid.reshape(-1), slot, out)
    return rng, grid, d, at, counts, out[:d], slot


def test_distinct_items_is_unique_with_inverse_and_counts():
    _, grid, d, at, counts, items, slot = _grid()
    flat = grid.reshape(-1)
    np.testing.assert_array_equal(items[at], flat)
    assert sorted(items) == sorted(np.unique(flat)) and d == len(np.unique(flat))
    np.testing.assert_array_equal(counts, [np.sum(flat == it) for it in items])
    assert (slot == -1).all()  # left ready for the next batch


def test_first_layer_and_gmf_term():
    rng, grid, d, at, _, _, _ = _grid(1)
    a, c, b0 = (rng.normal(size=s).astype(np.float32) for s in ((B, H), (d, H), H))
    pw, q = rng.normal(size=(B, K)).astype(np.float32), rng.normal(size=(d, K)).astype(np.float32)
    h0, sg = np.empty((B * M, H), np.float32), np.empty(B * M, np.float32)
    kern.first_layer(a, c, b0, at, pw, q, M, h0, sg)
    rows = np.repeat(np.arange(B), M)
    np.testing.assert_allclose(h0, np.maximum(a[rows] + c[at] + b0, 0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sg, (pw[rows] * q[at]).sum(1), rtol=1e-5, atol=1e-6)
    assert (h0 == 0).any() and (h0 > 0).any()


def test_output_bce_loss_and_gradients():
    rng = np.random.default_rng(2)
    h = np.maximum(rng.normal(size=(B * M, H)), 0).astype(np.float32)
    wm, sg = rng.normal(size=H).astype(np.float32), (3 * rng.normal(size=B * M)).astype(np.float32)
    c = np.float32(0.3)
    ds, dz = np.empty(B * M, np.float32), np.empty_like(h)
    total = kern.output_bce(h, wm, c, sg, M, ds, dz)
    s = sg.astype(np.float64) + h.astype(np.float64) @ wm + c
    y = (np.arange(B * M) % M == 0).astype(np.float64)
    p = 1 / (1 + np.exp(-s))
    assert total == pytest.approx(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(), rel=1e-5)
    np.testing.assert_allclose(ds, (p - y) / (B * M), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(dz, ((p - y) / (B * M))[:, None] * wm * (h > 0), rtol=1e-5, atol=1e-8)


def test_first_layer_backward_sums_per_user_row_and_per_item():
    rng, grid, d, at, _, _, _ = _grid(3)
    dh0 = rng.normal(size=(B * M, H)).astype(np.float32)
    h0 = np.maximum(rng.normal(size=(B * M, H)), 0).astype(np.float32)
    ds = rng.normal(size=B * M).astype(np.float32)
    pw, q = rng.normal(size=(B, K)).astype(np.float32), rng.normal(size=(d, K)).astype(np.float32)
    d_user, g_pw = np.empty((B, H), np.float32), np.empty((B, K), np.float32)
    d_item = np.full((kern.CHUNKS + 1, d, H), np.nan, np.float32)  # garbage in: the kernel zeroes
    g_q = np.full((kern.CHUNKS + 1, d, K), np.nan, np.float32)
    kern.first_layer_backward(dh0.copy(), h0, at, ds, pw, q, M, d_user, g_pw, d_item, g_q)
    dz = dh0 * (h0 > 0)
    rows = np.repeat(np.arange(B), M)
    np.testing.assert_allclose(d_user, dz.reshape(B, M, H).sum(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_pw, (ds[:, None] * q[at]).reshape(B, M, K).sum(1), rtol=1e-5, atol=1e-6)
    want_i, want_q = np.zeros((d, H)), np.zeros((d, K))
    np.add.at(want_i, at, dz)
    np.add.at(want_q, at, ds[:, None] * pw[rows])
    np.testing.assert_allclose(d_item[kern.CHUNKS], want_i, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_q[kern.CHUNKS], want_q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("adam", [True, False])
def test_rows_adam_is_sparse_adam_on_the_touched_rows(adam):
    rng = np.random.default_rng(4)
    n_rows, w = 12, 3
    table = rng.normal(size=(n_rows, w)).astype(np.float32)
    ref = torch.nn.Parameter(torch.from_numpy(table.copy()))
    opt = torch.optim.SparseAdam([ref], lr=0.01) if adam else torch.optim.SGD([ref], lr=0.01)
    m, v, grad = np.zeros_like(table), np.zeros_like(table), np.zeros_like(table)
    mark = np.zeros(n_rows, np.int8)
    for t in range(1, 4):
        rows_a = rng.integers(0, 5, 6)  # repeated rows: their gradients add up
        rows_b = rng.choice(np.arange(5, n_rows), 3, replace=False)
        g_a, g_b = rng.normal(size=(6, w)).astype(np.float32), rng.normal(size=(3, w)).astype(np.float32)
        kern.rows_adam(table, m, v, grad, mark, np.empty(9, np.int64), rows_a, g_a, rows_b, g_b, 0.01, adam, t,
                       0.9, 0.999, 1e-8)
        dense = np.zeros((n_rows, w), np.float32)
        np.add.at(dense, rows_a, g_a)
        np.add.at(dense, rows_b, g_b)
        idx = np.unique(np.concatenate([rows_a, rows_b]))
        sparse = torch.sparse_coo_tensor(torch.from_numpy(idx)[None], torch.from_numpy(dense[idx]), (n_rows, w),
                                         check_invariants=True)
        ref.grad = sparse.coalesce() if adam else sparse.to_dense()
        opt.step()
        np.testing.assert_allclose(table, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert not grad.any() and not mark.any()  # left zero for the next batch


@pytest.mark.parametrize("adam", [True, False])
def test_dense_step_is_torch_adam_or_sgd(adam):
    rng = np.random.default_rng(5)
    param = rng.normal(size=20).astype(np.float32)
    ref = torch.nn.Parameter(torch.from_numpy(param.copy()))
    opt = (torch.optim.Adam if adam else torch.optim.SGD)([ref], lr=0.02, weight_decay=0.1)
    m, v = np.zeros_like(param), np.zeros_like(param)
    for t in range(1, 5):
        g = rng.normal(size=20).astype(np.float32)
        kern.dense_step(param, g, m, v, 0.02, 0.1, adam, t, 0.9, 0.999, 1e-8)
        ref.grad = torch.from_numpy(g.copy())
        opt.step()
        np.testing.assert_allclose(param, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
