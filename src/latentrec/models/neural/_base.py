"""Shared machinery of the PyTorch models: hyper-parameter rules, the mini-batch
training loop on top of the base epoch loop, and the NumPy forward pass used for
every prediction after training (a fitted or loaded model needs no torch).
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ... import _threads
from ..._util import check_random_state, resolve_threads, seed_from
from ...errors import require
from ..base import EmbeddingModel, Interval, Options

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")


class _Device:
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``."""

    def describe(self) -> str:
        return "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"

    def check(self, value) -> bool:
        if not isinstance(value, str):
            return False
        if value in ("auto", "cpu", "cuda", "mps"):
            return True
        return value.startswith("cuda:") and value[5:].isdigit()


def hidden_units(value) -> tuple[int, ...] | None:
    """Units per hidden layer from a sequence of ints or a comma-separated string
    (``"64,32"``, what the CLI's ``--params hidden=64,32`` passes); None if malformed."""
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.split(",")]
        except ValueError:
            return None
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return None
    if not isinstance(value, (tuple, list)) or len(value) == 0:
        return None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in value):
        return None
    return tuple(int(v) for v in value)


class _Layers:
    """A non-empty sequence of positive integers: the units of each hidden layer."""

    def describe(self) -> str:
        return ("a non-empty sequence of positive integers (units of each hidden layer), "
                "or such a comma-separated string")

    def check(self, value) -> bool:
        return hidden_units(value) is not None


COMMON = {
    "n_factors": Interval(int, 1, None),
    "n_epochs": Interval(int, 1, None),
    "batch_size": Interval(int, 1, None),
    "learning_rate": Interval(float, 0, None, closed="right"),
    "lr_decay": Interval(float, 0, 1, closed="right"),
    "optimizer": Options("adam", "adamw", "sgd"),
    "regularization": Interval(float, 0, None),
    "weight_decay": Interval(float, 0, None),
    "init_std": Interval(float, 0, None),
    "early_stopping_rounds": Interval(int, 1, None, none_ok=True),
    "validation_fraction": Interval(float, 0, 1, closed="left"),
    "device": _Device(),
    "n_threads": Interval(int, 0, None),
    "verbose": Options(True, False),
}
LAYERS = {
    "hidden": _Layers(),
    "dropout": Interval(float, 0, 1, closed="left"),
    "activation": Options(*ACTIVATIONS),
}


def require_torch(owner: str):
    """torch for ``owner``'s fit (MissingDependencyError naming the extra without it); warns once
    when an OpenMP runtime loaded before latentrec, so the wait policy of :mod:`latentrec._threads`
    is not in effect."""
    torch = require("torch", "neural", f"latentrec's {owner}")
    reason = _threads.late_warning()
    if reason:
        warnings.warn(reason, RuntimeWarning, stacklevel=3)
    return torch


def _activate(name: str, x: np.ndarray) -> np.ndarray:
    """The NumPy twin of the torch activation (in place where possible)."""
    if name == "relu":
        return np.maximum(x, 0, out=x)
    if name == "tanh":
        return np.tanh(x, out=x)
    if name == "sigmoid":
        np.negative(x, out=x)
        np.exp(x, out=x)
        x += 1
        return np.reciprocal(x, out=x)
    from scipy.special import erf

    return (0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)


class NeuralRecommender(EmbeddingModel):
    """Base of the PyTorch models (not registered; see DotProduct, MLP, NeuMF)."""

    #: the torch network uses no hidden layers (dot product models)
    _n_layers = 0
    #: NeuMF: a GMF branch beside the MLP
    _gmf = False
    _monitor, _mode = "val_rmse", "min"

    # ------------------------------------------------------------ hooks for subclasses
    def _init_arrays(self, data, rng: np.random.Generator) -> dict[str, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _epoch_batches(self, tensors, rng: np.random.Generator, torch):  # pragma: no cover
        raise NotImplementedError

    def _batch_loss(self, net, batch, torch):  # pragma: no cover
        raise NotImplementedError

    def _epoch_loss(self, total: float, n: int) -> float:
        return total / max(n, 1)

    # ------------------------------------------------------------ training
    def _dense_layers(self, rng: np.random.Generator, n_in: int, extra_out: int = 0) -> dict[str, np.ndarray]:
        """Hidden layers ``mlp_w{j}_`` (in, out) and ``mlp_b{j}_``, then ``output_w_``/``output_b_``,
        initialised like torch's ``nn.Linear`` (uniform ±1/√fan_in) from ``rng``."""
        arrays = {}
        for j, units in enumerate(hidden_units(self.hidden)):
            bound = 1.0 / math.sqrt(n_in)
            arrays[f"mlp_w{j}_"] = rng.uniform(-bound, bound, (n_in, int(units))).astype(np.float32)
            arrays[f"mlp_b{j}_"] = rng.uniform(-bound, bound, int(units)).astype(np.float32)
            n_in = int(units)
        n_in += extra_out
        bound = 1.0 / math.sqrt(n_in)
        arrays["output_w_"] = rng.uniform(-bound, bound, n_in).astype(np.float32)
        arrays["output_b_"] = np.zeros(1, np.float32)
        return arrays

    def _normal(self, rng, shape) -> np.ndarray:
        return rng.normal(0.0, float(self.init_std), shape).astype(np.float32)

    def _fit(self, data, eval_data):
        torch = require_torch(type(self).__name__)
        from . import _nets

        device = _nets.resolve_device(self.device)
        self.device_ = str(device)
        rng = check_random_state(self.random_state)
        full_seen = None
        if eval_data is None and float(getattr(self, "validation_fraction", 0.0)) > 0:
            # early stopping on a per-user random slice of the TRAINING rows: train on the rest,
            # keep the best epoch; while fitting, the slice must not count as seen (ranking
            # validation excludes seen items), so seen_ is the trained part until the end
            data, eval_data = self._validation_slice(data, rng)
            full_seen, self.seen_ = self.seen_, data.to_csr()
        try:
            self._fit_torch(data, eval_data, rng, torch, device)
        finally:
            if full_seen is not None:
                self.seen_ = full_seen

    def _validation_slice(self, data, rng):
        """(train, validation): each user with >= 2 rows gives ``clip(round(f n_u), 1, n_u - 1)``
        random rows to validation (:func:`latentrec.split.user_holdout`, same vocabularies)."""
        from ...split import user_holdout

        train, val = user_holdout(data, test_size=float(self.validation_fraction), min_interactions=2,
                                  random_state=seed_from(rng))
        self.validation_rows_ = int(len(val))
        return train, val

    def _fit_torch(self, data, eval_data, rng, torch, device):
        from . import _nets

        arrays = self._init_arrays(data, rng)
        generator = torch.Generator(device=device)
        generator.manual_seed(seed_from(rng))
        tensors = {
            "u": torch.from_numpy(data.user_codes.astype(np.int64)).to(device),
            "i": torch.from_numpy(data.item_codes.astype(np.int64)).to(device),
            "r": torch.from_numpy(data.values.astype(np.float32)).to(device),
        }
        self._prepare(data, tensors, torch)
        codes = (data.user_codes.astype(np.int64), data.item_codes.astype(np.int64), data.values.astype(np.float32))

        def make_net(arrays, n_layers, gmf):
            net = _nets.Net(arrays, n_layers=n_layers, gmf=gmf,
                            activation=getattr(self, "activation", "relu"), dropout=getattr(self, "dropout", 0.0),
                            embedding_dropout=getattr(self, "embedding_dropout", 0.0),
                            mu=self.global_mean_ if "user_bias_" in arrays else 0.0,
                            sparse=self.optimizer != "adamw" and device.type != "mps",
                            dot=bool(getattr(self, "dot_term", False)),
                            generator=generator, device=device)
            if self._hand_step(n_layers, gmf):
                return net, [self._new_hand_step(net, _nets)]
            return net, _nets.make_optimizers(net, self.optimizer, float(self.learning_rate),
                                              float(self.weight_decay))

        def train_epoch(net, optimizers, lr):
            _nets.set_learning_rate(optimizers, lr)
            net.train()
            total = torch.zeros((), dtype=torch.float64, device=device)
            n = 0
            hand = isinstance(optimizers[0], (_nets.DotProductStep, _nets.NeuMFStep))
            if hand and device.type == "cpu":
                total, n = self._hand_epoch(optimizers[0], codes, rng)
                net.eval()
                return self._epoch_loss(total, n)
            for batch in self._epoch_batches(tensors, rng, torch):
                if hand:
                    total += optimizers[0].step(*batch)
                    n += len(batch[0])
                    continue
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                loss, part = self._batch_loss(net, batch, torch)
                loss.backward()
                for opt in optimizers:
                    opt.step()
                total += part
                n += len(batch[0])
            net.eval()
            return self._epoch_loss(float(total), n)

        previous = torch.get_num_threads()
        torch.set_num_threads(resolve_threads(self.n_threads))
        try:
            # optional stages before the main training (NeuMF's pretraining of its two branches)
            arrays = self._pretrain(arrays, make_net, train_epoch)
            net, optimizers = make_net(arrays, self._n_layers, self._gmf)
            lr0 = float(self.learning_rate)

            def step(epoch):
                lr = lr0 * float(self.lr_decay) ** epoch
                loss = train_epoch(net, optimizers, lr)
                self._set_state(net.export(copy=device.type != "cpu"))
                return {"train_loss": loss, "learning_rate": lr}

            evaluate = None
            if eval_data is not None and len(eval_data):
                evaluate = lambda: self._eval_metrics(eval_data)  # noqa: E731 - state set by step
            patience = self.early_stopping_rounds if evaluate is not None else None
            self._run_epochs(self.n_epochs, step, evaluate=evaluate, monitor=self._monitor, mode=self._mode,
                             patience=patience, snapshot=net.snapshot, restore=net.load_state_dict,
                             desc=type(self).__name__, verbose=self.verbose)
        finally:
            torch.set_num_threads(previous)
        self._set_state(net.export(copy=True))

    def _hand_step(self, n_layers: int, gmf: bool) -> bool:
        """Train with :class:`._nets.DotProductStep` (no autograd): the plain (biased) dot product
        under ``adam`` or ``sgd`` (``adamw``'s dense decoupled decay stays with torch)."""
        return False

    def _new_hand_step(self, net, _nets):
        """The hand-written step :meth:`_hand_step` asked for."""
        return _nets.DotProductStep(net, self.optimizer, float(self.learning_rate), float(self.regularization),
                                    float(getattr(self, "bias_regularization", 0.0)))

    def _hand_epoch(self, step, codes, rng) -> tuple[float, int]:
        """One CPU epoch of the hand-written step over the (users, items, values) codes: (loss sum, rows)."""
        n = len(codes[2])
        sse = step.cpu_epoch(codes[0], codes[1], codes[2], rng.permutation(n), int(self.batch_size), self.n_threads)
        return sse, n

    def _pretrain(self, arrays: dict, make_net, train_epoch) -> dict:
        """Hook: train parts of the network before the main epochs; returns the starting arrays."""
        return arrays

    def _prepare(self, data, tensors: dict, torch) -> None:
        """Hook: extra per-fit tensors (NeuMF's sorted positive keys)."""

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        for name, value in arrays.items():
            setattr(self, name, value)

    def _permuted(self, tensors, rng, torch, names=("u", "i", "r")):
        """Each epoch's rows gathered once in a fresh random order, then sliced into batches."""
        n = len(tensors["u"])
        perm = torch.from_numpy(rng.permutation(n)).to(tensors["u"].device)
        cols = [tensors[k][perm] for k in names]
        bs = int(self.batch_size)
        for start in range(0, n, bs):
            yield tuple(c[start:start + bs] for c in cols)

    # ------------------------------------------------------------ NumPy inference
    @property
    def _block_size(self) -> int:
        """Users scored at once: keeps block x items x widest layer near 4M floats."""
        n_items = len(getattr(self, "items_", ())) or 1
        width = max(hidden_units(self.hidden)) if self._n_layers else 1
        return int(max(1, min(512, 4_000_000 // (n_items * width))))

    def _mlp_user_item(self):
        """The user and item embeddings the MLP branch reads (NeuMF has its own)."""
        return self.user_factors_, self.item_factors_

    def _layers_from(self, h: np.ndarray) -> np.ndarray:
        """Activation of the first layer's pre-activation ``h``, then the remaining layers."""
        h = _activate(self.activation, h)
        for j in range(1, self._n_layers):
            h = h @ getattr(self, f"mlp_w{j}_")
            h += getattr(self, f"mlp_b{j}_")
            h = _activate(self.activation, h)
        return h

    def _net_scores(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The network's output for pairs (u, i) without the bias terms (MLP / NeuMF)."""
        pm, qm = self._mlp_user_item()
        k = pm.shape[1]
        w0 = self.mlp_w0_
        out = np.empty(len(u), np.float32)
        chunk = max(1, 2_000_000 // max(int(w0.shape[1]), 1))
        for s in range(0, len(u), chunk):
            uu, ii = u[s:s + chunk], i[s:s + chunk]
            h = pm[uu] @ w0[:k]
            h += qm[ii] @ w0[k:]
            h += self.mlp_b0_
            h = self._layers_from(h)
            w = self.output_w_
            if self._gmf:
                kg = self.user_factors_.shape[1]
                res = np.einsum("ij,ij->i", self.user_factors_[uu] * w[:kg], self.item_factors_[ii])
                res += h @ w[kg:]
            else:
                res = h @ w
                if getattr(self, "dot_term", False):
                    res += np.einsum("ij,ij->i", self.user_factors_[uu], self.item_factors_[ii])
            out[s:s + chunk] = res + self.output_b_[0]
        return out

    def _net_block(self, u: np.ndarray) -> np.ndarray:
        """Scores (len(u), n_items) of a block of users over every item (MLP / NeuMF)."""
        pm, qm = self._mlp_user_item()
        k = pm.shape[1]
        w0 = self.mlp_w0_
        a = pm[u] @ w0[:k]
        b = qm @ w0[k:]
        b += self.mlp_b0_
        n_items = b.shape[0]
        h = (a[:, None, :] + b[None, :, :]).reshape(len(u) * n_items, -1)
        h = self._layers_from(h)
        w = self.output_w_
        if self._gmf:
            kg = self.user_factors_.shape[1]
            s = (self.user_factors_[u] * w[:kg]) @ self.item_factors_.T
            s += (h @ w[kg:]).reshape(len(u), n_items)
        else:
            s = (h @ w).reshape(len(u), n_items)
            if getattr(self, "dot_term", False):
                s += self.user_factors_[u] @ self.item_factors_.T
        s += self.output_b_[0]
        return s.astype(np.float32, copy=False)

    _fold_in_rates = False  # fold-in scores are embedding similarities (see _fold_in_scores)

    def _fold_in_scores(self, item_codes, weights):
        """A visitor's scores: the weighted sum of the cosine similarities of their items'
        embeddings to every item (an MLP has no closed-form fold-in)."""
        if len(item_codes) == 0:
            return self.item_popularity_.astype(np.float32)
        return (weights.astype(np.float32) @ self._cosine_block("item", item_codes)).astype(np.float32)

