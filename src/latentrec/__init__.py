"""latentrec: collaborative-filtering recommenders built on latent-factor models.

The public API is re-exported here; submodules load on first use, so importing
latentrec is cheap and touches no model, network or GPU.
"""

from __future__ import annotations

from . import _threads  # first: OpenMP settings before any runtime loads (see _threads)

import importlib  # noqa: E402

del _threads

from .__about__ import __version__

_LAZY = {
    # data
    "Interactions": "latentrec.data", "Vocabulary": "latentrec.data",
    "synthetic_ratings": "latentrec.data", "synthetic_implicit": "latentrec.data",
    "load_movielens": "latentrec.data.movielens", "read_interactions": "latentrec.data.readers",
    "kcore": "latentrec.data.filters",
    # errors
    "LatentrecError": "latentrec.errors", "DataError": "latentrec.errors", "ModelError": "latentrec.errors",
    "DownloadError": "latentrec.errors", "ChecksumError": "latentrec.errors",
    "UnknownIdError": "latentrec.errors", "PersistError": "latentrec.errors",
    "MissingDependencyError": "latentrec.errors",
    # workflow
    "load_model": "latentrec.persist", "save_model": "latentrec.persist",
}
_MODELS = "latentrec.models"

_SUBMODULES = ("models", "split", "metrics", "registry", "tuning", "data", "evaluate")
__all__ = ["__version__", *_LAZY, *_SUBMODULES]


def __dir__() -> list[str]:
    """The public API (for tab completion): the lazily loaded names as well as the loaded ones."""
    return sorted({*globals(), *__all__})


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"latentrec.{name}")
    models = importlib.import_module(_MODELS)
    if name in models._LAZY:
        return getattr(models, name)
    raise AttributeError(f"module 'latentrec' has no attribute {name!r}")
