"""The PyTorch side of the neural models: one small network, the optimisers, the device.

Imported only inside ``fit`` (after :func:`latentrec.errors.require` found torch), so
``import latentrec`` never imports torch. Every parameter is created from a NumPy
array of the same name as the model attribute it becomes (``user_factors_`` ->
``user_factors``), and :meth:`Net.export` hands them back as NumPy arrays: the
fitted model keeps no torch object, saves as plain ``.npy`` files and predicts
with NumPy (see :mod:`._base`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelError

#: lookup tables (sparse gradients possible); biases are stored (n, 1) in torch, (n,) in NumPy
EMBEDDINGS = ("user_factors_", "item_factors_", "user_mlp_factors_", "item_mlp_factors_",
              "user_bias_", "item_bias_")

_ACT = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": F.gelu}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else Apple's MPS when available, else CPU; a requested
    GPU that torch cannot see -> :class:`ModelError`. (On MPS the embeddings get dense gradients:
    the sparse ones are a CPU/CUDA feature.)"""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    if device == "mps" and not _mps_available():
        raise ModelError(f"device='mps' was requested but MPS is not available to torch {torch.__version__} "
                         f"(not an Apple-silicon Mac, or a torch build without MPS); use device='auto' or 'cpu'")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelError(
                f"device={device!r} was requested but CUDA is not available to torch {torch.__version__} "
                f"(no GPU, or a CPU-only torch build); use device='auto' or device='cpu'")
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ModelError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return torch.device(device)


class _Rows(torch.autograd.Function):
    """``table[idx]`` for distinct sorted ``idx``; the gradient is a sparse tensor of those rows,
    marked coalesced (SparseAdam's coalesce of one row per use was the costliest op of a step)."""

    @staticmethod
    def forward(ctx, table, idx):
        ctx.save_for_backward(idx)
        ctx.table_shape = table.shape
        return table.index_select(0, idx)

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        return torch.sparse_coo_tensor(idx[None], grad, ctx.table_shape, is_coalesced=True,
                                       check_invariants=False), None


class Net(nn.Module):
    """Dot product / MLP / NeuMF over user and item embeddings, by which arrays are given.

    * ``user_factors_``/``item_factors_`` without layers: the dot product p_u · q_i;
    * layers ``mlp_w{j}_``/``mlp_b{j}_`` + ``output_w_``/``output_b_``: an MLP over the
      concatenated MLP embeddings (``user_mlp_factors_``, else ``user_factors_``);
    * both (``gmf=True``): NeuMF, ``output_w_ · [p_u ⊙ q_i, mlp(p'_u, q'_i)] + output_b_``;
    * ``gmf=True`` without layers: GMF, ``output_w_ · (p_u ⊙ q_i) + output_b_``;
    * ``dot=True`` (MLP's ``dot_term``): + p_u · q_i beside the MLP;
    * ``user_bias_``/``item_bias_``: + μ + b_u + b_i.
    """

    def __init__(self, arrays: dict[str, np.ndarray], *, n_layers: int, gmf: bool, activation: str,
                 dropout: float, embedding_dropout: float, mu: float, sparse: bool, dot: bool = False,
                 generator: torch.Generator, device: torch.device):
        super().__init__()
        # All lookup tables live in ONE parameter: user rows then item rows, columns
        # [factors | mlp_factors | bias]. A step then gathers once and the optimiser
        # updates one sparse gradient instead of four (lazy Adam's coalesce dominates).
        self.n_users = int(arrays["user_factors_"].shape[0])
        self.cols: dict[str, tuple[int, int]] = {}
        user_parts, item_parts = [], []
        for kind in ("factors", "mlp_factors", "bias"):
            uname, iname = f"user_{kind}_", f"item_{kind}_"
            if uname not in arrays:
                continue
            up = np.asarray(arrays[uname], np.float32).reshape(self.n_users, -1)
            ip = np.asarray(arrays[iname], np.float32).reshape(len(arrays[iname]), -1)
            start = sum(p.shape[1] for p in user_parts)
            self.cols[kind] = (start, start + up.shape[1])
            user_parts.append(up)
            item_parts.append(ip)
        table = np.vstack([np.hstack(user_parts), np.hstack(item_parts)])
        self.table = nn.Parameter(torch.from_numpy(np.ascontiguousarray(table)).to(device))
        self.dense = nn.ParameterDict({name[:-1]: nn.Parameter(torch.from_numpy(
            np.array(value, dtype=np.float32, copy=True)).to(device))
            for name, value in arrays.items() if name not in EMBEDDINGS})
        self.n_layers, self.gmf, self.sparse, self.dot = n_layers, gmf, sparse, bool(dot)
        self.act = _ACT[activation]
        self.dropout, self.embedding_dropout = float(dropout), float(embedding_dropout)
        self.mu = float(mu)
        self.generator = generator
        self.biased = "bias" in self.cols

    def _drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        # dropout with the model's own generator: torch's F.dropout draws from the global RNG
        if not self.training or p == 0.0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=self.generator)
        return x * keep * (1.0 / (1.0 - p))

    def forward(self, u: torch.Tensor, i: torch.Tensor):
        """Scores of the pairs (u, i), the batch mean of ‖used embeddings‖² and of used biases².

        Each distinct user and item row is gathered once and the per-row work (squared norms,
        the first dense layer's user and item halves) is done once per row, then indexed per
        pair: NeuMF's negatives repeat every user 1 + n_negatives times and a catalogue's items
        recur across a batch. Tensors are cut with ``split`` (backward: one ``cat``), not slices
        (backward: a zero-filled buffer per slice)."""
        uu, u_at = torch.unique(u, return_inverse=True)
        ii, i_at = torch.unique(i, return_inverse=True)
        idx = torch.cat([uu, ii + self.n_users])
        rows = _Rows.apply(self.table, idx) if self.sparse else F.embedding(idx, self.table)
        widths = [b - a for a, b in self.cols.values()]
        user, item = (dict(zip(self.cols, part.split(widths, 1))) for part in rows.split([len(uu), len(ii)]))
        sq_u = sum((user[kind] * user[kind]).sum(1) for kind in self.cols if kind != "bias")
        sq_i = sum((item[kind] * item[kind]).sum(1) for kind in self.cols if kind != "bias")
        reg = sq_u.index_select(0, u_at).mean() + sq_i.index_select(0, i_at).mean()
        p, q = user["factors"].index_select(0, u_at), item["factors"].index_select(0, i_at)
        if self.n_layers == 0:
            # GMF (NeuMF's pretraining): a learned weight per factor; else the plain dot product
            out = (p * q) @ self.dense["output_w"] + self.dense["output_b"] if self.gmf else (p * q).sum(1)
        else:
            pm, qm = (user["mlp_factors"], item["mlp_factors"]) if "mlp_factors" in self.cols else (user["factors"],
                                                                                                  item["factors"])
            w0, k = self.dense["mlp_w0"], pm.shape[1]
            if self.training and self.embedding_dropout > 0:
                # a dropout mask per pair on [p'_u, q'_i]: the first layer runs per pair
                h = self._drop(torch.cat([pm.index_select(0, u_at), qm.index_select(0, i_at)], 1),
                               self.embedding_dropout) @ w0
            else:  # [p'_u, q'_i] W = p'_u W_user + q'_i W_item: each half once per distinct row
                h = (pm @ w0[:k]).index_select(0, u_at) + (qm @ w0[k:]).index_select(0, i_at)
            h = self._drop(self.act(h + self.dense["mlp_b0"]), self.dropout)
            for j in range(1, self.n_layers):
                h = self.act(h @ self.dense[f"mlp_w{j}"] + self.dense[f"mlp_b{j}"])
                h = self._drop(h, self.dropout)
            if self.gmf:
                h = torch.cat([p * q, h], 1)
            out = h @ self.dense["output_w"] + self.dense["output_b"]
            if self.dot:
                out = out + (p * q).sum(1)
        reg_b = torch.zeros((), device=u.device)
        if self.biased:
            bu, bi = user["bias"][:, 0].index_select(0, u_at), item["bias"][:, 0].index_select(0, i_at)
            out = out + bu + bi + self.mu
            reg_b = (bu * bu).mean() + (bi * bi).mean()
        return out, reg, reg_b

    def export(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Every parameter as a float32 NumPy array named like the model attribute.

        On the CPU with ``copy=False`` the arrays are views of the parameters (cheap
        enough to call after every epoch for validation).
        """
        table = self.table.detach().cpu().numpy()
        out = {}
        for kind, (a, b) in self.cols.items():
            for side, part in (("user", table[:self.n_users]), ("item", table[self.n_users:])):
                arr = part[:, a] if kind == "bias" else part[:, a:b]
                out[f"{side}_{kind}_"] = np.ascontiguousarray(arr) if copy else arr
        for name, param in self.dense.items():
            arr = param.detach().cpu().numpy()
            out[name + "_"] = np.array(arr, copy=True) if copy else arr
        return out

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items()}


def make_optimizers(net: Net, name: str, learning_rate: float, weight_decay: float) -> list:
    """``adam``: lazy Adam (SparseAdam) on the embeddings + Adam on the dense layers;
    ``sgd``: plain SGD with sparse embedding gradients; ``adamw``: AdamW on everything
    (dense gradients, decoupled ``weight_decay`` on every parameter)."""
    emb, dense = [net.table], list(net.dense.parameters())
    if name == "adamw":
        return [torch.optim.AdamW(emb + dense, lr=learning_rate, weight_decay=weight_decay)]
    opts = []
    if name == "adam":
        opts.append(torch.optim.SparseAdam(emb, lr=learning_rate) if net.sparse
                    else torch.optim.Adam(emb, lr=learning_rate))
        if dense:
            opts.append(torch.optim.Adam(dense, lr=learning_rate, weight_decay=weight_decay))
    else:
        opts.append(torch.optim.SGD(emb, lr=learning_rate))
        if dense:
            opts.append(torch.optim.SGD(dense, lr=learning_rate, weight_decay=weight_decay))
    return opts


def set_learning_rate(optimizers: list, learning_rate: float) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = learning_rate


class DotProductStep:
    """The mini-batch step of DotProduct / BiasedDotProduct written out by hand.

    The same loss and the same lazy Adam (or plain SGD) as autograd + SparseAdam, without
    the graph, the sparse-tensor bookkeeping and one gather per parameter: per batch one
    gather of the user rows and one of the item rows of the shared table, the gradients of

        mean_b (r̂ − r)² + λ mean_b (‖p_u‖² + ‖q_i‖²) + λ_b mean_b (b_u² + b_i²)

    per occurrence (∂/∂p_u = 2/B ((r̂ − r) q_i + λ p_u), ...), summed onto the distinct rows
    with ``index_add_``, then Adam's moments and the update on those rows only (SparseAdam's
    rule: bias correction by the global step count). Its ``param_groups`` carry the rate, so
    :func:`set_learning_rate` works as for a torch optimiser."""

    betas, eps = (0.9, 0.999), 1e-8

    def __init__(self, net: Net, optimizer: str, learning_rate: float, regularization: float,
                 bias_regularization: float):
        self.net = net
        self.param_groups = [{"lr": float(learning_rate)}]
        self.adam = optimizer == "adam"
        self.reg, self.reg_b = float(regularization), float(bias_regularization)
        a, b = net.cols["factors"]
        if a != 0:  # pragma: no cover - Net puts the factors first
            raise AssertionError("factors must be the table's first columns")
        self.k = b
        table = net.table.data
        if self.adam:
            self.m, self.v = torch.zeros_like(table), torch.zeros_like(table)
        self.t = 0

    @torch.no_grad()
    def step(self, u: torch.Tensor, i: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """One update from the batch (u, i, r); returns the batch's sum of squared errors."""
        table, k, net = self.net.table.data, self.k, self.net
        n = len(u)
        rows = torch.cat([u, i + net.n_users])
        both = table.index_select(0, rows)
        pu, qi = both[:n], both[n:]
        p, q = pu[:, :k], qi[:, :k]
        err = (p * q).sum(1)
        if net.biased:
            err += pu[:, k] + qi[:, k] + net.mu
        err -= r
        sq = (err * err).sum()
        c = 2.0 / n
        ce = (err * c)[:, None]
        grads = torch.empty_like(both)
        gu, gi = grads[:n], grads[n:]
        torch.mul(q, ce, out=gu[:, :k])
        torch.mul(p, ce, out=gi[:, :k])
        grads[:, :k].add_(both[:, :k], alpha=c * self.reg)
        if net.biased:
            grads[:, k:].copy_(both[:, k:]).mul_(c * self.reg_b)
            gu[:, k:] += ce
            gi[:, k:] += ce
        idx, at = torch.unique(rows, return_inverse=True)
        g = torch.zeros((len(idx), table.shape[1]), dtype=table.dtype, device=table.device).index_add_(0, at, grads)
        lr = float(self.param_groups[0]["lr"])
        if self.adam:
            self.t += 1
            b1, b2 = self.betas
            m = self.m.index_select(0, idx).mul_(b1).add_(g, alpha=1 - b1)
            v = self.v.index_select(0, idx).mul_(b2).addcmul_(g, g, value=1 - b2)
            self.m.index_copy_(0, idx, m)
            self.v.index_copy_(0, idx, v)
            step = lr * (1 - b2 ** self.t) ** 0.5 / (1 - b1 ** self.t)
            g = m.div_(v.sqrt_().add_(self.eps)).mul_(-step)
        else:
            g.mul_(-lr)
        table.index_add_(0, idx, g)
        return sq

    def cpu_epoch(self, users: np.ndarray, items: np.ndarray, values: np.ndarray, perm: np.ndarray,
                  batch_size: int, n_threads: int) -> float:
        """The epoch over ``perm`` in batches of ``batch_size`` by :func:`latentrec.models.kernels.dot.dot_epoch` (the
        table on the CPU): the same updates as :meth:`step` batch after batch; returns the SSE."""
        from ..._util import kernel_threads
        from ..kernels.dot import dot_epoch

        table = self.net.table.data.numpy()
        if not hasattr(self, "_buffers"):
            m, v = (self.m.numpy(), self.v.numpy()) if self.adam else (table[:0], table[:0])
            self._buffers = (m, v, np.zeros_like(table), np.zeros(len(table), np.int8),
                             np.empty(2 * batch_size, np.int64))
        m, v, grad, mark, touched = self._buffers
        if len(touched) < 2 * batch_size:  # pragma: no cover - batch_size is fixed for a fit
            touched = np.empty(2 * batch_size, np.int64)
        b1, b2 = self.betas
        with kernel_threads(n_threads):
            sse, self.t = dot_epoch(table, m, v, grad, mark, touched, users, items, values, perm, int(batch_size),
                                    self.net.n_users, self.k, self.net.biased, float(self.net.mu), self.reg,
                                    self.reg_b, float(self.param_groups[0]["lr"]), self.adam, self.t, b1, b2,
                                    self.eps)
        return float(sse)


class NeuMFStep:
    """NeuMF's mini-batch step with the binary cross-entropy, written out by hand (CPU).

    The same loss and optimisers as autograd + SparseAdam / Adam (or SGD) on :class:`Net`:

        mean over the batch's pairs of BCE(σ(s_ui), y_ui) + λ (mean_b ‖row_u‖² + mean_pairs ‖row_i‖²)

    A batch is B observed pairs with their M − 1 negatives, a (B, M) grid whose rows share a
    user, so the user side (the first layer's user half p' W_user, p ⊙ w_g, the gradients) is
    computed once per grid row and broadcast instead of gathered per pair, and the item side
    once per distinct item. The dense layers' products are torch matrix products; the per-pair
    work around them is one numba pass each (:mod:`latentrec.models.kernels.neumf`). The dense
    layers get torch.optim.Adam's (or SGD's) update in one call on a flat buffer their
    parameters are views of; the table's rows SparseAdam's lazy Adam (bias correction by the
    global step count) or SGD. Its ``param_groups`` carry the rate, so :func:`set_learning_rate` works on it."""

    betas, eps = (0.9, 0.999), 1e-8

    def __init__(self, net: Net, optimizer: str, learning_rate: float, regularization: float,
                 weight_decay: float):
        if net.n_layers < 1 or not net.gmf or net.dropout or net.act is not torch.relu:  # pragma: no cover
            raise AssertionError("NeuMFStep: NeuMF with relu layers and no dropout only")
        self.net = net
        self.param_groups = [{"lr": float(learning_rate)}]
        self.adam = optimizer == "adam"
        self.reg = float(regularization)
        self.k = net.cols["factors"][1]
        if net.cols["factors"][0] != 0 or net.cols["mlp_factors"] != (self.k, 2 * self.k):  # pragma: no cover
            raise AssertionError("NeuMFStep: table columns [factors | mlp_factors]")
        # the dense layers become views of one flat buffer, updated by one call (torch.optim.Adam's
        # rule; its first step imports torch._dynamo, ~3 s of a fit)
        self.weight_decay = float(weight_decay)
        sizes = [p.numel() for p in net.dense.values()]
        self.flat = np.empty(sum(sizes), np.float32)
        self.flat_grad = np.empty_like(self.flat)
        self.slices = {}
        start = 0
        for (name, param), size in zip(net.dense.items(), sizes):
            self.flat[start:start + size] = param.data.numpy().ravel()
            param.data = torch.from_numpy(self.flat[start:start + size]).view(param.shape)
            self.slices[name] = slice(start, start + size)
            start += size
        self.flat_m = np.zeros_like(self.flat)
        self.flat_v = np.zeros_like(self.flat)
        table = net.table.data.numpy()
        self.m = np.zeros_like(table) if self.adam else table[:0]
        self.v = np.zeros_like(table) if self.adam else table[:0]
        self.grad = np.zeros_like(table)
        self.mark = np.zeros(len(table), np.int8)
        self.slot = np.full(len(table) - net.n_users, -1, np.int64)
        self.t = 0

    def epoch(self, users: np.ndarray, items: np.ndarray, negatives: np.ndarray, batch_size: int,
              n_threads: int) -> float:
        """Every batch of ``batch_size`` rows of (users, items, negatives) in order; returns the
        sum over batches of the batch's mean BCE times its number of observed pairs."""
        from ..._util import kernel_threads

        grid = np.concatenate([items[:, None], negatives], axis=1).astype(np.int64, copy=False)
        users = users.astype(np.int64, copy=False)
        total = 0.0
        with kernel_threads(n_threads):
            for start in range(0, len(users), batch_size):
                total += self.step(users[start:start + batch_size], grid[start:start + batch_size])
        return total

    @torch.no_grad()
    def step(self, u: np.ndarray, grid: np.ndarray) -> float:
        """One update from the observed pairs (u, grid[:, 0]) and negatives grid[:, 1:]; returns
        the batch's mean BCE times B."""
        from ..kernels import neumf as kern

        net, k = self.net, self.k
        table = net.table.data.numpy()
        d = {name: p.data for name, p in net.dense.items()}
        n_layers = net.n_layers
        b, m = grid.shape
        n_pairs = b * m
        items_out = np.empty(n_pairs, np.int64)
        n_items, at, counts = kern.distinct_items(grid.reshape(-1), self.slot, items_out)
        items = items_out[:n_items]
        urows = table[u]                        # (B, 2k)
        irows = table[items + net.n_users]      # (D, 2k)
        t_u, t_i = torch.from_numpy(urows), torch.from_numpy(irows)
        p, pm = t_u[:, :k], t_u[:, k:]
        q, qm = t_i[:, :k], t_i[:, k:]
        w0 = d["mlp_w0"]
        w_out = d["output_w"]
        wg, wm = w_out[:k], w_out[k:]
        a_user = (pm @ w0[:k]).numpy()
        c_item = (qm @ w0[k:]).numpy()
        pw = (p * wg).numpy()
        q_np = np.ascontiguousarray(q.numpy())
        h = [np.empty((n_pairs, w0.shape[1]), np.float32)]
        sg = np.empty(n_pairs, np.float32)
        kern.first_layer(a_user, c_item, d["mlp_b0"].numpy(), at, pw, q_np, m, h[0], sg)
        for j in range(1, n_layers):
            z = torch.addmm(d[f"mlp_b{j}"], torch.from_numpy(h[-1]), d[f"mlp_w{j}"])
            h.append(z.relu_().numpy())
        ds = np.empty(n_pairs, np.float32)
        dz = np.empty_like(h[-1])
        bce = kern.output_bce(h[-1], np.ascontiguousarray(wm.numpy()), np.float32(d["output_b"][0]), sg, m, ds, dz)
        t_ds = torch.from_numpy(ds)
        grads = {"output_b": t_ds.sum().reshape(1)}
        g_wm = torch.from_numpy(h[-1]).t() @ t_ds
        t_dz = torch.from_numpy(dz)
        for j in range(n_layers - 1, 0, -1):
            t_h = torch.from_numpy(h[j - 1])
            grads[f"mlp_w{j}"] = t_h.t() @ t_dz
            grads[f"mlp_b{j}"] = t_dz.sum(0)
            t_dz = t_dz @ d[f"mlp_w{j}"].t()
            if j > 1:
                t_dz.mul_(torch.from_numpy(h[j - 1]) > 0)
        dh0 = np.ascontiguousarray(t_dz.numpy())
        d_user = np.empty((b, dh0.shape[1]), np.float32)
        g_pw = np.empty((b, k), np.float32)
        d_item = np.empty((kern.CHUNKS + 1, n_items, dh0.shape[1]), np.float32)
        g_q = np.empty((kern.CHUNKS + 1, n_items, k), np.float32)
        kern.first_layer_backward(dh0, h[0], at, ds, pw, q_np, m, d_user, g_pw, d_item, g_q)
        d_item, g_q = d_item[kern.CHUNKS], g_q[kern.CHUNKS]
        t_du, t_di, t_gpw = torch.from_numpy(d_user), torch.from_numpy(d_item), torch.from_numpy(g_pw)
        grads["mlp_b0"] = t_du.sum(0)
        grads["mlp_w0"] = torch.cat([pm.t() @ t_du, qm.t() @ t_di])
        grads["output_w"] = torch.cat([(p * t_gpw).sum(0), g_wm])
        # the rows' gradients: per occurrence for the users, per distinct item for the items
        reg_u, reg_i = 2.0 * self.reg / b, 2.0 * self.reg / n_pairs
        g_u = np.empty_like(urows)
        g_u[:, :k] = (t_gpw * wg).numpy()
        g_u[:, k:] = (t_du @ w0[:k].t()).numpy()
        g_u += reg_u * urows
        g_i = np.empty_like(irows)
        g_i[:, :k] = g_q
        g_i[:, k:] = (t_di @ w0[k:].t()).numpy()
        g_i += (reg_i * counts)[:, None] * irows
        self.t += 1
        b1, b2 = self.betas
        kern.rows_adam(table, self.m, self.v, self.grad, self.mark, np.empty(b + n_items, np.int64), u, g_u,
                       items + net.n_users, g_i, float(self.param_groups[0]["lr"]), self.adam, self.t, b1, b2,
                       self.eps)
        for name, part in self.slices.items():
            self.flat_grad[part] = grads[name].reshape(-1).numpy()
        kern.dense_step(self.flat, self.flat_grad, self.flat_m, self.flat_v, float(self.param_groups[0]["lr"]),
                        self.weight_decay, self.adam, self.t, b1, b2, self.eps)
        return bce / n_pairs * b
