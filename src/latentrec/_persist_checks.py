"""Checks a loaded model's arrays and state must pass before any attribute is set.

:func:`assemble` turns the arrays and ``state`` entries read from a saved model
directory into the attributes of the model, refusing (with a
:class:`~latentrec.errors.PersistError` naming the field) anything a kernel
could trip over: arrays whose shapes disagree with the vocabularies or with each
other, CSR matrices whose index arrays point outside the matrix, non-finite
floats, attribute names no saved model has (``__class__``, ``predict``, ...),
and scalar state of the wrong type or out of range (``global_mean_: null``, a
reversed ``rating_scale_``).

The tables below cover the attributes the shared base class and the classic
models save. A model with attributes of its own declares them on its class:
``_persisted_arrays`` (name -> (dtype kind, dims), as :data:`DENSE_RULES`),
``_persisted_sparse`` (name -> (rows, cols), as :data:`CSR_RULES`) and
``_persisted_state`` (name -> (check, what is expected), as :data:`STATE_RULES`)
and ``_persisted_patterns`` / ``_persisted_sparse_patterns`` / ``_persisted_state_patterns`` ((regular expression,
rule) pairs, for families of names such as a network's layers).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

from .data.vocab import Vocabulary
from .errors import DataError, PersistError

# ---------------------------------------------------------------- scalar state


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_at_least(low: int) -> Callable:
    return lambda v: type(v) is int and v >= low


def _scale(v) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and all(map(_finite, v)) and v[0] <= v[1]


def any_json(v) -> bool:
    """Any value JSON can hold (for state whose meaning the model checks itself)."""
    return v is None or isinstance(v, (int, float, str, list, dict, tuple))


def _records(v) -> bool:
    return isinstance(v, list) and all(isinstance(r, dict) for r in v)


#: every scalar attribute a saved model may carry: name -> (check, what is expected)
STATE_RULES: dict[str, tuple[Callable, str]] = {
    "global_mean_": (_finite, "a finite number"),
    "rating_scale_": (_scale, "a pair [low, high] of finite numbers with low <= high"),
    "train_checksum_": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "history_": (_records, "a list of objects (one per epoch)"),
    "pretrain_history_": (_records, "a list of objects (one per epoch)"),
    "best_epoch_": (_int_at_least(1), "a positive integer"),
    "eval_unknown_": (_int_at_least(0), "a non-negative integer"),
    "device_": (lambda v: isinstance(v, str), "a string"),
}

# ---------------------------------------------------------------- arrays

#: dense arrays with a fixed layout: name -> (dtype kind, dims); a dim is "users", "items" or None (any)
DENSE_RULES: dict[str, tuple[str, tuple]] = {
    "item_popularity_": ("int", ("items",)),
    "item_weights_": ("float", ("items", "items")),
    "implicit_factors_": ("float", ("items", None)),
    "singular_values_": ("float", (None,)),
}
#: neural network layers: any float array of at most two dimensions
_LAYER = re.compile(r"(mlp_[wb]\d+|output_[wb])_\Z")
#: arrays whose number of columns must agree (the two sides of one dot product)
PAIRS = (("user_factors_", "item_factors_"), ("user_mlp_factors_", "item_mlp_factors_"),
         ("user_own_factors_", "item_factors_"), ("implicit_factors_", "item_factors_"))
#: arrays that only make sense together
TOGETHER = (("user_factors_", "item_factors_"), ("user_bias_", "item_bias_"))
#: sparse matrices a model may carry: name -> (rows, cols); "similarity" is users or items (KNN side)
CSR_RULES = {"seen_": ("users", "items"), "residuals_": ("users", "items"),
             "similarity_": ("similarity", "similarity")}
REQUIRED = ("users_", "items_", "item_popularity_", "seen_")


def _dense_rule(name: str, cls=None) -> tuple[str, tuple] | None:
    own = getattr(cls, "_persisted_arrays", {})
    if name in own:
        return own[name]
    for pattern, rule in getattr(cls, "_persisted_patterns", ()):
        if re.fullmatch(pattern, name):
            return rule
    if name in DENSE_RULES:
        return DENSE_RULES[name]
    for prefix, side in (("user_", "users"), ("item_", "items")):
        if name.startswith(prefix):
            if name.endswith("factors_"):
                return "float", (side, None)
            return "float", (side,)
    if _LAYER.match(name):
        return "float", ()
    return None


def _all_finite(arr: np.ndarray) -> bool:
    if arr.dtype.itemsize <= 4:  # a float64 sum of float32 values cannot overflow: finite sum <=> all finite
        return bool(np.isfinite(np.sum(arr, dtype=np.float64)))
    return bool(np.isfinite(arr).all())


def _check_dense(name: str, arr: np.ndarray, n: dict, fail, cls=None) -> np.ndarray:
    rule = _dense_rule(name, cls)
    if rule is None:
        fail(f"array {name!r} is not an attribute any latentrec model saves")
    kind, dims = rule
    if kind == "number":  # declared by a model whose arrays of this name may be integers or floats
        kind = "int" if arr.dtype.kind in "iu" else "float"
    if kind == "int":
        if arr.dtype.kind not in "iu":
            fail(f"array {name} must hold integers, got dtype {arr.dtype}")
        if arr.size and arr.min() < 0:
            fail(f"array {name} must be non-negative")
    else:
        if arr.dtype.kind != "f":
            fail(f"array {name} must hold floats, got dtype {arr.dtype}")
        if not _all_finite(arr):
            fail(f"array {name} holds NaN or infinite values")
    if not dims:
        if arr.ndim > 2:
            fail(f"array {name} must have at most 2 dimensions, got shape {arr.shape}")
        return arr
    if arr.ndim != len(dims):
        fail(f"array {name} must have {len(dims)} dimension(s), got shape {arr.shape}")
    for axis, dim in enumerate(dims):
        if dim is not None and arr.shape[axis] != n[dim]:
            fail(f"array {name} has {arr.shape[axis]} along axis {axis} but the model has {n[dim]} {dim}")
    return arr


def _csr_rule(name: str, cls=None):
    rule = {**CSR_RULES, **getattr(cls, "_persisted_sparse", {})}.get(name)
    for pattern, pattern_rule in getattr(cls, "_persisted_sparse_patterns", ()) if rule is None else ():
        if re.fullmatch(pattern, name):
            rule = pattern_rule
    return rule


def _state_rule(name: str, cls):
    rule = {**STATE_RULES, **getattr(cls, "_persisted_state", {})}.get(name)
    for pattern, pattern_rule in getattr(cls, "_persisted_state_patterns", ()) if rule is None else ():
        if re.fullmatch(pattern, name):
            rule = pattern_rule
    return None if hasattr(cls, name) else rule


def undeclared(cls, arrays, sparse, state) -> list[str]:
    """The attribute names a model of ``cls`` is about to save that no table declares (what
    :func:`assemble` would refuse at load): ``save`` checks this before writing anything."""
    return ([f"array {n}" for n in arrays if _dense_rule(n, cls) is None]
            + [f"sparse array {n}" for n in sparse if _csr_rule(n, cls) is None]
            + [f"state {n}" for n in state if _state_rule(n, cls) is None])


def _check_csr(name: str, marker, parts: dict, n: dict, fail, cls=None) -> sp.csr_matrix:
    rule = _csr_rule(name, cls)
    if rule is None:
        fail(f"sparse array {name!r} is not an attribute any latentrec model saves")
    if set(marker) != {"__csr_shape__"}:
        fail(f"field 'state.{name}' must be {{'__csr_shape__': [rows, cols]}}")
    shape = marker["__csr_shape__"]
    if not (isinstance(shape, list) and len(shape) == 2 and all(type(v) is int and v >= 0 for v in shape)):
        fail(f"field 'state.{name}.__csr_shape__' must be two non-negative integers, got {shape!r}")
    want = tuple(n[d] for d in rule)
    if tuple(shape) != want:
        fail(f"sparse array {name} has shape {tuple(shape)} but the model needs {want}")
    if parts is None or set(parts) != {"data", "indices", "indptr"}:
        fail(f"sparse array {name} is incomplete (needs data, indices and indptr)")
    data, indices, indptr = parts["data"], parts["indices"], parts["indptr"]
    for part, arr, kinds in (("data", data, "f"), ("indices", indices, "iu"), ("indptr", indptr, "iu")):
        if arr.ndim != 1 or arr.dtype.kind not in kinds:
            fail(f"array {name}.{part} must be a 1-d array of {'floats' if kinds == 'f' else 'integers'}, "
                 f"got {arr.dtype} of shape {arr.shape}")
    if len(indptr) != shape[0] + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        fail(f"array {name}.indptr must be {shape[0] + 1} non-decreasing offsets starting at 0")
    if indptr[-1] != len(indices) or len(indices) != len(data):
        fail(f"sparse array {name}: indptr ends at {indptr[-1]} but there are {len(indices)} indices and "
             f"{len(data)} values")
    if len(indices) and (indices.min() < 0 or indices.max() >= shape[1]):
        fail(f"array {name}.indices has a column index outside [0, {shape[1]})")
    if not _all_finite(data):
        fail(f"array {name}.data holds NaN or infinite values")
    return sp.csr_matrix((data, indices, indptr), shape=tuple(shape))


def assemble(path: Path, cls, arrays: dict[str, tuple[str, np.ndarray]], state: dict, unjson) -> dict:
    """The checked attributes (name -> value) of a model of class ``cls`` read from ``path``."""
    def fail(message: str):
        raise PersistError(f"{path}: {message}")

    out: dict = {}
    for side in ("users_", "items_"):
        kind, ids = arrays.get(side, (None, None))
        if kind != "vocab":
            fail(f"the manifest's field 'arrays' has no {side} vocabulary")
        if ids.ndim != 1 or ids.dtype.kind not in "iuU":
            fail(f"{side} must be a 1-d array of integer or string ids, got {ids.dtype} of shape {ids.shape}")
        try:
            out[side] = Vocabulary(ids)
        except DataError as exc:
            fail(f"{side}: {exc}")
    n = {"users": len(out["users_"]), "items": len(out["items_"])}
    n["similarity"] = n["users"] if getattr(cls, "_user_based", False) else n["items"]
    csr_parts: dict[str, dict] = {}
    for name, (kind, arr) in arrays.items():
        if kind == "vocab":
            if name not in out:
                fail(f"{name} is stored as a vocabulary; only users_ and items_ are")
        elif kind == "array":
            out[name] = _check_dense(name, arr, n, fail, cls)
        else:
            base, part = name.rsplit(".", 1)
            csr_parts.setdefault(base, {})[part] = arr
    for name, value in state.items():
        if name in out:
            fail(f"field 'state' repeats {name!r}, which is also an array")
        if isinstance(value, dict) and "__csr_shape__" in value:
            out[name] = _check_csr(name, value, csr_parts.pop(name, None), n, fail, cls)
            continue
        rule = _state_rule(name, cls)
        if rule is None:
            fail(f"field 'state' has {name[:80]!r}, which is not an attribute a saved {cls.__name__} has")
        value = unjson(value)
        check, expected = rule
        if not check(value):
            fail(f"field 'state.{name}' must be {expected}, got {str(value)[:80]}")
        out[name] = value
    if csr_parts:
        fail(f"sparse array {sorted(csr_parts)[0]} has no shape in the manifest's field 'state'")
    for a, b in PAIRS:
        if a in out and b in out and out[a].shape[1] != out[b].shape[1]:
            fail(f"arrays {a} and {b} must have the same number of columns, got {out[a].shape[1]} "
                 f"and {out[b].shape[1]}")
    for a, b in TOGETHER:
        if (a in out) != (b in out):
            fail(f"array {b if a in out else a} is missing (it comes with {a if a in out else b})")
    for name in REQUIRED:
        if name == "seen_" and not getattr(cls, "_scores_read_seen", True):
            continue  # saved with save(seen=False): recommend then takes the history as seen=
        if name not in out:
            fail(f"the manifest has no {name}")
    return out
