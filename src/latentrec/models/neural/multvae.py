"""Mult-VAE: a variational autoencoder with a multinomial likelihood (Liang et al. 2018).

Liang, Krishnan, Hoffman & Jebara, "Variational autoencoders for collaborative
filtering" (WWW 2018). A user's row x_u (all items) is L2-normalised, dropped
out (probability ``dropout``, training only) and encoded by a tanh MLP into the
mean mu_u and log-variance of a ``n_factors``-dimensional Gaussian; a sample
z_u = mu_u + sigma_u eps is decoded by a tanh MLP into logits f(z_u) over the
catalogue, pi(z_u) = softmax(f(z_u)). Each mini-batch of users minimises

    - sum_i x_ui log pi_i(z_u) + beta KL(q(z_u | x_u) || N(0, I)),

with beta annealed linearly from 0 by 1 / ``anneal_steps`` per update up to
the cap ``beta`` (cap 0.2 as the paper; the paper's 200 000-step schedule never
lifts beta off 0 on a catalogue of MovieLens 100K's size, so the default is 1000).
Adam, batches of ``batch_size`` users (100 by default: the paper's 500 made 2
updates an epoch on ml-100k and needed ~100 epochs; docs/neural.md gives the
validation runs that chose 100 users, 1000 steps and 30 epochs). Scores are the logits of
the mean, f(mu_u) (no sampling); with ``eval_set`` the epoch with the best
validation NDCG@10 is kept (``early_stopping_rounds``), the paper's model
selection. Training runs in torch; the learned weights are NumPy arrays and
every prediction is a NumPy forward pass, so a saved model needs no torch.
"""

from __future__ import annotations

import numpy as np

from ..._util import check_random_state, resolve_threads, seed_from
from ..base import Interval, Options, Recommender
from .._feedback import check_weights, to_training
from ._base import COMMON, _Layers, hidden_units, require_torch


class MultVAE(Recommender):
    """Variational autoencoder with a multinomial likelihood for implicit feedback (Liang et al. 2018).

    The module docstring gives the method.

    Parameters
    ----------
    n_factors : int, default 200
        Dimension of the latent Gaussian.
    hidden : sequence of int or str, default (600,)
        Units of the encoder's hidden layers (the decoder mirrors them).
    dropout : float, default 0.5
        Input dropout during training.
    beta : float, default 0.2
        Cap of the annealed KL weight.
    anneal_steps : int, default 1000
        Updates over which beta rises from 0 to 1 (it stops at the cap).
    n_epochs : int, default 30
    batch_size : int, default 100
        Users per update.
    learning_rate : float, default 1e-3
        Adam's step size.
    weight_decay : float, default 0.0
        L2 penalty on the weight matrices (Adam's weight_decay).
    early_stopping_rounds : int or None, default None
        With ``eval_set``: stop after this many epochs without a better val_ndcg
        and keep the best epoch.
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}, default "auto"
        ``auto``: CUDA, else Apple's MPS, when torch sees one; else the CPU.
    n_threads : int, default 0
        torch threads while training (0: all cores).
    random_state : int, Generator or None
    verbose : bool, default False

    Attributes
    ----------
    enc_w{j}_, enc_b{j}_, dec_w{j}_, dec_b{j}_ : float32 arrays
        Encoder and decoder layers (in, out); the encoder's last layer outputs
        2 n_factors values (mean, log-variance).
    history_ : list of dict
        ``train_loss`` (per-user negative ELBO), ``beta`` and, with ``eval_set``,
        the validation ranking metrics per epoch.
    """

    task = "implicit"
    _persisted_patterns = ((r"(enc|dec)_[wb]\d+_", ("float", ())),)
    _constraints = {
        "n_factors": Interval(int, 1, None),
        "hidden": _Layers(),
        "dropout": Interval(float, 0, 1, closed="left"),
        "beta": Interval(float, 0, None),
        "anneal_steps": Interval(int, 1, None),
        "n_epochs": COMMON["n_epochs"],
        "batch_size": COMMON["batch_size"],
        "learning_rate": COMMON["learning_rate"],
        "weight_decay": COMMON["weight_decay"],
        "early_stopping_rounds": COMMON["early_stopping_rounds"],
        "device": COMMON["device"],
        "n_threads": COMMON["n_threads"],
        "verbose": Options(True, False),
    }

    def __init__(self, *, n_factors: int = 200, hidden=(600,), dropout: float = 0.5, beta: float = 0.2,
                 anneal_steps: int = 1000, n_epochs: int = 30, batch_size: int = 100,
                 learning_rate: float = 1e-3, weight_decay: float = 0.0, early_stopping_rounds: int | None = None,
                 device: str = "auto", n_threads: int = 0, random_state=None, verbose: bool = False):
        self.n_factors = n_factors
        self.hidden = hidden
        self.dropout = dropout
        self.beta = beta
        self.anneal_steps = anneal_steps
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.early_stopping_rounds = early_stopping_rounds
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ shapes
    def _dims(self, n_items: int) -> tuple[list[int], list[int]]:
        hid = list(hidden_units(self.hidden))
        enc = [n_items, *hid, 2 * int(self.n_factors)]
        dec = [int(self.n_factors), *hid[::-1], n_items]
        return enc, dec

    # ------------------------------------------------------------ training
    def _fit(self, data, eval_data):
        torch = require_torch("MultVAE")
        from ._nets import resolve_device

        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        X = to_training(data).astype(np.float32)
        enc, dec = self._dims(data.n_items)
        params = []
        for side, dims in (("enc", enc), ("dec", dec)):
            for j, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
                bound = np.sqrt(6.0 / (a + b))  # Xavier-uniform, as the paper's code
                w = torch.tensor(rng.uniform(-bound, bound, (a, b)).astype(np.float32), device=device,
                                 requires_grad=True)
                bias = torch.tensor((rng.normal(0, 0.001, b)).astype(np.float32), device=device,
                                    requires_grad=True)
                params.append((f"{side}_w{j}_", w))
                params.append((f"{side}_b{j}_", bias))
        tensors = dict(params)
        opt = torch.optim.Adam([t for _, t in params], lr=float(self.learning_rate),
                               weight_decay=float(self.weight_decay))
        gen = torch.Generator(device=device)
        gen.manual_seed(seed_from(rng))
        n_enc, n_dec = len(enc) - 1, len(dec) - 1
        k = int(self.n_factors)
        state = {"updates": 0}

        def forward(xb, train):
            h = torch.nn.functional.normalize(xb, dim=1)
            if train and self.dropout > 0:
                keep = (torch.rand(h.shape, generator=gen, device=device) >= float(self.dropout)).float()
                h = h * keep / (1.0 - float(self.dropout))
            for j in range(n_enc):
                h = h @ tensors[f"enc_w{j}_"] + tensors[f"enc_b{j}_"]
                if j < n_enc - 1:
                    h = torch.tanh(h)
            mu, logvar = h[:, :k], h[:, k:]
            z = mu
            if train:
                eps = torch.randn(mu.shape, generator=gen, device=device)
                z = mu + torch.exp(0.5 * logvar) * eps
            for j in range(n_dec):
                z = z @ tensors[f"dec_w{j}_"] + tensors[f"dec_b{j}_"]
                if j < n_dec - 1:
                    z = torch.tanh(z)
            return z, mu, logvar

        def export():
            return {name: t.detach().cpu().numpy().copy() for name, t in params}

        def step(epoch):
            order = rng.permutation(X.shape[0])
            total, n = 0.0, 0
            beta = 0.0
            for s in range(0, len(order), int(self.batch_size)):
                rows = order[s:s + int(self.batch_size)]
                xb = torch.from_numpy(X[rows].toarray()).to(device)
                beta = min(float(self.beta), state["updates"] / float(self.anneal_steps))
                logits, mu, logvar = forward(xb, True)
                nll = -(torch.log_softmax(logits, dim=1) * xb).sum(dim=1).mean()
                kl = (0.5 * (torch.exp(logvar) + mu ** 2 - 1.0 - logvar).sum(dim=1)).mean()
                loss = nll + beta * kl
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                state["updates"] += 1
                total += float(loss.detach()) * len(rows)
                n += len(rows)
            self._set_state(export())
            return {"train_loss": total / max(n, 1), "beta": beta}

        evaluate = None
        if eval_data is not None and len(eval_data):
            evaluate = lambda: self._eval_metrics(eval_data)  # noqa: E731 - state set by step
        patience = self.early_stopping_rounds if evaluate is not None else None
        previous = torch.get_num_threads()
        torch.set_num_threads(resolve_threads(self.n_threads))
        try:
            self._set_state(export())
            self._run_epochs(self.n_epochs, step, evaluate=evaluate, monitor="val_ndcg", mode="max",
                             patience=patience, snapshot=lambda: {n: getattr(self, n).copy() for n, _ in params},
                             restore=self._set_state, desc="MultVAE", verbose=self.verbose)
        finally:
            torch.set_num_threads(previous)

    def _set_state(self, arrays: dict) -> None:
        for name, value in arrays.items():
            setattr(self, name, value)

    # ------------------------------------------------------------ NumPy inference
    def _encode(self, rows) -> np.ndarray:
        """The latent mean mu of each row of a (sparse or dense) user-by-item matrix."""
        n_enc = len(hidden_units(self.hidden)) + 1
        x = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows, dtype=np.float32)
        x = x.astype(np.float32, copy=False)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        h = x / np.maximum(norms, 1e-12)
        for j in range(n_enc):
            h = h @ getattr(self, f"enc_w{j}_") + getattr(self, f"enc_b{j}_")
            if j < n_enc - 1:
                np.tanh(h, out=h)
        return h[:, :int(self.n_factors)]

    def _decode(self, z: np.ndarray) -> np.ndarray:
        n_dec = len(hidden_units(self.hidden)) + 1
        for j in range(n_dec):
            z = z @ getattr(self, f"dec_w{j}_") + getattr(self, f"dec_b{j}_")
            if j < n_dec - 1:
                np.tanh(z, out=z)
        return z.astype(np.float32, copy=False)

    def _score_block(self, u):
        return self._decode(self._encode(self.seen_[u]))

    def _predict_codes(self, u, i):
        return self._predict_from_blocks(u, i)

    def _fold_in_scores(self, item_codes, weights):
        check_weights(weights, "recommend_for_interactions")
        if len(item_codes) == 0:
            return self.item_popularity_.astype(np.float32)
        x = np.zeros((1, len(self.items_)), dtype=np.float32)
        np.add.at(x[0], item_codes, weights.astype(np.float32))
        return self._decode(self._encode(x))[0]

    def _item_similarity_block(self, i):
        # cosine between the items' output weight vectors (columns of the last decoder layer)
        n_dec = len(hidden_units(self.hidden))
        w = getattr(self, f"dec_w{n_dec}_").T
        v = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
        return v[i] @ v.T
