"""Rating-prediction networks over user and item embeddings: DotProduct,
BiasedDotProduct and an MLP over the concatenated embeddings.

Notation (docs/notation): r̂_ui = p_u · q_i (DotProduct), μ + b_u + b_i + p_u · q_i
(BiasedDotProduct), μ + b_u + b_i + p_u · q_i + f([p_u, q_i]) (MLP, f a stack of dense
layers; the dot term optional).
All are trained on the squared error by mini-batch Adam / AdamW / SGD in PyTorch
with an L2 penalty λ on the embeddings (and λ_b on the biases) that each batch
actually uses:

    loss = mean_b (r̂_ui − r_ui)² + λ mean_b (‖p_u‖² + ‖q_i‖²) + λ_b mean_b (b_u² + b_i²)
"""

from __future__ import annotations

import numpy as np

from ..base import FactorModel, Interval, Options
from ._base import COMMON, LAYERS, NeuralRecommender, hidden_units

_BIAS = {"bias_regularization": Interval(float, 0, None)}

_SHARED_DOC = """
    n_epochs : int
    batch_size : int
        Ratings per mini-batch (each epoch visits every rating once, in a new order).
    learning_rate : float
        Step size at the first epoch.
    lr_decay : float in (0, 1], default 1.0
        Learning-rate schedule: the rate is multiplied by this after every epoch.
    optimizer : {"adam", "adamw", "sgd"}, default "adam"
        ``adam``: lazy Adam (torch SparseAdam) on the embeddings — only the rows a
        batch uses are touched, which keeps an epoch fast on large catalogues — and
        Adam on the dense layers; ``sgd``: plain SGD with sparse embedding gradients;
        ``adamw``: AdamW on every parameter (dense gradients, decoupled weight decay).
    regularization : float
        λ, the L2 penalty on the embeddings used in each batch (batch mean of ‖p_u‖² + ‖q_i‖²).
    weight_decay : float, default 0.0
        Optimiser weight decay on the dense layers (``adamw``: on every parameter).
    init_std : float, default 0.1
        Embeddings start as N(0, init_std²); biases at 0; dense layers like ``nn.Linear``.
    early_stopping_rounds : int or None, default None
        With ``eval_set`` given to ``fit``: stop after this many epochs without a better
        validation RMSE and restore the best epoch's parameters.
    validation_fraction : float in [0, 1), default 0.0
        Without ``eval_set``: carve this per-user share of the training rows (random,
        from ``random_state``) as the validation set, train on the rest and, with
        ``early_stopping_rounds``, keep the best epoch's model (no refit on all rows).
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}, default "auto"
        ``auto`` trains on CUDA when torch sees a GPU, else on Apple's MPS when available,
        else on the CPU. Predictions
        always run in NumPy on the CPU (a fitted model holds no torch object).
    n_threads : int, default 0
        Torch CPU threads during ``fit`` (0: all cores); restored afterwards.
    random_state : int, Generator or None
        Seeds the initialisation, the batch order and the dropout masks (a
        ``torch.Generator``; torch's global RNG is never touched). On the CPU the
        same seed gives identical models.
    verbose : bool, default False
        Show a progress bar over epochs.

    Attributes
    ----------
    user_factors_, item_factors_ : float32 arrays (n_users, k), (n_items, k)
    history_ : list of dict
        Per epoch: ``train_loss`` (training RMSE of the epoch's batches, before each
        batch's update), ``learning_rate``, ``epoch_s`` and ``val_rmse`` with ``eval_set``.
    best_epoch_ : int
        With early stopping: the epoch whose parameters were kept.
"""


class _ExplicitNeural(NeuralRecommender):
    task = "explicit"
    _biased = False

    def _init_arrays(self, data, rng):
        k = int(self.n_factors)
        arrays = {"user_factors_": self._normal(rng, (data.n_users, k)),
                  "item_factors_": self._normal(rng, (data.n_items, k))}
        if self._n_layers:
            arrays.update(self._dense_layers(rng, 2 * k))
        if self._is_biased():
            arrays["user_bias_"] = np.zeros(data.n_users, np.float32)
            arrays["item_bias_"] = np.zeros(data.n_items, np.float32)
        return arrays

    def _is_biased(self) -> bool:
        return bool(getattr(self, "biased", self._biased))

    def _epoch_batches(self, tensors, rng, torch):
        return self._permuted(tensors, rng, torch)

    def _hand_step(self, n_layers, gmf):
        return n_layers == 0 and not gmf and self.optimizer in ("adam", "sgd")

    def _batch_loss(self, net, batch, torch):
        u, i, r = batch
        pred, reg, reg_b = net(u, i)
        err = pred - r
        sq = (err * err).sum()
        loss = sq / len(r) + float(self.regularization) * reg
        if self._is_biased():
            loss = loss + float(self.bias_regularization) * reg_b
        return loss, sq.detach()

    def _epoch_loss(self, total, n):
        return float(np.sqrt(total / max(n, 1)))


class DotProduct(_ExplicitNeural, FactorModel):
    __doc__ = """Dot product of learned user and item embeddings: r̂_ui = p_u · q_i.

    The seed's first Keras model (50-d embeddings, test RMSE 1.21 on ml-latest-small);
    without biases it must learn the rating level inside the factors.

    Parameters
    ----------
    n_factors : int, default 50
        Embedding size k.""" + _SHARED_DOC

    _constraints = {**COMMON}

    def __init__(self, *, n_factors: int = 50, n_epochs: int = 20, batch_size: int = 1024,
                 learning_rate: float = 0.01, lr_decay: float = 1.0, optimizer: str = "adam",
                 regularization: float = 0.05, weight_decay: float = 0.0, init_std: float = 0.1,
                 early_stopping_rounds: int | None = None, validation_fraction: float = 0.0,
                 device: str = "auto", n_threads: int = 0,
                 random_state=None, verbose: bool = False):
        self.n_factors = n_factors
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
        self.random_state = random_state
        self.verbose = verbose


class BiasedDotProduct(_ExplicitNeural, FactorModel):
    __doc__ = """Biased dot product: r̂_ui = μ + b_u + b_i + p_u · q_i, trained in PyTorch.

    The seed's second Keras model (test RMSE 0.909 on ml-latest-small). The same
    model as :class:`latentrec.models.BiasedMF`, trained by mini-batch Adam instead
    of per-rating SGD; ``user_bias_``, ``item_bias_`` and ``global_mean_`` are exposed.

    Parameters
    ----------
    n_factors : int, default 50
        Embedding size k.
    bias_regularization : float, default 0.001
        λ_b on the biases used in each batch.""" + _SHARED_DOC + """
    user_bias_, item_bias_ : float32 arrays
    global_mean_ : float

    Notes
    -----
    Defaults were chosen on validation splits carved from training parts (10 %, seed 1),
    never on test data. regularization 0.1: on ml-latest-small's (0.02-0.4 tried).
    batch_size 8192 with learning_rate 0.02 (``benchmarks/neural_tuning.py --only batch``,
    on the training part of ml-100k's first 5-fold split and of ml-latest-small's 80/20
    holdout): best validation RMSE 0.9142 on ml-100k against 0.9149 for the previous
    1024 / 0.01, 0.8310 against 0.8291 on ml-latest-small, in a quarter of the steps (an
    epoch of 1M ratings ~4x faster on the CPU); 16384 lost 0.001-0.003 on both.
    n_epochs 20: early stopping picked 22 (ml-100k) and 16 (ml-latest-small) epochs there;
    use ``eval_set`` with ``early_stopping_rounds`` to choose per data set.
"""

    _constraints = {**COMMON, **_BIAS}
    _biased = True

    def __init__(self, *, n_factors: int = 50, n_epochs: int = 20, batch_size: int = 8192,
                 learning_rate: float = 0.02, lr_decay: float = 1.0, optimizer: str = "adam",
                 regularization: float = 0.1, bias_regularization: float = 0.001, weight_decay: float = 0.0,
                 init_std: float = 0.1, early_stopping_rounds: int | None = None, validation_fraction: float = 0.0,
                 device: str = "auto",
                 n_threads: int = 0, random_state=None, verbose: bool = False):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.optimizer = optimizer
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.weight_decay = weight_decay
        self.init_std = init_std
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose


class MLP(_ExplicitNeural):
    __doc__ = """A multi-layer perceptron over the concatenated user and item embeddings.

    r̂_ui = μ + b_u + b_i + p_u · q_i + w · h_L + c, with h_0 = dropout([p_u, q_i]) and
    h_j = dropout(act(W_j h_{j-1} + c_j)) — the seed's Keras network (embedding
    dropout 0.25 → Dense(64, relu) → dropout 0.75 → Dense(1), test RMSE 0.891 on
    ml-latest-small) plus user/item biases (``biased=False`` drops them) and a
    residual dot product of the same embeddings (``dot_term=False`` drops it).

    Predictions, top-N and similar items run in NumPy: the first layer is split
    into its user and item halves, so scoring a block of users over every item
    costs one small product per user and per item plus the remaining layers.

    Parameters
    ----------
    n_factors : int, default 50
        Embedding size k (the first layer sees 2k inputs).
    hidden : sequence of int, default (32,)
        Units of each hidden layer (at least one layer, each >= 1 unit); a
        comma-separated string such as ``"64,32"`` is accepted too (the CLI's form).
    dropout : float in [0, 1), default 0.5
        Dropout after every hidden layer (training only).
    embedding_dropout : float in [0, 1), default 0.25
        Dropout on the concatenated embeddings (training only).
    activation : {"relu", "tanh", "sigmoid", "gelu"}, default "relu"
    biased : bool, default True
        Add μ + b_u + b_i to the network's output.
    dot_term : bool, default True
        Add the dot product p_u · q_i of the same embeddings beside the network (a
        residual matrix-factorisation term: the MLP then learns what the dot product misses).
    bias_regularization : float, default 0.001
        λ_b on the biases used in each batch.""" + _SHARED_DOC + """
    mlp_w{j}_, mlp_b{j}_ : float32 arrays
        Hidden layer j's weights (in, out) and bias.
    output_w_, output_b_ : float32 arrays
        The output layer.

    Notes
    -----
    Defaults were chosen on validation splits carved from the training parts of
    ml-100k and ml-latest-small (10 %, seed 1; benchmarks/neural_tuning.py), never on
    test data: learning_rate 0.003, dropout 0.5 / 0.25 (the seed's network), then the
    residual dot term with regularization 0.15 and one hidden layer of 32 units.
    Without the dot term the MLP stayed ~0.01 RMSE behind BiasedDotProduct on ml-100k
    (validation 0.924 vs 0.915); with it the two are level (0.914), and ml-latest-small
    is unchanged (0.826-0.828). Epochs: early stopping picked 8 on ml-latest-small and
    16-29 on the smaller ml-100k; the default 10 is a compromise, use ``eval_set`` with
    ``early_stopping_rounds`` to choose.
"""

    _constraints = {**COMMON, **_BIAS, **LAYERS, "embedding_dropout": Interval(float, 0, 1, closed="left"),
                    "biased": Options(True, False), "dot_term": Options(True, False)}

    def __init__(self, *, n_factors: int = 50, hidden=(32,), dropout: float = 0.5,
                 embedding_dropout: float = 0.25, activation: str = "relu", biased: bool = True,
                 dot_term: bool = True,
                 n_epochs: int = 10, batch_size: int = 1024, learning_rate: float = 0.003,
                 lr_decay: float = 1.0, optimizer: str = "adam", regularization: float = 0.15,
                 bias_regularization: float = 0.001, weight_decay: float = 0.0, init_std: float = 0.1,
                 early_stopping_rounds: int | None = None, validation_fraction: float = 0.0,
                 device: str = "auto", n_threads: int = 0,
                 random_state=None, verbose: bool = False):
        self.n_factors = n_factors
        self.hidden = hidden
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.activation = activation
        self.biased = biased
        self.dot_term = dot_term
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.optimizer = optimizer
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.weight_decay = weight_decay
        self.init_std = init_std
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    @property
    def _n_layers(self) -> int:
        return len(hidden_units(self.hidden) or ())

    def _predict_codes(self, u, i):
        s = self._net_scores(u, i)
        if self.user_bias_ is not None:
            s += self.user_bias_[u] + self.item_bias_[i] + np.float32(self.global_mean_)
        return s

    def _score_block(self, u):
        s = self._net_block(u)
        if self.user_bias_ is not None:
            s += self.item_bias_[None, :]
            s += (self.user_bias_[u] + np.float32(self.global_mean_))[:, None]
        return s
