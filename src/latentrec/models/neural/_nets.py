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
