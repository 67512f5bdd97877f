"""NeuMF (He et al., 2017, "Neural Collaborative Filtering") for implicit feedback.

A generalised matrix factorisation branch p_u ⊙ q_i and an MLP branch over the
concatenated embeddings [p'_u, q'_i] are joined by one output layer:

    s_ui = w · [p_u ⊙ q_i, MLP(p'_u, q'_i)] + c

Trained on every observed (user, item) pair against ``n_negatives`` items the user
never interacted with, drawn uniformly afresh each epoch, with the binary cross-
entropy of σ(s) (``loss="bce"``) or the pairwise BPR loss −log σ(s_ui − s_uj)
(``loss="bpr"``), plus the L2 penalty λ on the embeddings each batch uses.
"""

from __future__ import annotations

import numpy as np

from ...errors import ModelError
from ..base import Interval, Options
from ._base import COMMON, LAYERS, NeuralRecommender, hidden_units


#: catalogues up to this many user x item cells sample negatives against a dense seen mask
_BITMAP_CELLS = 200_000_000


class NeuMF(NeuralRecommender):
    """Neural matrix factorisation (GMF + MLP) for implicit feedback, trained in PyTorch.

    Parameters
    ----------
    n_factors : int, default 64
        Size of the GMF embeddings and of the MLP embeddings.
    hidden : sequence of int, default (64, 32)
        Units of the MLP branch's hidden layers (or a comma-separated string, ``"64,32"``).
    dropout : float in [0, 1), default 0.0
        Dropout after every hidden layer (training only).
    activation : {"relu", "tanh", "sigmoid", "gelu"}, default "relu"
    loss : {"bce", "bpr"}, default "bce"
        Pointwise binary cross-entropy over positives and sampled negatives, or the
        pairwise BPR loss (each positive against each of its negatives).
    n_negatives : int, default 32
        Negative items sampled per observed interaction each epoch (uniformly among the
        items the user has not interacted with; after 8 rejection rounds a rare
        collision with a seen item is kept).
    n_epochs : int, default 12
    batch_size : int, default 1024
        Observed interactions per mini-batch (each brings its negatives along).
    learning_rate : float, default 0.002
    lr_decay : float in (0, 1], default 1.0
        Learning-rate schedule: multiplied into the rate after every epoch.
    optimizer : {"adam", "adamw", "sgd"}, default "adam"
        As for :class:`latentrec.models.neural.DotProduct` (lazy Adam on the embeddings).
    regularization : float, default 1e-3
        λ on the embeddings used in each batch.
    weight_decay : float, default 0.0
    init_std : float, default 0.01
    early_stopping_rounds : int or None, default None
        With ``eval_set``: stop after this many epochs without a better validation
        NDCG@10 and restore the best epoch.
    validation_fraction : float in [0, 1), default 0.0
        Without ``eval_set``: a per-user random share of the training rows becomes the
        validation set (NDCG@10); the best epoch's model is kept, trained on the rest.
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}, default "auto"
    n_threads : int, default 0
    pretrain_epochs : int, default 0
        He et al.'s pretraining: first train the GMF branch alone and then the MLP branch
        alone for this many epochs each, start NeuMF from their parameters (output layer
        [½ w_gmf, ½ w_mlp]) and train ``n_epochs`` more; 0 trains NeuMF from scratch.
    random_state : int, Generator or None
    verbose : bool, default False

    Attributes
    ----------
    user_factors_, item_factors_ : float32 arrays
        The GMF embeddings (used by ``similar_items`` / ``similar_users``).
    user_mlp_factors_, item_mlp_factors_ : float32 arrays
        The MLP branch's embeddings.
    mlp_w{j}_, mlp_b{j}_, output_w_, output_b_ : float32 arrays
    history_ : list of dict
        Per epoch: ``train_loss`` (mean BCE or BPR loss), ``learning_rate``, ``epoch_s``
        and, with ``eval_set``, ``val_ndcg``, ``val_precision``, ... at 10.
    pretrain_history_ : list of dict
        Per pretraining epoch: ``stage`` (``"gmf"`` or ``"mlp"``), ``epoch``, ``train_loss``.

    Notes
    -----
    Defaults were chosen on a validation holdout carved from the training part of
    ml-100k (per-user 20 %, seed 1; benchmarks/neural_tuning.py), never on test data.
    Negatives mattered most (best validation NDCG@10 0.241 with 4, 0.258 with 16, 0.262
    with 32 at 64 factors and regularization 1e-3, against ImplicitALS's 0.271); 64
    factors and regularization 1e-3 beat 32 and 1e-4 / 3e-3; BPR and He et al.'s
    pretraining (``pretrain_epochs=8``) did not help there. Early stopping picked
    12-14 epochs. An epoch costs ~(1 + n_negatives) forward/backward passes per
    interaction: lower ``n_negatives`` for speed. With ``loss="bce"``, relu, no dropout and
    ``adam``/``sgd`` on the CPU the step is hand-written (:class:`._nets.NeuMFStep`: the same
    loss and optimisers as autograd, ~3x faster; docs/neural.md).
    """

    task = "implicit"
    _gmf = True
    _monitor, _mode = "val_ndcg", "max"
    _constraints = {**COMMON, **LAYERS, "loss": Options("bce", "bpr"), "n_negatives": Interval(int, 1, None),
                    "pretrain_epochs": Interval(int, 0, None)}

    def __init__(self, *, n_factors: int = 64, hidden=(64, 32), dropout: float = 0.0, activation: str = "relu",
                 loss: str = "bce", n_negatives: int = 32, n_epochs: int = 12, batch_size: int = 1024,
                 learning_rate: float = 0.002, lr_decay: float = 1.0, optimizer: str = "adam",
                 regularization: float = 1e-3, weight_decay: float = 0.0, init_std: float = 0.01,
                 early_stopping_rounds: int | None = None, validation_fraction: float = 0.0,
                 device: str = "auto", n_threads: int = 0,
                 pretrain_epochs: int = 0, random_state=None, verbose: bool = False):
        self.n_factors = n_factors
        self.hidden = hidden
        self.dropout = dropout
        self.activation = activation
        self.loss = loss
        self.n_negatives = n_negatives
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.optimizer = optimizer
        self.regularization = regularization
        self.weight_decay = weight_decay
        self.init_std = init_std
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.device = device
        self.n_threads = n_threads
        self.pretrain_epochs = pretrain_epochs
        self.random_state = random_state
        self.verbose = verbose

    @property
    def _n_layers(self) -> int:
        return len(hidden_units(self.hidden) or ())

    # ------------------------------------------------------------ training
    def _init_arrays(self, data, rng):
        k = int(self.n_factors)
        arrays = {"user_factors_": self._normal(rng, (data.n_users, k)),
                  "item_factors_": self._normal(rng, (data.n_items, k)),
                  "user_mlp_factors_": self._normal(rng, (data.n_users, k)),
                  "item_mlp_factors_": self._normal(rng, (data.n_items, k))}
        arrays.update(self._dense_layers(rng, 2 * k, extra_out=k))
        return arrays

    def _pretrain(self, arrays, make_net, train_epoch):
        """He et al.'s recipe: train a GMF (w_g · (p_u ⊙ q_i) + c_g) and an MLP (w_m · MLP + c_m)
        alone for ``pretrain_epochs`` each, then start NeuMF from their parameters with the
        output layer [α w_g, (1 − α) w_m], c = α c_g + (1 − α) c_m, α = 0.5."""
        n = int(self.pretrain_epochs)
        self.pretrain_history_ = []
        if n == 0:
            return arrays
        k = int(self.n_factors)
        w, c = arrays["output_w_"], arrays["output_b_"]
        stages = {
            "gmf": ({"user_factors_": arrays["user_factors_"], "item_factors_": arrays["item_factors_"],
                     "output_w_": w[:k], "output_b_": c}, 0, True),
            "mlp": ({"user_factors_": arrays["user_mlp_factors_"], "item_factors_": arrays["item_mlp_factors_"],
                     **{name: value for name, value in arrays.items() if name.startswith("mlp_")},
                     "output_w_": w[k:], "output_b_": c}, self._n_layers, False),
        }
        trained = {}
        for stage, (start, n_layers, gmf) in stages.items():
            net, optimizers = make_net(start, n_layers, gmf)
            for epoch in range(n):
                loss = train_epoch(net, optimizers, float(self.learning_rate))
                if not np.isfinite(loss):
                    raise ModelError(f"NeuMF diverged at pretraining epoch {epoch + 1} of the {stage.upper()} "
                                     f"branch: the training loss is {loss}; try a lower learning_rate")
                self.pretrain_history_.append({"stage": stage, "epoch": epoch + 1, "train_loss": loss})
            trained[stage] = net.export(copy=True)
        g, m = trained["gmf"], trained["mlp"]
        out = {"user_factors_": g["user_factors_"], "item_factors_": g["item_factors_"],
               "user_mlp_factors_": m["user_factors_"], "item_mlp_factors_": m["item_factors_"],
               **{name: value for name, value in m.items() if name.startswith("mlp_")},
               "output_w_": np.concatenate([0.5 * g["output_w_"], 0.5 * m["output_w_"]]).astype(np.float32),
               "output_b_": (0.5 * (g["output_b_"] + m["output_b_"])).astype(np.float32)}
        return out

    def _prepare(self, data, tensors, torch):
        tensors["u_np"] = data.user_codes
        self._n_items = int(data.n_items)
        keys = data.user_codes.astype(np.int64) * data.n_items + data.item_codes
        if data.n_users * data.n_items <= _BITMAP_CELLS:
            # a dense user x item mask: one gather per probe instead of a binary search
            # (the search over 2.6M unsorted probes cost ~2 s of an 8 s ml-100k epoch)
            seen = np.zeros(data.n_users * data.n_items, dtype=bool)
            seen[keys] = True
            self._pos_keys, self._seen_mask = None, seen
        else:
            self._pos_keys, self._seen_mask = np.unique(keys), None

    def _fit(self, data, eval_data):
        try:
            super()._fit(data, eval_data)
        finally:
            self._pos_keys = self._seen_mask = None

    def _negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(len(users), n_negatives) item codes the users did not interact with (vectorised rejection)."""
        n_items, keys = self._n_items, self._pos_keys
        neg = rng.integers(0, n_items, size=(len(users), int(self.n_negatives)), dtype=np.int64)
        base = users.astype(np.int64)[:, None] * n_items
        for _ in range(8):
            probe = base + neg
            if self._seen_mask is not None:
                hit = self._seen_mask[probe]
            else:
                pos = np.minimum(np.searchsorted(keys, probe), len(keys) - 1)
                hit = keys[pos] == probe
            if not hit.any():
                break
            neg[hit] = rng.integers(0, n_items, size=int(hit.sum()), dtype=np.int64)
        return neg

    def _epoch_batches(self, tensors, rng, torch):
        n = len(tensors["u"])
        perm = rng.permutation(n)
        device = tensors["u"].device
        perm_t = torch.from_numpy(perm).to(device)
        u, i = tensors["u"][perm_t], tensors["i"][perm_t]
        neg = torch.from_numpy(self._negatives(tensors["u_np"][perm], rng)).to(device)
        bs = int(self.batch_size)
        for start in range(0, n, bs):
            yield u[start:start + bs], i[start:start + bs], neg[start:start + bs]

    def _hand_step(self, n_layers: int, gmf: bool) -> bool:
        """The joint model with the BCE, relu layers and no dropout trains by :class:`._nets.NeuMFStep` on
        the CPU (the same loss and optimisers as autograd, tested); pretraining stages, BPR, other
        activations, dropout, ``adamw`` and other devices by autograd."""
        return (n_layers >= 1 and gmf and self.loss == "bce" and self.activation == "relu"
                and float(self.dropout) == 0.0 and self.optimizer in ("adam", "sgd")
                and getattr(self, "device_", "cpu") == "cpu")

    def _new_hand_step(self, net, _nets):
        return _nets.NeuMFStep(net, self.optimizer, float(self.learning_rate), float(self.regularization),
                               float(self.weight_decay))

    def _hand_epoch(self, step, codes, rng):
        """The epoch of :meth:`_epoch_batches` (same permutation, same negatives) by the hand-written step."""
        users, items = codes[0], codes[1]
        perm = rng.permutation(len(users))
        neg = self._negatives(users[perm], rng)
        return step.epoch(users[perm], items[perm], neg, int(self.batch_size), self.n_threads), len(users)

    def _batch_loss(self, net, batch, torch):
        import torch.nn.functional as F

        u, i, neg = batch
        m = neg.shape[1]
        users = torch.cat([u, u.repeat_interleave(m)])
        items = torch.cat([i, neg.reshape(-1)])
        s, reg, _ = net(users, items)
        s_pos, s_neg = s[:len(u)], s[len(u):]
        if self.loss == "bce":
            labels = torch.cat([torch.ones_like(s_pos), torch.zeros_like(s_neg)])
            data_loss = F.binary_cross_entropy_with_logits(s, labels)
        else:
            data_loss = -F.logsigmoid(s_pos.repeat_interleave(m) - s_neg).mean()
        loss = data_loss + float(self.regularization) * reg
        return loss, data_loss.detach() * len(u)

    # ------------------------------------------------------------ scoring (NumPy)
    def _mlp_user_item(self):
        return self.user_mlp_factors_, self.item_mlp_factors_

    def _predict_codes(self, u, i):
        return self._net_scores(u, i)

    def _score_block(self, u):
        return self._net_block(u)
