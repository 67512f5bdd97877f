"""PyTorch models: the shared suite with tiny configs, plus architecture checks, the
NumPy/torch forward agreement, early stopping, determinism and every bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.errors import MissingDependencyError, ModelError
from latentrec.split import random_split
from model_suite import ModelSuite

torch = pytest.importorskip("torch")

from latentrec.models.neural import MLP, BiasedDotProduct, DotProduct, NeuMF  # noqa: E402

FAST = dict(n_threads=1, random_state=0, device="cpu")


def dot():
    return DotProduct(n_factors=8, n_epochs=6, batch_size=512, learning_rate=0.03, **FAST)


def biased_dot():
    return BiasedDotProduct(n_factors=8, n_epochs=6, batch_size=512, learning_rate=0.02, **FAST)


def mlp():
    return MLP(n_factors=8, hidden=(16,), n_epochs=5, batch_size=512, learning_rate=0.01, **FAST)


def neumf():
    return NeuMF(n_factors=8, hidden=(16, 8), n_negatives=4, n_epochs=4, batch_size=512, learning_rate=0.01,
                 **FAST)


class TestDotProduct(ModelSuite):
    model_factory = staticmethod(dot)
    varied_params = {"n_factors": 4, "regularization": 0.5, "learning_rate": 0.01, "optimizer": "sgd",
                     "batch_size": 256, "lr_decay": 0.5, "init_std": 0.3, "random_state": 1}
    quality = 0.80


class TestBiasedDotProduct(ModelSuite):
    model_factory = staticmethod(biased_dot)
    varied_params = {"bias_regularization": 1.0, "regularization": 0.5, "optimizer": "adamw", "n_epochs": 2}
    quality = 0.75


class TestMLP(ModelSuite):
    model_factory = staticmethod(mlp)
    checkerboard_factory = staticmethod(lambda: mlp().set_params(n_epochs=40, batch_size=64))
    varied_params = {"hidden": (8, 8), "dropout": 0.0, "embedding_dropout": 0.0, "activation": "tanh",
                     "biased": False, "weight_decay": 0.1}
    quality = 0.75


class TestNeuMF(ModelSuite):
    model_factory = staticmethod(neumf)
    task = "implicit"
    varied_params = {"loss": "bpr", "n_negatives": 1, "hidden": (8,), "dropout": 0.3}
    quality = 0.10  # Popularity reaches ~0.06 on this planted set


# ---------------------------------------------------------------- shared data
@pytest.fixture(scope="module")
def explicit_split():
    data = lr.synthetic_ratings(n_users=200, n_items=120, n_ratings=6000, random_state=5)
    return random_split(data, test_size=0.2, random_state=0)


@pytest.fixture(scope="module")
def implicit_split():
    data = lr.synthetic_implicit(n_users=200, n_items=120, n_interactions=6000, random_state=5)
    return random_split(data, test_size=0.2, random_state=0)


# ---------------------------------------------------------------- NumPy inference == torch forward
def _torch_scores(model, u, i):
    from latentrec.models.neural import _nets

    arrays = {k: v for k, v in vars(model).items() if k.endswith("_") and isinstance(v, np.ndarray)
              and (k in _nets.EMBEDDINGS or k.startswith(("mlp_", "output_")))}
    net = _nets.Net(arrays, n_layers=model._n_layers, gmf=model._gmf, activation=model.activation,
                    dropout=0.5, embedding_dropout=0.5, mu=model.global_mean_, sparse=False,
                    dot=getattr(model, "dot_term", False), generator=torch.Generator(), device=torch.device("cpu"))
    net.eval()
    with torch.no_grad():
        out, _, _ = net(torch.from_numpy(u.astype(np.int64)), torch.from_numpy(i.astype(np.int64)))
    return out.numpy()


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_numpy_forward_matches_torch_mlp(explicit_split, activation):
    model = MLP(n_factors=6, hidden=(12, 5), activation=activation, n_epochs=2, **FAST).fit(explicit_split[0])
    test = explicit_split[1]
    u, i = test.user_codes, test.item_codes
    np.testing.assert_allclose(model._predict_codes(u, i), _torch_scores(model, u, i), rtol=1e-4, atol=1e-4)


def test_numpy_forward_matches_torch_mlp_with_dot_term(explicit_split):
    model = MLP(n_factors=6, hidden=(7,), dot_term=True, n_epochs=2, **FAST).fit(explicit_split[0])
    u, i = explicit_split[1].user_codes, explicit_split[1].item_codes
    plain = _torch_scores(model, u, i)
    np.testing.assert_allclose(model._predict_codes(u, i), plain, rtol=1e-4, atol=1e-4)
    # the residual term is really there: without it the scores move by p_u . q_i
    model.dot_term = False
    dot = np.einsum("ij,ij->i", model.user_factors_[u], model.item_factors_[i])
    np.testing.assert_allclose(model._predict_codes(u, i) + dot, plain, rtol=1e-4, atol=1e-4)
    assert np.abs(dot).max() > 0.05


def test_numpy_forward_matches_torch_neumf(implicit_split):
    model = NeuMF(n_factors=6, hidden=(10, 4), n_negatives=4, n_epochs=2, **FAST).fit(implicit_split[0])
    u, i = implicit_split[1].user_codes, implicit_split[1].item_codes
    np.testing.assert_allclose(model._predict_codes(u, i), _torch_scores(model, u, i), rtol=1e-4, atol=1e-4)


def mlp_dot():
    return mlp().set_params(dot_term=True)


@pytest.mark.parametrize("factory", [mlp, mlp_dot, neumf])
def test_score_block_agrees_with_pairs(explicit_split, implicit_split, factory):
    model = factory()
    model.fit(explicit_split[0] if model.task == "explicit" else implicit_split[0])
    users = np.arange(7, dtype=np.int32)
    block = model._score_block(users)
    n_items = len(model.items_)
    uu, ii = np.repeat(users, n_items), np.tile(np.arange(n_items, dtype=np.int32), len(users))
    np.testing.assert_allclose(block.ravel(), model._predict_codes(uu, ii), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- training behaviour
def test_same_seed_identical_other_seed_differs(explicit_split):
    kw = dict(n_factors=6, hidden=(8,), n_epochs=2, dropout=0.3, device="cpu", n_threads=2)
    a = MLP(random_state=3, **kw).fit(explicit_split[0])
    b = MLP(random_state=3, **kw).fit(explicit_split[0])
    c = MLP(random_state=4, **kw).fit(explicit_split[0])
    for name in ("user_factors_", "item_factors_", "mlp_w0_", "output_w_", "user_bias_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.user_factors_, c.user_factors_)


def test_global_torch_rng_untouched_and_threads_restored(explicit_split):
    before_threads = torch.get_num_threads()
    state = torch.random.get_rng_state().clone()
    MLP(n_factors=4, hidden=(4,), n_epochs=1, dropout=0.5, random_state=0, n_threads=1).fit(explicit_split[0])
    assert torch.get_num_threads() == before_threads
    assert torch.equal(torch.random.get_rng_state(), state)


def test_history_and_learning_rate_schedule(explicit_split):
    model = biased_dot().set_params(n_epochs=3, lr_decay=0.5).fit(explicit_split[0], eval_set=explicit_split[1])
    hist = model.history_frame()
    assert list(hist["epoch"]) == [1, 2, 3]
    np.testing.assert_allclose(hist["learning_rate"], [0.02, 0.01, 0.005])
    assert {"train_loss", "val_rmse", "epoch_s"} <= set(hist.columns)
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]


def test_early_stopping_restores_best_epoch(explicit_split):
    train, test = explicit_split
    # a large rate and no penalty overfit quickly, so validation RMSE turns up
    model = DotProduct(n_factors=32, n_epochs=40, learning_rate=0.05, regularization=0.0,
                       early_stopping_rounds=2, **FAST).fit(train, eval_set=test)
    val = [h["val_rmse"] for h in model.history_]
    assert len(val) < 40, "validation RMSE never got worse"
    assert model.best_epoch_ == int(np.argmin(val)) + 1
    rmse = lr.metrics.rmse(test.values, model.predict(test))
    assert rmse == pytest.approx(min(val), abs=1e-5)


def test_neumf_history_has_ndcg_and_negatives_are_unseen(implicit_split):
    train, test = implicit_split
    model = neumf().set_params(n_epochs=2).fit(train, eval_set=test)
    assert all("val_ndcg" in h for h in model.history_)
    data = train.compact()
    model._n_items = data.n_items
    model._pos_keys = np.unique(data.user_codes.astype(np.int64) * data.n_items + data.item_codes)
    users = np.repeat(np.arange(data.n_users), 50)
    neg = model._negatives(users, np.random.default_rng(0))
    assert neg.shape == (len(users), 4)
    keys = users[:, None] * data.n_items + neg
    assert not np.isin(keys, model._pos_keys).any()


def test_neumf_pretraining_trains_both_branches_then_joins_them(implicit_split):
    train, test = implicit_split
    joined = {}

    class Spy(NeuMF):
        def _pretrain(self, arrays, make_net, train_epoch):
            joined["start"] = {k: v.copy() for k, v in arrays.items()}
            joined["out"] = super()._pretrain(arrays, make_net, train_epoch)
            return joined["out"]

    model = Spy(n_factors=8, hidden=(16, 8), n_negatives=4, n_epochs=1, pretrain_epochs=3, batch_size=512,
                learning_rate=0.01, **FAST).fit(train, eval_set=test)
    stages = [(h["stage"], h["epoch"]) for h in model.pretrain_history_]
    assert stages == [("gmf", 1), ("gmf", 2), ("gmf", 3), ("mlp", 1), ("mlp", 2), ("mlp", 3)]
    for stage in ("gmf", "mlp"):
        losses = [h["train_loss"] for h in model.pretrain_history_ if h["stage"] == stage]
        assert losses[-1] < losses[0], (stage, losses)
    start, out = joined["start"], joined["out"]
    assert set(out) == set(start)
    for name in start:
        assert out[name].shape == start[name].shape and not np.array_equal(out[name], start[name]), name
    # the pretrained GMF branch alone (weights halved by alpha = 0.5) already ranks well
    gmf = (out["user_factors_"] * 2 * out["output_w_"][:8]) @ out["item_factors_"].T
    probe = NeuMF(n_factors=2, hidden=(2,), n_negatives=1, n_epochs=1, **FAST).fit(train)
    probe._net_block = lambda u: gmf[u]
    recoded, _ = test.recode(probe.users_, probe.items_)
    assert probe._eval_metrics(recoded)["val_ndcg"] > 0.1
    # one fine-tuning epoch after pretraining beats one epoch from scratch
    scratch = NeuMF(n_factors=8, hidden=(16, 8), n_negatives=4, n_epochs=1, batch_size=512, learning_rate=0.01,
                    **FAST).fit(train, eval_set=test)
    assert model.history_[0]["val_ndcg"] > scratch.history_[0]["val_ndcg"]
    with pytest.raises(ModelError, match="pretrain_epochs must be"):
        NeuMF(pretrain_epochs=-1, **FAST).fit(train)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_every_optimizer_learns(explicit_split, optimizer):
    lr_ = 0.5 if optimizer == "sgd" else 0.02
    model = BiasedDotProduct(n_factors=8, n_epochs=8, batch_size=1024, optimizer=optimizer, learning_rate=lr_, **FAST)
    model.fit(explicit_split[0])
    rmse = lr.metrics.rmse(explicit_split[1].values, model.predict(explicit_split[1]))
    baseline = lr.metrics.rmse(explicit_split[1].values, np.full(len(explicit_split[1]), model.global_mean_))
    assert rmse < baseline - 0.05, (optimizer, rmse, baseline)


def test_factors_drive_similar_items_and_fold_in(explicit_split):
    model = biased_dot().fit(explicit_split[0])
    ids, _ = model.recommend_for_interactions(model.items_.ids[:5], [5, 5, 4, 1, 1], n=5)
    assert len(ids) == 5 and not set(ids) & set(model.items_.ids[:5])
    net = mlp().fit(explicit_split[0])
    ids, _ = net.recommend_for_interactions(net.items_.ids[:3], [5, 4, 4], n=4)
    assert len(ids) == 4 and not set(ids) & set(net.items_.ids[:3])


def test_grid_search_with_dataframe(explicit_split):
    from sklearn.model_selection import GridSearchCV

    frame = explicit_split[0].to_frame()
    search = GridSearchCV(BiasedDotProduct(n_factors=4, n_epochs=2, **FAST),
                          {"regularization": [0.01, 0.5]}, cv=2)
    search.fit(frame[["user", "item"]], frame["rating"])
    assert set(search.cv_results_["param_regularization"]) == {0.01, 0.5}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_loaded_model_predicts_without_torch(explicit_split, tmp_path, monkeypatch):
    model = mlp().fit(explicit_split[0])
    model.save(tmp_path / "m")
    assert not list(tmp_path.glob("m/**/*.pkl"))
    monkeypatch.setitem(sys.modules, "torch", None)
    loaded = lr.load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(explicit_split[1]), model.predict(explicit_split[1]), rtol=1e-6)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("params, match", [
    ({"hidden": (64, 0)}, "hidden must be a non-empty sequence of positive integers"),
    ({"hidden": ()}, "hidden must be"),
    ({"hidden": 64}, "hidden must be"),
    ({"hidden": "64,0"}, "hidden must be"),
    ({"hidden": "64,x"}, "hidden must be"),
    ({"dropout": 1.0}, "dropout must be a number >= 0 and < 1"),
    ({"dropout": -0.1}, "dropout must be"),
    ({"embedding_dropout": 1.5}, "embedding_dropout must be"),
    ({"activation": "softmax"}, "activation must be one of"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of"),
    ({"device": "gpu"}, "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ({"n_factors": 0}, "n_factors must be an integer >= 1"),
])
def test_invalid_architecture_is_a_clear_error(explicit_split, params, match):
    with pytest.raises(ModelError, match=match):
        MLP(n_epochs=1, **{**FAST, **params}).fit(explicit_split[0])


def test_hidden_as_comma_string_equals_tuple(explicit_split):
    # the CLI passes --params hidden=8,4 as a string
    a = MLP(n_factors=4, hidden="8,4", n_epochs=1, **FAST).fit(explicit_split[0])
    b = MLP(n_factors=4, hidden=(8, 4), n_epochs=1, **FAST).fit(explicit_split[0])
    assert a.mlp_w1_.shape == (8, 4)
    np.testing.assert_array_equal(a.predict(explicit_split[1]), b.predict(explicit_split[1]))


def test_neumf_bad_loss(implicit_split):
    with pytest.raises(ModelError, match="loss must be one of 'bce', 'bpr'"):
        NeuMF(loss="mse", **FAST).fit(implicit_split[0])


def test_nan_loss_names_the_epoch(explicit_split):
    model = DotProduct(optimizer="sgd", learning_rate=1e12, n_epochs=5, **FAST)
    with pytest.raises(ModelError, match=r"DotProduct diverged at epoch \d+"):
        model.fit(explicit_split[0])


def test_cuda_requested_but_absent(explicit_split):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelError, match="device='cuda' was requested but CUDA is not available"):
        DotProduct(device="cuda", n_epochs=1).fit(explicit_split[0])


def test_auto_device_prefers_cuda_then_mps(monkeypatch):
    from latentrec.models.neural import _nets

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert _nets.resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert _nets.resolve_device("auto").type == "cpu"
    with pytest.raises(ModelError, match="device='mps' was requested but MPS is not available"):
        _nets.resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _nets.resolve_device("auto").type == "cuda"


def test_auto_device_is_recorded(explicit_split):
    model = DotProduct(device="auto", n_epochs=1, n_threads=1).fit(explicit_split[0])
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    assert model.device_ == ("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")


def test_missing_torch_names_the_extra(explicit_split, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    for cls in (DotProduct, BiasedDotProduct, MLP):
        with pytest.raises(MissingDependencyError, match=r"pip install 'latentrec\[neural\]'"):
            cls(n_epochs=1).fit(explicit_split[0])


def test_latentrec_imports_without_torch():
    # a finder that refuses torch, as on a machine without it (sys.modules['torch'] = None
    # would confuse SciPy's array-API probes, which look torch up in sys.modules)
    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ModuleNotFoundError(\"No module named 'torch'\", name=name)\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "import latentrec, latentrec.models\n"
            "from latentrec.models import NeuMF, MLP\n"
            "from latentrec.errors import MissingDependencyError\n"
            "assert 'torch' not in sys.modules\n"
            "try:\n    MLP(n_epochs=1).fit(latentrec.synthetic_ratings(n_users=20, n_items=10, n_ratings=100))\n"
            "except MissingDependencyError as e:\n    print('OK', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK") and "[neural]" in out.stdout


def test_predict_dataframe_unknown_rows_fallback(explicit_split):
    model = biased_dot().fit(explicit_split[0])
    frame = pd.DataFrame({"user": [10**9, model.users_.ids[0]], "item": [model.items_.ids[0], 10**9]})
    pred = model.predict(frame)
    expected = [model.global_mean_ + model.item_bias_[0], model.global_mean_ + model.user_bias_[0]]
    np.testing.assert_allclose(pred, np.clip(expected, *model.rating_scale_), rtol=1e-5)


# ---------------------------------------------------------------- hand-written dot-product step
def _with_autograd(monkeypatch, cls):
    monkeypatch.setattr(cls, "_hand_step", lambda self, n_layers, gmf: False)


@pytest.mark.parametrize("factory", [dot, biased_dot])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_hand_step_and_kernel_equal_autograd(explicit_split, monkeypatch, factory, optimizer):
    """The numba epoch (CPU), the torch-ops step (other devices) and autograd + SparseAdam / SGD
    follow the same trajectory from the same seed."""
    from latentrec.models.neural import _nets

    train, _ = explicit_split
    kernel = factory().set_params(optimizer=optimizer, n_epochs=3).fit(train)

    def torch_epoch(self, users, items, values, perm, batch_size, n_threads):
        total = 0.0
        for s in range(0, len(perm), batch_size):
            p = perm[s:s + batch_size]
            total += float(self.step(torch.from_numpy(users[p]), torch.from_numpy(items[p]),
                                     torch.from_numpy(values[p])))
        return total

    with monkeypatch.context() as m:
        m.setattr(_nets.DotProductStep, "cpu_epoch", torch_epoch)
        ops = factory().set_params(optimizer=optimizer, n_epochs=3).fit(train)
    with monkeypatch.context() as m:
        _with_autograd(m, type(kernel))
        auto = factory().set_params(optimizer=optimizer, n_epochs=3).fit(train)
    for other in (ops, auto):
        np.testing.assert_allclose(kernel.user_factors_, other.user_factors_, atol=2e-5)
        np.testing.assert_allclose(kernel.item_factors_, other.item_factors_, atol=2e-5)
        np.testing.assert_allclose([h["train_loss"] for h in kernel.history_],
                                   [h["train_loss"] for h in other.history_], rtol=1e-5)
    assert kernel.history_[-1]["train_loss"] < kernel.history_[0]["train_loss"]


NEUMF_ARRAYS = ("user_factors_", "item_factors_", "user_mlp_factors_", "item_mlp_factors_", "output_w_",
                "output_b_")


@pytest.mark.parametrize("params", [{}, {"optimizer": "sgd", "learning_rate": 0.1},
                                    {"weight_decay": 0.05, "hidden": (16,), "regularization": 0.01},
                                    {"hidden": (12, 8, 4), "batch_size": 300}])
def test_neumf_hand_step_equals_autograd(implicit_split, monkeypatch, params):
    """NeuMF's CPU step by hand (the (B, 1 + n_negatives) grid, numba kernels, lazy Adam on the rows, Adam
    on the dense layers) follows autograd + SparseAdam / Adam (or SGD) from the same seed."""
    from latentrec.models.neural import _nets

    train, _ = implicit_split
    steps = []
    real = _nets.NeuMFStep.step
    with monkeypatch.context() as m:
        m.setattr(_nets.NeuMFStep, "step", lambda self, *a: steps.append(1) or real(self, *a))
        hand = neumf().set_params(n_epochs=3, **params).fit(train)
    assert len(steps) == 3 * -(-len(train.compact()) // hand.batch_size)  # every batch by hand
    with monkeypatch.context() as m:
        _with_autograd(m, NeuMF)
        auto = neumf().set_params(n_epochs=3, **params).fit(train)
    names = NEUMF_ARRAYS + tuple(f"mlp_{kind}{j}_" for j in range(hand._n_layers) for kind in "wb")
    for name in names:
        np.testing.assert_allclose(getattr(hand, name), getattr(auto, name), atol=2e-5, err_msg=name)
    np.testing.assert_allclose([h["train_loss"] for h in hand.history_], [h["train_loss"] for h in auto.history_],
                               rtol=1e-5)
    assert hand.history_[-1]["train_loss"] < hand.history_[0]["train_loss"]


@pytest.mark.parametrize("params", [{"loss": "bpr"}, {"dropout": 0.2}, {"activation": "tanh"},
                                    {"optimizer": "adamw"}])
def test_neumf_without_a_hand_step_trains_by_autograd(implicit_split, monkeypatch, params):
    from latentrec.models.neural import _nets

    def refuse(self, *args):
        raise AssertionError("the hand-written step ran")

    monkeypatch.setattr(_nets.NeuMFStep, "step", refuse)
    model = neumf().set_params(n_epochs=2, **params).fit(implicit_split[0])
    assert np.isfinite(model.history_[-1]["train_loss"])


def test_neumf_early_stopping_restores_the_hand_step_best_epoch(implicit_split):
    """The dense layers are views of the step's flat buffer: restoring the best epoch must reach them."""
    train, test = implicit_split
    model = neumf().set_params(n_epochs=8, learning_rate=0.05, early_stopping_rounds=1).fit(train, eval_set=test)
    assert len(model.history_) > model.best_epoch_  # stopped after a worse epoch: the best one was restored
    again = neumf().set_params(n_epochs=model.best_epoch_, learning_rate=0.05).fit(train, eval_set=test)
    for name in NEUMF_ARRAYS + ("mlp_w0_", "mlp_w1_"):
        np.testing.assert_array_equal(getattr(model, name), getattr(again, name), err_msg=name)


def test_neumf_negatives_unseen_with_the_dense_mask_and_the_search(implicit_split, monkeypatch):
    from latentrec.models.neural import neumf as neumf_module

    train, _ = implicit_split
    data = train.compact()
    users = np.repeat(np.arange(data.n_users), 50)
    keys_pos = data.user_codes.astype(np.int64) * data.n_items + data.item_codes
    draws = []
    for cells in (10**12, 0):  # dense mask, then sorted keys
        monkeypatch.setattr(neumf_module, "_BITMAP_CELLS", cells)
        model = neumf()
        model._prepare(data, {}, torch)
        assert (model._seen_mask is not None) == (cells > 0)
        neg = model._negatives(users, np.random.default_rng(0))
        assert not np.isin(users[:, None] * data.n_items + neg, keys_pos).any()
        draws.append(neg)
    np.testing.assert_array_equal(*draws)  # the same draws, whichever lookup


# ---------------------------------------------------------------- validation slice of the training rows
def test_validation_fraction_early_stops_on_a_slice_of_the_training_rows(explicit_split):
    train, _ = explicit_split
    model = DotProduct(n_factors=32, n_epochs=40, learning_rate=0.05, regularization=0.0,
                       early_stopping_rounds=2, validation_fraction=0.2, **FAST).fit(train)
    val = [h["val_rmse"] for h in model.history_]
    assert len(val) < 40, "validation RMSE never got worse"
    assert model.best_epoch_ == int(np.argmin(val)) + 1
    counts = np.bincount(train.compact().user_codes)
    expected = np.clip(np.round(0.2 * counts), 1, counts - 1)[counts >= 2].sum()
    assert model.validation_rows_ == expected
    # the kept model is the best epoch's: fitting on the same 80 % for best_epoch_ epochs gives it
    again = DotProduct(n_factors=32, n_epochs=model.best_epoch_, learning_rate=0.05, regularization=0.0,
                       validation_fraction=0.2, **FAST).fit(train)
    np.testing.assert_allclose(again.user_factors_, model.user_factors_, atol=1e-6)
    assert again.history_[-1]["val_rmse"] == pytest.approx(min(val))
    # seen_ is the whole training set again after fit
    assert model.seen_.nnz == len(train.compact())


def test_validation_fraction_neumf_monitors_ndcg_and_ignores_it_with_eval_set(implicit_split):
    train, test = implicit_split
    model = neumf().set_params(n_epochs=3, validation_fraction=0.2, early_stopping_rounds=1).fit(train)
    assert all("val_ndcg" in h for h in model.history_)
    assert model.history_[model.best_epoch_ - 1]["val_ndcg"] == max(h["val_ndcg"] for h in model.history_)
    assert model.seen_.nnz == len(train.compact())
    # the slice's items are not excluded while validating: NDCG is above zero
    assert max(h["val_ndcg"] for h in model.history_) > 0
    given = neumf().set_params(n_epochs=2, validation_fraction=0.2).fit(train, eval_set=test)
    assert not hasattr(given, "validation_rows_")
    with pytest.raises(ModelError, match="validation_fraction"):
        neumf().set_params(validation_fraction=1.0).fit(train)
