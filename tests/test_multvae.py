"""MultVAE: NumPy inference against the torch forward pass, annealing, early stopping, the contract."""

import numpy as np
import pytest

import latentrec as lr
from model_suite import ModelSuite

torch = pytest.importorskip("torch")
from latentrec.models.neural import MultVAE  # noqa: E402


def _small(**kw):
    params = dict(n_factors=16, hidden=(32,), n_epochs=30, batch_size=64, learning_rate=3e-3, anneal_steps=200,
                  n_threads=1, random_state=0)
    return MultVAE(**{**params, **kw})


class TestMultVAE(ModelSuite):
    model_factory = staticmethod(_small)
    task = "implicit"
    quality = 0.17  # Popularity reaches 0.136 on this split
    varied_params = {"n_factors": 8, "hidden": (16,), "dropout": 0.1, "beta": 1.0, "anneal_steps": 5,
                     "n_epochs": 3, "batch_size": 300, "learning_rate": 1e-2, "weight_decay": 0.1,
                     "random_state": 1}


def test_numpy_forward_matches_torch(implicit_data):
    model = _small(n_epochs=2).fit(implicit_data)
    x = model.seen_[:7].toarray().astype(np.float32)
    h = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    h = torch.tanh(h @ torch.from_numpy(model.enc_w0_) + torch.from_numpy(model.enc_b0_))
    h = h @ torch.from_numpy(model.enc_w1_) + torch.from_numpy(model.enc_b1_)
    z = torch.tanh(h[:, :16] @ torch.from_numpy(model.dec_w0_) + torch.from_numpy(model.dec_b0_))
    logits = (z @ torch.from_numpy(model.dec_w1_) + torch.from_numpy(model.dec_b1_)).numpy()
    np.testing.assert_allclose(model._score_block(np.arange(7)), logits, rtol=1e-4, atol=1e-5)


def test_beta_is_annealed_to_its_cap_and_loss_falls(implicit_data):
    model = _small(n_epochs=12, anneal_steps=100, beta=0.3).fit(implicit_data)
    hist = model.history_frame()
    betas = hist["beta"].to_numpy()
    assert betas[0] < 0.3 and np.all(np.diff(betas) >= 0) and betas[-1] == pytest.approx(0.3)
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]


def test_early_stopping_keeps_the_best_epoch(implicit_data):
    train, val = lr.split.user_holdout(implicit_data, test_size=0.2, random_state=0)
    model = _small(n_epochs=25, early_stopping_rounds=3).fit(train, eval_set=val)
    hist = model.history_frame()
    best = int(hist["val_ndcg"].idxmax())
    assert model.best_epoch_ == best + 1
    assert model.score(val) == pytest.approx(hist["val_ndcg"].iloc[best], rel=1e-5)


def test_fold_in_of_a_fitted_user_matches_and_bad_input(implicit_data):
    model = _small(n_epochs=3).fit(implicit_data)
    row = model.seen_[5]
    ids, _ = model.recommend_for_interactions(model.items_.take(row.indices), row.data, n=10)
    np.testing.assert_array_equal(ids, model.recommend(model.users_.ids[5], n=10)[0])
    with pytest.raises(lr.ModelError, match="beta must be"):
        _small(beta=-1.0).fit(implicit_data)
    with pytest.raises(lr.DataError):
        model.recommend_for_interactions(model.items_.ids[:2], [np.nan, 1.0])
