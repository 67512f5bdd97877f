"""Saved models under attack (issue 16, part A): tampered manifests and arrays, files that are
not plain files, and saves killed at random points. Every bad directory is a PersistError
naming the field; nothing reaches a kernel; a killed save never loses the model."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import latentrec as lr
from latentrec import persist
from latentrec.errors import PersistError
from latentrec.models import ALS

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def model():
    data = lr.synthetic_ratings(n_users=60, n_items=40, n_ratings=900, random_state=1)
    return ALS(n_factors=4, n_epochs=2, random_state=0).fit(data)


@pytest.fixture()
def saved(tmp_path, model):
    path = tmp_path / "model"
    model.save(path)
    return path


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _write_manifest(path: Path, manifest) -> None:
    (path / "manifest.json").write_text(json.dumps(manifest))


def _put_array(path: Path, name: str, arr: np.ndarray, *, kind: str | None = None) -> None:
    """Replace (or add) an array with a consistent checksum, dtype and shape: a careful tamperer."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    (path / "arrays" / f"{name}.npy").write_bytes(buf.getvalue())
    manifest = _manifest(path)
    entry = manifest["arrays"].get(name, {"kind": kind or "array"})
    entry.update(sha256=hashlib.sha256(buf.getvalue()).hexdigest(), dtype=arr.dtype.str, shape=list(arr.shape))
    manifest["arrays"][name] = entry
    _write_manifest(path, manifest)


def _array(path: Path, name: str) -> np.ndarray:
    return np.load(path / "arrays" / f"{name}.npy")


# ---------------------------------------------------------------- malformed manifests

def _set(field, value):
    def edit(m):
        m[field] = value
        return m
    return edit


def _drop(field):
    def edit(m):
        del m[field]
        return m
    return edit


MANIFEST_CASES = {
    "list manifest": (lambda m: [m], "must hold a JSON object"),
    "null manifest": (lambda m: None, "must hold a JSON object"),
    "string manifest": (lambda m: "model", "must hold a JSON object"),
    "number manifest": (lambda m: 3, "must hold a JSON object"),
    "format missing": (_drop("format"), "not a latentrec model manifest"),
    "format wrong": (_set("format", "sklearn-pickle"), "not a latentrec model manifest"),
    "format_version true": (_set("format_version", True), "format_version"),
    "format_version -1": (_set("format_version", -1), "format_version"),
    "format_version 0": (_set("format_version", 0), "format_version"),
    "format_version string": (_set("format_version", "1"), "format_version"),
    "format_version float": (_set("format_version", 1.0), "format_version"),
    "format_version null": (_set("format_version", None), "format_version"),
    "format_version newer": (_set("format_version", 99), "upgrade latentrec"),
    "model missing": (_drop("model"), "field 'model' is missing"),
    "params missing": (_drop("params"), "field 'params' is missing"),
    "state missing": (_drop("state"), "field 'state' is missing"),
    "arrays missing": (_drop("arrays"), "field 'arrays' is missing"),
    "model not a string": (_set("model", 5), "field 'model' must be a string"),
    "params a list": (_set("params", []), "field 'params' must be an object"),
    "state a list": (_set("state", [1]), "field 'state' must be an object"),
    "arrays null": (_set("arrays", None), "field 'arrays' must be an object"),
    "model unregistered": (_set("model", "os.system"), "unknown model 'os.system'"),
    "params unknown name": (lambda m: {**m, "params": {**m["params"], "evil": 1}}, "does not take"),
    "params out of range": (lambda m: {**m, "params": {**m["params"], "n_factors": -1}}, "n_factors"),
    "params wrong type": (lambda m: {**m, "params": {**m["params"], "n_epochs": "many"}}, "n_epochs"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_malformed_manifest_is_a_persist_error_naming_the_field(saved, case):
    edit, words = MANIFEST_CASES[case]
    _write_manifest(saved, edit(_manifest(saved)))
    with pytest.raises(PersistError, match=words):
        lr.load_model(saved)


def test_manifest_that_is_not_json(saved):
    (saved / "manifest.json").write_text("{not json")
    with pytest.raises(PersistError, match="manifest.json is corrupted"):
        lr.load_model(saved)


# ---------------------------------------------------------------- array entries and names

def _rename_entry(new: str):
    def edit(path):
        m = _manifest(path)
        m["arrays"][new] = m["arrays"].pop("user_bias_")
        _write_manifest(path, m)
    return edit


def _entry(field, value):
    def edit(path):
        m = _manifest(path)
        if value is _DROP:
            del m["arrays"]["user_bias_"][field]
        else:
            m["arrays"]["user_bias_"][field] = value
        _write_manifest(path, m)
    return edit


_DROP = object()

ENTRY_CASES = {
    "traversal ../../outside": (_rename_entry("../../outside"), "array names are attribute names"),
    "absolute path": (_rename_entry("/etc/passwd"), "array names are attribute names"),
    "sub folder": (_rename_entry("sub/user_bias_"), "array names are attribute names"),
    "dunder name": (_rename_entry("__class__"), "array names are attribute names"),
    "upper case": (_rename_entry("User_bias_"), "array names are attribute names"),
    "no trailing underscore": (_rename_entry("user_bias"), "array names are attribute names"),
    "unknown csr part": (_rename_entry("seen_.shape"), "array names are attribute names"),
    "kind pickle": (_entry("kind", "pickle"), "kind"),
    "kind csr for a dense name": (_entry("kind", "csr.data"), "kind"),
    "sha256 missing": (_entry("sha256", _DROP), "sha256"),
    "sha256 not hex": (_entry("sha256", "z" * 64), "sha256"),
    "entry not an object": (lambda p: _write_manifest(p, {**_manifest(p), "arrays": {
        **_manifest(p)["arrays"], "user_bias_": "x"}}), "must be an object"),
    "dtype disagrees": (_entry("dtype", "<f8"), "the manifest says"),
    "shape disagrees": (_entry("shape", [3]), "the manifest says"),
}


@pytest.mark.parametrize("case", sorted(ENTRY_CASES))
def test_bad_array_entry_is_refused(saved, case):
    edit, words = ENTRY_CASES[case]
    edit(saved)
    with pytest.raises(PersistError, match=words):
        lr.load_model(saved)


def test_traversal_name_never_reads_outside(tmp_path, model):
    """Regression (issue 16): an array named ../../outside was read from outside the model."""
    path = tmp_path / "deep" / "model"
    model.save(path)
    outside = tmp_path / "outside.npy"
    np.save(outside, np.zeros(60, np.float32))
    m = _manifest(path)
    m["arrays"]["../../outside"] = m["arrays"].pop("user_bias_")
    m["arrays"]["../../outside"]["sha256"] = hashlib.sha256(outside.read_bytes()).hexdigest()
    _write_manifest(path, m)
    with pytest.raises(PersistError, match="array names"):
        lr.load_model(path)


# ---------------------------------------------------------------- files that are not plain files

def _symlink_array(target):
    def edit(path):
        f = path / "arrays" / "user_bias_.npy"
        f.unlink()
        os.symlink(target(path) if callable(target) else target, f)
    return edit


def _fifo(rel):
    def edit(path):
        f = path / rel
        f.unlink()
        os.mkfifo(f)
    return edit


def _symlink_dir(path):
    os.rename(path / "arrays", path / "real_arrays")
    os.symlink(path / "real_arrays", path / "arrays")


def _symlink_manifest(path):
    os.rename(path / "manifest.json", path / "real.json")
    os.symlink(path / "real.json", path / "manifest.json")


FILE_CASES = {
    "array symlink to /dev/zero": (_symlink_array("/dev/zero"), "symbolic link"),
    "array symlink inside the model": (_symlink_array(lambda p: p / "arrays" / "item_bias_.npy"), "symbolic link"),
    "array is a FIFO": (_fifo("arrays/user_bias_.npy"), "not a regular file"),
    "array is a folder": (lambda p: ((p / "arrays" / "user_bias_.npy").unlink(),
                                     (p / "arrays" / "user_bias_.npy").mkdir()), "not a regular file"),
    "manifest is a FIFO": (_fifo("manifest.json"), "not a regular file"),
    "manifest is a symlink": (_symlink_manifest, "symbolic link"),
    "arrays folder is a symlink": (_symlink_dir, "not a plain folder"),
    "array missing": (lambda p: (p / "arrays" / "user_bias_.npy").unlink(), "user_bias_.npy is missing"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_only_plain_files_are_opened(saved, case):
    """Regression (issue 16): a FIFO hung load_model; a symlink to /dev/zero read until memory ran out."""
    edit, words = FILE_CASES[case]
    edit(saved)
    previous = signal.signal(signal.SIGALRM, lambda *a: pytest.fail("load_model hung on a special file"))
    signal.alarm(20)
    try:
        with pytest.raises(PersistError, match=words):
            lr.load_model(saved)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_item_metadata_symlink_is_refused(tmp_path):
    import dataclasses

    import pandas as pd

    from latentrec.models.baselines import Biases

    data = lr.synthetic_ratings(n_users=30, n_items=20, n_ratings=300, random_state=0)
    meta = pd.DataFrame({"title": [f"t{i}" for i in data.items.ids]}, index=data.items.ids)
    path = tmp_path / "m"
    Biases().fit(dataclasses.replace(data, item_metadata=meta)).save(path)
    assert (path / "item_metadata.json").is_file()
    (tmp_path / "secret.json").write_text("{}")
    (path / "item_metadata.json").unlink()
    os.symlink(tmp_path / "secret.json", path / "item_metadata.json")
    with pytest.raises(PersistError, match="item_metadata.json is a symbolic link"):
        lr.load_model(path)


def test_garbage_and_pickled_arrays_are_refused(saved):
    blob = b"not an npy file at all"
    (saved / "arrays" / "user_bias_.npy").write_bytes(blob)
    m = _manifest(saved)
    m["arrays"]["user_bias_"]["sha256"] = hashlib.sha256(blob).hexdigest()
    _write_manifest(saved, m)
    with pytest.raises(PersistError, match="not a plain array"):
        lr.load_model(saved)
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (saved / "arrays" / "user_bias_.npy").write_bytes(buf.getvalue())
    m["arrays"]["user_bias_"]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    _write_manifest(saved, m)
    with pytest.raises(PersistError, match="not a plain array"):
        lr.load_model(saved)


# ---------------------------------------------------------------- array contents (consistent checksums)

def _tamper(name, fn, kind=None):
    def edit(path):
        _put_array(path, name, fn(_array(path, name) if (path / "arrays" / f"{name}.npy").exists() else None),
                   kind=kind)
    return edit


def _with(arr, index, value):
    arr = arr.copy()
    arr[index] = value
    return arr


def _drop_entry(name):
    def edit(path):
        m = _manifest(path)
        del m["arrays"][name]
        _write_manifest(path, m)
    return edit


def _state(name, value):
    def edit(path):
        m = _manifest(path)
        if value is _DROP:
            del m["state"][name]
        else:
            m["state"][name] = value
        _write_manifest(path, m)
    return edit


CONTENT_CASES = {
    # shapes against the vocabularies and each other
    "item_factors_ 10 rows": (_tamper("item_factors_", lambda a: a[:10]), "item_factors_ has 10 along axis 0"),
    "user_factors_ extra rows": (_tamper("user_factors_", lambda a: np.vstack([a, a])), "user_factors_ has 120"),
    "factor columns disagree": (_tamper("item_factors_", lambda a: a[:, :2].copy()), "same number of columns"),
    "user_factors_ 1-d": (_tamper("user_factors_", lambda a: a[:, 0].copy()), "2 dimension"),
    "user_bias_ 2-d": (_tamper("user_bias_", lambda a: a[:, None].copy()), "1 dimension"),
    "item_bias_ short": (_tamper("item_bias_", lambda a: a[:-1].copy()), "item_bias_ has 39"),
    "item_popularity_ short": (_tamper("item_popularity_", lambda a: a[:5].copy()), "item_popularity_ has 5"),
    # dtypes and values
    "item_factors_ integers": (_tamper("item_factors_", lambda a: a.astype(np.int32)), "must hold floats"),
    "item_factors_ complex": (_tamper("item_factors_", lambda a: a.astype(np.complex64)), "must hold floats"),
    "user_bias_ NaN": (_tamper("user_bias_", lambda a: _with(a, 3, np.nan)), "NaN or infinite"),
    "item_factors_ inf": (_tamper("item_factors_", lambda a: _with(a, (2, 1), np.inf)), "NaN or infinite"),
    "item_popularity_ floats": (_tamper("item_popularity_", lambda a: a.astype(np.float32)), "must hold integers"),
    "item_popularity_ negative": (_tamper("item_popularity_", lambda a: _with(a, 0, -5)), "non-negative"),
    # the seen-items CSR matrix
    "seen_ index beyond the catalogue": (_tamper("seen_.indices", lambda a: _with(a, 0, 10**6)),
                                         "column index outside"),
    "seen_ negative index": (_tamper("seen_.indices", lambda a: _with(a, 1, -1)), "column index outside"),
    "seen_ indices floats": (_tamper("seen_.indices", lambda a: a.astype(np.float32)), "array of integers"),
    "seen_ indptr decreasing": (_tamper("seen_.indptr", lambda a: _with(a, 3, a[5] + 1)), "non-decreasing"),
    "seen_ indptr short": (_tamper("seen_.indptr", lambda a: a[:-2].copy()), "indptr must be 61"),
    "seen_ indptr not from 0": (_tamper("seen_.indptr", lambda a: a + 1), "starting at 0"),
    "seen_ indptr end": (_tamper("seen_.indptr", lambda a: _with(a, -1, a[-1] - 1)), "indptr ends at"),
    "seen_ data NaN": (_tamper("seen_.data", lambda a: _with(a, 0, np.nan)), "NaN or infinite"),
    "seen_ shape wrong": (_state("seen_", {"__csr_shape__": [60, 41]}), "seen_ has shape"),
    "seen_ shape not ints": (_state("seen_", {"__csr_shape__": ["60", 40]}), "__csr_shape__"),
    "seen_ shape extra key": (_state("seen_", {"__csr_shape__": [60, 40], "x": 1}), "__csr_shape__"),
    "seen_ part missing": (_drop_entry("seen_.indices"), "incomplete"),
    "seen_ shape missing": (_state("seen_", _DROP), "has no shape"),
    # vocabularies
    "users_ duplicated": (_tamper("users_", lambda a: _with(a, 1, a[0])), "unique"),
    "users_ 2-d": (_tamper("users_", lambda a: a[:, None].copy()), "1-d array of integer or string ids"),
    "items_ floats": (_tamper("items_", lambda a: a.astype(np.float64)), "integer or string ids"),
    "users_ missing": (_drop_entry("users_"), "no users_ vocabulary"),
    "vocab kind on another array": (lambda p: _write_manifest(p, {**_manifest(p), "arrays": {
        **_manifest(p)["arrays"], "user_bias_": {**_manifest(p)["arrays"]["user_bias_"], "kind": "vocab"}}}),
        "only users_ and items_"),
    # names no model saves, and arrays that come in pairs
    "unknown array": (_tamper("evil_", lambda a: np.zeros(3, np.float32)), "not an attribute any latentrec"),
    "unknown sparse array": (lambda p: [_tamper(f"evil_.{x}", lambda a, x=x: _array(p, f"seen_.{x}"),
                                                kind=f"csr.{x}")(p) for x in ("data", "indices", "indptr")]
                             and _state("evil_", {"__csr_shape__": [60, 40]})(p), "not an attribute any"),
    "item_bias_ missing": (_drop_entry("item_bias_"), "item_bias_ is missing"),
    "item_factors_ missing": (_drop_entry("item_factors_"), "item_factors_ is missing"),
    # scalar state
    "global_mean_ null": (_state("global_mean_", None), "global_mean_' must be a finite number"),
    "global_mean_ NaN": (_state("global_mean_", float("nan")), "finite number"),
    "global_mean_ string": (_state("global_mean_", "3.5"), "finite number"),
    "global_mean_ bool": (_state("global_mean_", True), "finite number"),
    "rating_scale_ reversed": (_state("rating_scale_", {"__tuple__": [5.0, 1.0]}), "low <= high"),
    "rating_scale_ one value": (_state("rating_scale_", {"__tuple__": [5.0]}), "low <= high"),
    "rating_scale_ a list": (_state("rating_scale_", [1.0, 5.0]), "rating_scale_"),
    "rating_scale_ infinite": (_state("rating_scale_", {"__tuple__": [1.0, float("inf")]}), "finite"),
    "state __class__": (_state("__class__", "os.system"), "not an attribute a saved ALS has"),
    "state method name": (_state("predict", 5), "not an attribute a saved ALS has"),
    "state unknown attribute": (_state("backdoor_", 1), "not an attribute a saved ALS has"),
    "state repeats an array": (_state("user_bias_", 1.0), "also an array"),
    "history_ not a list": (_state("history_", {"epoch": 1}), "history_"),
    "train_checksum_ number": (_state("train_checksum_", 5), "train_checksum_"),
    "best_epoch_ zero": (_state("best_epoch_", 0), "best_epoch_"),
}


@pytest.mark.parametrize("case", sorted(CONTENT_CASES))
def test_tampered_contents_are_refused_before_use(saved, case):
    """Regression (issue 16): an item_factors_ of 10 rows with a consistent checksum loaded and
    the first call died with 'double free or corruption'; state was set blindly."""
    edit, words = CONTENT_CASES[case]
    edit(saved)
    with pytest.raises(PersistError, match=words):
        lr.load_model(saved)


def test_valid_edge_cases_still_load(saved, model):
    """The checks refuse what is broken, not what is unusual: an old manifest without dtype/shape
    fields, a one-value rating scale (all ratings equal)."""
    m = _manifest(saved)
    for entry in m["arrays"].values():
        entry.pop("dtype"), entry.pop("shape")
    m["state"]["rating_scale_"] = {"__tuple__": [3.0, 3.0]}
    _write_manifest(saved, m)
    loaded = lr.load_model(saved)
    assert loaded.rating_scale_ == (3.0, 3.0)
    np.testing.assert_array_equal(loaded.item_factors_, model.item_factors_)


# ---------------------------------------------------------------- crash safety

def _litter(parent: Path, name: str = "model") -> list[str]:
    return sorted(n for n in os.listdir(parent) if n.startswith(f".{name}."))


def test_interrupted_two_rename_save_is_recovered_on_load(saved, model):
    """Regression (issue 16): SIGKILL between save()'s two renames left .tmp and .old and no model."""
    parent = saved.parent
    os.replace(saved, parent / ".model.abc123.old")
    (parent / ".model.zzz999.tmp").mkdir()  # a save killed before it wrote its manifest
    (parent / ".model.zzz999.tmp" / "arrays").mkdir()
    loaded = lr.load_model(saved)
    np.testing.assert_array_equal(loaded.user_factors_, model.user_factors_)
    assert _litter(parent) == []


def test_litter_is_removed_by_the_next_save(saved, model):
    parent = saved.parent
    for suffix in ("a1.tmp", "b2.old"):
        (parent / f".model.{suffix}").mkdir()
        (parent / f".model.{suffix}" / "junk").write_bytes(b"x" * 1000)
    (parent / ".other.c3.tmp").mkdir()  # another model's temporary folder is not ours to remove
    model.save(saved)
    assert _litter(parent) == [] and (parent / ".other.c3.tmp").exists()


def test_save_refuses_to_replace_a_folder_that_is_not_a_model(tmp_path, model):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(PersistError, match="not a latentrec model directory"):
        model.save(tmp_path / "photos")
    assert (tmp_path / "photos" / "cat.jpg").exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["atomic-exchange", "two-renames"])
def test_save_killed_at_random_points_never_loses_the_model(tmp_path, exchange, monkeypatch):
    """Regression (issue 16): kill -9 a saving process at random instants (seeded, bounded to
    ~20 s per variant): afterwards the old or the new model loads, and no litter remains after
    the next load or save. ``two-renames`` is the path taken where the OS has no atomic exchange."""
    if not exchange:
        monkeypatch.setattr(persist, "_exchange", lambda a, b: False)
    data = lr.synthetic_ratings(n_users=3000, n_items=1500, n_ratings=30000, random_state=0)
    small = ALS(n_factors=8, n_epochs=1, random_state=0).fit(data)
    large = ALS(n_factors=48, n_epochs=1, random_state=0).fit(data)
    expected = {8: small.item_factors_, 48: large.item_factors_}
    path = tmp_path / "m"
    small.save(path)
    t0 = time.perf_counter()
    large.save(path)
    save_s = time.perf_counter() - t0
    rng = random.Random(16)
    kills, deadline = 0, time.monotonic() + 20
    while kills < 40 and time.monotonic() < deadline:
        pid = os.fork()
        if pid == 0:  # the saving child: saves back and forth until killed
            try:
                while True:
                    small.save(path)
                    large.save(path)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 2.5 * save_s))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        if kills % 2:
            loaded = lr.load_model(path)  # load recovers and tidies
        else:
            small.save(path)  # the next save tidies too
            loaded = lr.load_model(path)
        np.testing.assert_array_equal(loaded.item_factors_, expected[loaded.n_factors])
        assert _litter(tmp_path, "m") == [], f"after kill {kills}"
    assert kills >= 10


# ---------------------------------------------------------------- numba's cache without a writable home

def test_loading_without_a_writable_home_or_package_folder(tmp_path, saved):
    """Regression (issue 16): loading as a user with no writable home failed with
    "cannot cache function 'cholesky_solve'". Simulated without root-only permissions: the
    package is a copy whose kernels/__pycache__ is a file, HOME and XDG_CACHE_HOME lie under a
    file, NUMBA_CACHE_DIR is unset; the cache must fall back to the temporary folder."""
    import shutil

    pkg = tmp_path / "pkg"
    shutil.copytree(SRC / "latentrec", pkg / "latentrec", ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "latentrec" / "models" / "kernels" / "__pycache__").write_text("not a folder")
    (tmp_path / "file").write_text("")
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_") and k != "XDG_CACHE_HOME"}
    env.update(HOME=str(tmp_path / "file" / "home"), XDG_CACHE_HOME=str(tmp_path / "file" / "cache"),
               PYTHONPATH=str(pkg), TMPDIR=str(tmp_path / "tmp"))
    # load (imports every kernel module of the model: where numba used to fail), predict, and
    # compile one small cached kernel so that its cache file must land in the fallback folder
    code = ("import latentrec as lr, numba, numpy as np, sys; m = lr.load_model(sys.argv[1]); "
            "m.predict(np.c_[m.users_.ids[:3], m.items_.ids[:3]]); "
            "from latentrec.models.kernels.als import first_failure; assert first_failure(np.array([4, -1])) == 4; "
            "print(numba.config.CACHE_DIR)")
    out = subprocess.run([sys.executable, "-c", code, str(saved)], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    cache = Path(out.stdout.strip())
    assert cache.parent == tmp_path / "tmp" and cache.name.startswith("latentrec-numba-")
    assert any(f.suffix == ".nbi" for f in cache.rglob("*")), "nothing was cached in the fallback folder"


def test_an_undeclared_learned_attribute_is_refused_at_save_not_at_load(tmp_path):
    # issue 13: each model declares what it persists; save refused what load would refuse, before writing
    data = lr.synthetic_ratings(40, 30, 400, random_state=0)
    model = ALS(n_factors=2, n_epochs=1).fit(data)
    model.secret_state_ = {"not": "declared"}
    with pytest.raises(lr.PersistError, match=r"ALS cannot be saved: state secret_state_ is not declared"):
        model.save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []  # no directory, no litter
    del model.secret_state_
    model.save(tmp_path / "m")
    assert lr.load_model(tmp_path / "m").get_params() == model.get_params()


def _drop_seen(path):
    for x in ("data", "indices", "indptr"):
        _drop_entry(f"seen_.{x}")(path)
    _state("seen_", _DROP)(path)


def test_a_missing_training_matrix_is_refused_only_where_the_scores_need_it(saved, tmp_path):
    # issue 13: a factor model may be saved without seen_ (save(seen=False)); EASE scores from it
    _drop_seen(saved)
    light = lr.load_model(saved)
    with pytest.raises(lr.ModelError, match="seen=interactions"):
        light.recommend(light.users_.ids[0])
    from latentrec.models import EASE

    data = lr.synthetic_implicit(40, 30, 300, random_state=0)
    EASE().fit(data).save(tmp_path / "ease")
    _drop_seen(tmp_path / "ease")
    with pytest.raises(PersistError, match="no seen_"):
        lr.load_model(tmp_path / "ease")
