"""Saving and loading: atomic, checksummed, never executes code, refuses what it cannot read."""

from __future__ import annotations

import json

import numpy as np
import pytest

import latentrec as lr
from latentrec.errors import PersistError
from latentrec.models.baselines import Biases


@pytest.fixture()
def saved(tmp_path, ratings):
    model = Biases().fit(ratings)
    path = tmp_path / "model"
    model.save(path)
    return model, path


def test_layout_and_manifest(saved):
    model, path = saved
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "latentrec-model" and manifest["format_version"] == 1
    assert manifest["model"] == "biases" and "class" not in manifest  # the catalogue name, not module.Class
    assert manifest["train_checksum"] == model.train_checksum_
    assert {"latentrec", "numpy"} <= set(manifest["versions"])
    assert (path / "arrays" / "user_bias_.npy").exists()


def test_round_trip_keeps_params_and_state(saved, ratings):
    model, path = saved
    loaded = lr.load_model(path)
    assert loaded.get_params() == model.get_params()
    assert loaded.history_ == model.history_
    assert loaded.rating_scale_ == model.rating_scale_
    np.testing.assert_array_equal(loaded.predict(ratings), model.predict(ratings))


def test_corrupted_array_is_refused(saved):
    _, path = saved
    target = path / "arrays" / "item_bias_.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(PersistError, match="item_bias_.npy is corrupted"):
        lr.load_model(path)


def test_missing_array_is_refused(saved):
    _, path = saved
    (path / "arrays" / "user_bias_.npy").unlink()
    with pytest.raises(PersistError, match="user_bias_.npy is missing"):
        lr.load_model(path)


def test_newer_format_is_refused_with_advice(saved):
    _, path = saved
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PersistError, match="upgrade latentrec"):
        lr.load_model(path)


def test_unregistered_class_is_never_imported(saved):
    _, path = saved
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["model"] = "os.system"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PersistError, match="field 'model': unknown model 'os.system'"):
        lr.load_model(path)
    del manifest["model"]
    manifest["class"] = "os.system"  # the earlier format
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PersistError, match="not a registered latentrec model"):
        lr.load_model(path)


def test_models_saved_with_a_class_field_still_load(saved, ratings):
    # models saved before the manifest recorded catalogue names: "class": "module.Class"
    model, path = saved
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["class"] = "latentrec.models.baselines.Biases"
    del manifest["model"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    np.testing.assert_allclose(lr.load_model(path).predict(ratings), model.predict(ratings))


def test_spark_implicit_als_is_saved_under_its_own_name():
    from latentrec import registry

    assert registry.name_of(registry.create("spark-implicit-als")) == "spark-implicit-als"
    assert registry.name_of(registry.create("spark-als")) == "spark-als"
    assert registry.name_of(registry.create("biased-mf")) == "biased-mf"


def test_not_a_model_directory(tmp_path):
    with pytest.raises(PersistError, match="manifest.json is missing"):
        lr.load_model(tmp_path)


def test_save_replaces_atomically_and_refuses_foreign_directory(saved, tmp_path, ratings):
    model, path = saved
    Biases(n_epochs=1).fit(ratings).save(path)
    assert lr.load_model(path).n_epochs == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.")], "temporary dirs left behind"
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    with pytest.raises(PersistError, match="not a latentrec model directory"):
        model.save(foreign)
    assert (foreign / "cat.jpg").exists()


def test_failed_save_leaves_previous_model(saved, monkeypatch):
    model, path = saved
    before = (path / "manifest.json").read_text()
    import latentrec.persist as persist

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(persist.np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert (path / "manifest.json").read_text() == before
    assert lr.load_model(path) is not None


def test_string_ids_and_item_metadata_survive(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"user": ["ann", "bob", "ann"], "item": ["m1", "m2", "m2"], "rating": [4.0, 2.0, 5.0]})
    meta = pd.DataFrame({"title": ["One (1999)", "Two (2001)"], "year": [1999, 2001]}, index=["m1", "m2"])
    data = lr.Interactions.from_frame(frame, item_metadata=meta)
    model = Biases().fit(data)
    model.save(tmp_path / "m")
    loaded = lr.load_model(tmp_path / "m")
    assert list(loaded.users_.ids) == ["ann", "bob"]
    assert loaded.item_metadata_.loc["m2", "title"] == "Two (2001)"


def test_old_module_paths_import_with_a_deprecation_warning(tmp_path):
    # issue 13: the models/ folders were renamed (ials -> factorization + linear, mf/svd -> factorization,
    # knn/graph -> neighbours); scripts importing the old paths keep working for one release, warned
    import subprocess
    import sys

    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            "try:\n    import latentrec.models.ials\nexcept DeprecationWarning as w:\n    print('warned:', w)\n"
            "warnings.simplefilter('ignore')\n"
            "from latentrec.models.ials import EASE, ImplicitALS, BPR\n"
            "from latentrec.models.ials.wrmf import ImplicitALS as A\n"
            "from latentrec.models.mf import BiasedMF\nfrom latentrec.models.knn import ItemKNN\n"
            "from latentrec.models.graph import RP3beta\nfrom latentrec.models.svd import TruncatedSVD\n"
            "import latentrec.models as m\n"
            "assert A is ImplicitALS is m.ImplicitALS and EASE is m.EASE and BiasedMF is m.BiasedMF\n"
            "assert ItemKNN is m.ItemKNN and RP3beta is m.RP3beta and TruncatedSVD is m.TruncatedSVD\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "warned: latentrec.models.ials moved to latentrec.models.factorization and latentrec.models.linear" \
        in out.stdout


@pytest.mark.parametrize("qualname, name", [("latentrec.models.ials.ImplicitALS", "implicit-als"),
                                            ("latentrec.models.ials.EASE", "ease"),
                                            ("latentrec.models.mf.BiasedMF", "biased-mf"),
                                            ("latentrec.models.knn.ItemKNN", "item-knn"),
                                            ("latentrec.models.graph.RP3beta", "rp3beta"),
                                            ("latentrec.models.linear.EDLAE", "edlae"),
                                            ("latentrec.models.neural.NeuMF", "neumf")])
def test_manifests_naming_a_class_of_the_old_layout_still_load_it(qualname, name):
    assert lr.registry.class_by_qualname(qualname) is lr.registry.model_class(name)
