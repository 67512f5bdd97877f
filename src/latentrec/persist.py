"""Save and load models as a versioned directory of .npy arrays + JSON.

Layout of a saved model directory::

    manifest.json     format version, class, params, versions, checksums, scalar state
    arrays/NAME.npy   every learned array (allow_pickle=False on load)
    item_metadata.json  titles/years/genres/links when the training data had them

Loading never executes code: the class is looked up in :mod:`latentrec.registry`
by name, arrays are read with ``allow_pickle=False`` and checked against the
sha256 recorded in the manifest; before any attribute is set, every array is
checked against its manifest entry and against the model's vocabularies (shapes,
dtypes, CSR structure, finiteness) and every scalar state entry against a table
of known attribute names, so a tampered directory gives a :class:`PersistError`
naming the field instead of a crash in a kernel. Array files must be plain files
inside the directory (no symbolic link, FIFO or device is ever opened).

Saving writes a temporary sibling directory and swaps it into place (an atomic
exchange where the OS has one), so at every instant the path holds either the
old or the new model; litter left by an interrupted save is removed (and a model
left only in it recovered) by the next save or load of that path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import io
import json
import os
import platform
import re
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .__about__ import __version__
from .data.vocab import Vocabulary
from ._persist_checks import assemble
from .registry import name_of
from .errors import ModelError, PersistError

FORMAT = "latentrec-model"
FORMAT_VERSION = 1
#: attribute names never saved (caches, callbacks)
_SKIP = {"unknown_counts_"}  # written by partial_fit_users/items only
#: the largest manifest.json / item_metadata.json read (a guard against a file that never ends)
_MAX_JSON_BYTES = 256 * 2**20
#: the format versions this latentrec reads
_READABLE = (1,)


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


# ---------------------------------------------------------------- saving


def _write_model(model, tmp: Path, skip=()) -> None:
    """Write every file of ``model`` (but the attributes in ``skip``) into the fresh directory ``tmp``;
    manifest.json last."""
    (tmp / "arrays").mkdir()
    arrays, state = {}, {}
    for name, value in sorted(vars(model).items()):
        if not name.endswith("_") or name.startswith("_") or name in _SKIP or name in skip or value is None:
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
                kept = extra(name, value)  # None: the model rebuilds this attribute at load (_build_caches)
                if kept is not None:
                    state[name] = kept
    from ._persist_checks import undeclared

    sparse = [n for n, v in state.items() if isinstance(v, dict) and "__csr_shape__" in v]
    missing = undeclared(type(model), [n for n, (kind, _) in arrays.items() if kind == "array"], sparse,
                         [n for n in state if n not in sparse])
    if missing:  # refused now rather than written into a directory that load would refuse
        raise PersistError(f"{type(model).__name__} cannot be saved: {', '.join(missing)} is not declared; a model "
                           "declares what it saves beyond the shared attributes in _persisted_arrays, "
                           "_persisted_sparse or _persisted_state (see latentrec._persist_checks)")
    checksums = {}
    for name, (kind, arr) in arrays.items():
        buf = io.BytesIO()
        arr = np.ascontiguousarray(arr)
        np.save(buf, arr, allow_pickle=False)
        data = buf.getvalue()
        (tmp / "arrays" / f"{name}.npy").write_bytes(data)
        checksums[name] = {"kind": kind, "sha256": hashlib.sha256(data).hexdigest(),
                           "dtype": arr.dtype.str, "shape": list(arr.shape)}
    params = {k: _jsonable(v) for k, v in model.get_params(deep=False).items()}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": name_of(model),  # the catalogue name: modules may move, names stay
        "params": params,
        "state": state,
        "arrays": checksums,
        "train_checksum": getattr(model, "train_checksum_", None),
        "versions": _versions(),
    }
    # written under another name and renamed: a directory with manifest.json is always complete
    part = tmp / "manifest.json.part"
    part.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(part, tmp / "manifest.json")


def save_model(model, path, *, seen: bool = True) -> None:
    """Write ``model`` to the directory ``path``, replacing an existing model crash-safely.

    At every instant ``path`` holds either the previous model or the new one
    (the new directory is swapped in with one atomic exchange where the OS has
    it, Linux's ``renameat2``; elsewhere an interruption between the two renames
    is repaired by the next save or load). Temporary directories left by earlier
    interrupted saves of the same path are removed first. ``seen=False`` leaves the
    training matrix out (see :meth:`Recommender.save`).
    """
    model._check_fitted()
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PersistError(f"cannot write a model under {parent}: {exc.strerror or exc}") from exc
    with _locked(parent):
        _clean(path)
        if os.path.lexists(path) and not (path / "manifest.json").is_file():
            raise PersistError(f"{path} exists and is not a latentrec model directory; refusing to replace it")
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
        except OSError as exc:
            raise PersistError(f"cannot write a model under {parent}: {exc.strerror or exc}") from exc
        old = None
        try:
            _write_model(model, tmp, skip=() if seen else ("seen_",))
            if not os.path.lexists(path):
                os.replace(tmp, path)
            elif _exchange(tmp, path):
                shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous model
            else:
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
                os.rmdir(old)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            if old is not None and old.exists() and not os.path.lexists(path):
                os.replace(old, path)
            shutil.rmtree(tmp, ignore_errors=True)
            raise


# ---------------------------------------------------------------- crash safety


def _litter(path: Path) -> list[Path]:
    """Temporary siblings (``.NAME.*.tmp`` / ``.NAME.*.old``) left by interrupted saves of ``path``."""
    parent = path.parent if str(path.parent) else Path(".")
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    pattern = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]+\.(tmp|old)\Z")
    return [parent / name for name in names if pattern.match(name)]


def _clean(path: Path) -> None:
    """Recover a model an interrupted save left only in a temporary sibling, then remove the litter.

    The caller holds :func:`_locked` on the parent, so no save is in progress.
    """
    litter = _litter(path)
    if not litter:
        return
    if not os.path.lexists(path):
        # a .tmp holding manifest.json is the complete new model, a .old the complete previous one
        complete = [p for p in litter if (p / "manifest.json").is_file()]
        complete.sort(key=lambda p: (p.suffix == ".tmp", p.stat().st_mtime), reverse=True)
        if complete:
            with contextlib.suppress(OSError):
                os.replace(complete[0], path)
    for p in _litter(path):
        shutil.rmtree(p, ignore_errors=True)


def _tidy(path: Path) -> None:
    """:func:`_clean` under the parent's lock, when there is anything to clean (load's entry)."""
    if _litter(path):
        with _locked(path.parent if str(path.parent) else Path(".")):
            _clean(path)


@contextlib.contextmanager
def _locked(parent: Path):
    """Hold an exclusive ``flock`` on the parent directory: saves and clean-ups of models in
    one directory run one at a time, so a clean-up never removes the files of a running save."""
    try:
        import fcntl

        fd = os.open(parent, os.O_RDONLY)
    except (ImportError, OSError):  # no flock (Windows) or an unreadable directory: no lock
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


_RENAMEAT2 = []


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` atomically (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the OS or the file system cannot, so the caller falls back to two renames.
    """
    if not _RENAMEAT2:
        try:
            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
        except (AttributeError, OSError, TypeError):
            fn = None
        _RENAMEAT2.append(fn)
    fn = _RENAMEAT2[0]
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


# ---------------------------------------------------------------- reading files safely


def _read_plain(path: Path, what: str, limit: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file (never a symbolic link, FIFO or device)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise PersistError(f"{what} is missing") from None
    except OSError as exc:
        raise PersistError(f"{what} is unreadable: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise PersistError(f"{what} is a symbolic link; a saved model holds only plain files")
    if not stat.S_ISREG(st.st_mode):
        raise PersistError(f"{what} is not a regular file (a FIFO, device or directory); "
                           "a saved model holds only plain files")
    if limit is not None and st.st_size > limit:
        raise PersistError(f"{what} is {st.st_size} bytes, more than the {limit} a model file may have")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise PersistError(f"{what} is unreadable: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # replaced between lstat and open
            raise PersistError(f"{what} is not a regular file; a saved model holds only plain files")
        return fh.read()


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def read_manifest(path) -> dict:
    """The checked manifest of the model directory ``path`` (every field's type verified).

    Raises
    ------
    PersistError
        When the directory is not a model, the manifest is not valid JSON, a
        field is missing or of the wrong type, or the format version is unknown.
    """
    path = Path(path)
    _tidy(path)
    mpath = path / "manifest.json"
    if not os.path.lexists(mpath):
        raise PersistError(f"{path} is not a saved latentrec model: {mpath.name} is missing")
    raw = _read_plain(mpath, f"{path}: {mpath.name}", _MAX_JSON_BYTES)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PersistError(f"{mpath} is corrupted: {exc}") from exc
    if not isinstance(manifest, dict):
        raise PersistError(f"{mpath} must hold a JSON object, got {_json_type(manifest)}")
    if manifest.get("format") != FORMAT:
        raise PersistError(f"{mpath} is not a latentrec model manifest (field 'format' is not {FORMAT!r})")
    version = manifest.get("format_version")
    if type(version) is not int or version < 1:
        raise PersistError(f"{mpath}: field 'format_version' must be a positive integer, got {version!r}")
    if version not in _READABLE:
        raise PersistError(f"{path} was saved in model format {version!r}; this latentrec "
                           f"({__version__}) reads formats up to {FORMAT_VERSION}: upgrade latentrec")
    if "model" not in manifest and "class" not in manifest:
        raise PersistError(f"{mpath}: field 'model' is missing (the model's catalogue name, e.g. 'biased-mf')")
    name_field = "model" if "model" in manifest else "class"  # "class": saved before catalogue names
    for field, kind in ((name_field, str), ("params", dict), ("state", dict), ("arrays", dict)):
        if field not in manifest:
            raise PersistError(f"{mpath}: field {field!r} is missing")
        if not isinstance(manifest[field], kind):
            raise PersistError(f"{mpath}: field {field!r} must be {_json_type(kind())}, "
                               f"got {_json_type(manifest[field])}")
    return manifest


# ---------------------------------------------------------------- loading


def load_model(path):
    """Load a model directory written by :func:`save_model`.

    Every array is checked against the manifest and the model's vocabularies
    before it is used; see ``docs/robustness.md`` ("Saved models") for the list.

    Raises
    ------
    PersistError
        Naming the file or manifest field at fault.
    """
    from .registry import class_by_qualname, model_class

    path = Path(path)
    manifest = read_manifest(path)
    field = "model" if "model" in manifest else "class"
    try:
        cls = model_class(manifest["model"]) if field == "model" else class_by_qualname(manifest["class"])
    except ModelError as exc:  # not a registered model; an import failure (a missing extra) is its own message
        raise PersistError(f"{path}: field {field!r}: {exc}") from exc
    model = _instantiate(cls, manifest["params"], path)
    arrays = _read_arrays(path, manifest["arrays"])
    for name, value in assemble(path, cls, arrays, manifest["state"], _unjson).items():
        setattr(model, name, value)
    meta_path = path / "item_metadata.json"
    model.item_metadata_ = None
    if os.path.lexists(meta_path):
        raw = _read_plain(meta_path, f"{path}: {meta_path.name}", _MAX_JSON_BYTES)
        try:
            model.item_metadata_ = pd.read_json(io.StringIO(raw.decode("utf-8")), orient="split")
        except (ValueError, UnicodeDecodeError) as exc:
            raise PersistError(f"{meta_path} is corrupted: {exc}") from exc
    model._build_caches()
    return model


def _instantiate(cls, params: dict, path: Path):
    allowed = set(cls._get_param_names())
    for name in params:
        if name not in allowed:
            raise PersistError(f"{path}: field 'params' has {name[:80]!r}, which {cls.__name__} does not take")
    model = cls(**{k: _unjson(v) for k, v in params.items()})
    try:
        model._validate_params()
    except ModelError as exc:
        raise PersistError(f"{path}: field 'params': {exc}") from exc
    return model


_ARRAY_NAME = re.compile(r"([a-z][a-z0-9_]*_)(?:\.(data|indices|indptr))?\Z")
_SHA = re.compile(r"[0-9a-f]{64}\Z")


def _read_arrays(path: Path, entries: dict) -> dict[str, tuple[str, np.ndarray]]:
    """Read and checksum every array the manifest lists; names must be plain attribute names."""
    mpath = path / "manifest.json"
    adir = path / "arrays"
    if entries:
        try:
            st = os.lstat(adir)
        except OSError:
            raise PersistError(f"{path}: the arrays/ folder is missing") from None
        if not stat.S_ISDIR(st.st_mode):
            raise PersistError(f"{path}: arrays/ is not a plain folder (a symbolic link or a file)")
    out = {}
    for name, info in entries.items():
        match = _ARRAY_NAME.match(name)
        if match is None:
            raise PersistError(f"{mpath}: field 'arrays' has an entry named {name[:80]!r}; array names are "
                               "attribute names such as 'user_factors_' (lowercase, ending in '_')")
        if not isinstance(info, dict):
            raise PersistError(f"{mpath}: field 'arrays.{name}' must be an object, got {_json_type(info)}")
        kind, sha = info.get("kind"), info.get("sha256")
        part = match.group(2)
        expected = ("csr." + part,) if part else ("vocab", "array")
        if kind not in expected:
            raise PersistError(f"{mpath}: field 'arrays.{name}.kind' must be one of {list(expected)}, got {kind!r}")
        if not isinstance(sha, str) or not _SHA.match(sha):
            raise PersistError(f"{mpath}: field 'arrays.{name}.sha256' must be 64 hexadecimal digits")
        apath = adir / f"{name}.npy"
        data = _read_plain(apath, f"{path}: array file {apath.name}")
        if hashlib.sha256(data).hexdigest() != sha:
            raise PersistError(f"{path}: array file {apath.name} is corrupted (checksum mismatch)")
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise PersistError(f"{path}: array file {apath.name} is not a plain array: {exc}") from exc
        if not isinstance(arr, np.ndarray):
            raise PersistError(f"{path}: array file {apath.name} is not a plain array")
        if "dtype" in info and info["dtype"] != arr.dtype.str:
            raise PersistError(f"{path}: array file {apath.name} holds {arr.dtype.str}, the manifest says "
                               f"{info['dtype']!r}")
        if "shape" in info and info["shape"] != list(arr.shape):
            raise PersistError(f"{path}: array file {apath.name} has shape {list(arr.shape)}, the manifest "
                               f"says {info['shape']!r}")
        out[name] = (kind, arr)
    return out
