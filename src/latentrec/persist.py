"""Save and load models as a versioned directory of .npy arrays + JSON.

Layout of a saved model directory::

    manifest.json     format version, class, params, versions, checksums, scalar state
    arrays/NAME.npy   every learned array (allow_pickle=False on load)
    item_metadata.json  titles/years/genres/links when the training data had them

Loading never executes code: the class is looked up in :mod:`latentrec.registry`
by name, arrays are read with ``allow_pickle=False`` and checked against the
sha256 recorded in the manifest. Saving writes a temporary sibling directory and
renames it into place, so a crash never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .__about__ import __version__
from .data.vocab import Vocabulary
from .errors import PersistError

FORMAT = "latentrec-model"
FORMAT_VERSION = 1
#: attribute names never saved (caches, callbacks)
_SKIP = {"unknown_counts_"}


def _versions() -> dict:
    import numpy
    import scipy
    import sklearn

    return {"latentrec": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_jsonable(v) for v in value]}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(type(value).__name__)


def _unjson(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_unjson(v) for v in value["__tuple__"])
        return {k: _unjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    return value


def _id_array(ids: np.ndarray, name: str) -> np.ndarray:
    if ids.dtype.kind in "iuU":
        return ids
    if ids.dtype == object:
        if all(isinstance(v, str) for v in ids):
            return ids.astype(str)
        if all(isinstance(v, (int, np.integer)) for v in ids):
            return ids.astype(np.int64)
    raise PersistError(f"{name}: only integer or string ids can be saved, got {ids.dtype}")


def save_model(model, path) -> None:
    """Write ``model`` to the directory ``path`` atomically (replacing an existing model)."""
    model._check_fitted()
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise PersistError(f"cannot write a model under {parent}: {exc.strerror or exc}") from exc
    try:
        (tmp / "arrays").mkdir()
        arrays, state = {}, {}
        for name, value in sorted(vars(model).items()):
            if not name.endswith("_") or name.startswith("_") or name in _SKIP or value is None:
                continue
            if isinstance(value, Vocabulary):
                arrays[name] = ("vocab", _id_array(value.ids, name))
            elif isinstance(value, np.ndarray):
                if value.dtype == object:
                    raise PersistError(f"{name}: object arrays cannot be saved safely")
                arrays[name] = ("array", value)
            elif sp.issparse(value):
                csr = sp.csr_matrix(value)
                arrays[name + ".data"] = ("csr.data", csr.data)
                arrays[name + ".indices"] = ("csr.indices", csr.indices)
                arrays[name + ".indptr"] = ("csr.indptr", csr.indptr)
                state[name] = {"__csr_shape__": list(csr.shape)}
            elif isinstance(value, pd.DataFrame):
                if name != "item_metadata_":
                    raise PersistError(f"{name}: DataFrames other than item_metadata_ are not saved")
                frame = value.copy()
                frame.index = _id_array(np.asarray(frame.index), "item_metadata_ index")
                (tmp / "item_metadata.json").write_text(frame.to_json(orient="split", force_ascii=False),
                                                        encoding="utf-8")
            else:
                try:
                    state[name] = _jsonable(value)
                except TypeError as exc:
                    extra = getattr(model, "_persist_extra", None)
                    if extra is None:
                        raise PersistError(f"{type(model).__name__}.{name} of type {exc} cannot be saved") from None
                    state[name] = extra(name, value)
        checksums = {}
        for name, (kind, arr) in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
            data = buf.getvalue()
            (tmp / "arrays" / f"{name}.npy").write_bytes(data)
            checksums[name] = {"kind": kind, "sha256": hashlib.sha256(data).hexdigest()}
        params = {k: _jsonable(v) for k, v in model.get_params(deep=False).items()}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class": f"{type(model).__module__}.{type(model).__name__}",
            "params": params,
            "state": state,
            "arrays": checksums,
            "train_checksum": getattr(model, "train_checksum_", None),
            "versions": _versions(),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        old = None
        if path.exists():
            if not (path / "manifest.json").exists():
                raise PersistError(f"{path} exists and is not a latentrec model directory; refusing to replace it")
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.rmdir(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(path) -> dict:
    path = Path(path)
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise PersistError(f"{path} is not a saved latentrec model: {mpath.name} is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PersistError(f"{mpath} is corrupted: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise PersistError(f"{mpath} is not a latentrec model manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise PersistError(f"{path} was saved in model format {version!r}; this latentrec "
                           f"({__version__}) reads formats up to {FORMAT_VERSION}: upgrade latentrec")
    return manifest


def load_model(path):
    """Load a model directory written by :func:`save_model`."""
    from .registry import class_by_qualname

    path = Path(path)
    manifest = read_manifest(path)
    try:
        cls = class_by_qualname(manifest["class"])
    except Exception as exc:
        raise PersistError(f"{path}: {exc}") from exc
    params = {k: _unjson(v) for k, v in manifest["params"].items()}
    model = cls(**params)
    csr_parts: dict[str, dict] = {}
    for name, info in manifest["arrays"].items():
        apath = path / "arrays" / f"{name}.npy"
        try:
            data = apath.read_bytes()
        except OSError as exc:
            raise PersistError(f"{path}: array file {apath.name} is missing or unreadable") from exc
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise PersistError(f"{path}: array file {apath.name} is corrupted (checksum mismatch)")
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:
            raise PersistError(f"{path}: array file {apath.name} is not a plain array: {exc}") from exc
        kind = info["kind"]
        if kind == "vocab":
            setattr(model, name, Vocabulary(arr))
        elif kind == "array":
            setattr(model, name, arr)
        else:
            base, part = name.rsplit(".", 1)
            csr_parts.setdefault(base, {})[part] = arr
    for name, value in manifest["state"].items():
        if isinstance(value, dict) and "__csr_shape__" in value:
            parts = csr_parts.get(name)
            if parts is None or set(parts) != {"data", "indices", "indptr"}:
                raise PersistError(f"{path}: sparse array {name} is incomplete")
            setattr(model, name, sp.csr_matrix((parts["data"], parts["indices"], parts["indptr"]),
                                               shape=tuple(value["__csr_shape__"])))
        else:
            setattr(model, name, _unjson(value))
    meta_path = path / "item_metadata.json"
    model.item_metadata_ = None
    if meta_path.exists():
        try:
            model.item_metadata_ = pd.read_json(io.StringIO(meta_path.read_text(encoding="utf-8")), orient="split")
        except ValueError as exc:
            raise PersistError(f"{meta_path} is corrupted: {exc}") from exc
    if hasattr(model, "_after_load"):
        model._after_load()
    return model
