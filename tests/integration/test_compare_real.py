"""Real-data comparison: the CLI's main job on ml-100k reproduces the published baseline."""

import json

import pytest

from conftest import require_dataset
from latentrec.cli import main

pytestmark = pytest.mark.realdata


def test_compare_ml100k_baselines_5fold(tmp_path, monkeypatch, capsys):
    folder = require_dataset("ml-100k")
    monkeypatch.setenv("LATENTREC_DATA_HOME", str(folder.parent))
    monkeypatch.setenv("LATENTREC_QUIET", "1")
    out = tmp_path / "res.json"
    code = main(["compare", "ml-100k", "--protocol", "5fold", "--models", "baselines", "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "biases *" in printed and "RMSE" in printed
    summary = {row["model"]: row for row in json.loads(out.read_text())["summary"]}
    # Surprise's BaselineOnly measures 0.944 (published to 3 decimals) on 5-fold ml-100k;
    # the seed moves our mean by about ±0.0003 around 0.9441, so compare at the published precision.
    assert round(summary["biases"]["rmse"], 3) <= 0.944
    assert summary["biases"]["rmse"] < summary["user-item-mean"]["rmse"] < summary["global-mean"]["rmse"]
    assert summary["global-mean"]["rmse"] == pytest.approx(1.126, abs=0.005)
    assert summary["popularity"]["ndcg@10"] > 0.15


def test_u1_u5_protocol_uses_the_published_folds(tmp_path, monkeypatch, capsys):
    folder = require_dataset("ml-100k")
    monkeypatch.setenv("LATENTREC_DATA_HOME", str(folder.parent))
    out = tmp_path / "res.json"
    assert main(["compare", "ml-100k", "--protocol", "u1-u5", "--models", "biases", "-o", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    assert doc["folds"] == [{"train": 80_000, "test": 20_000}] * 5
    assert doc["summary"][0]["rmse"] < 0.95
