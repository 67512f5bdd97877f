"""Models. Import a model from here (``from latentrec.models import BiasedMF``); modules load on first use."""

from __future__ import annotations

import importlib

from .. import registry as _registry
from .base import Recommender

#: class name -> module, read off the one model catalogue (latentrec.registry)
_LAZY = {e.cls: e.module.removeprefix(__name__ + ".") for e in _registry.entries() if e.module.startswith(__name__ + ".")}

__all__ = ["Recommender", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
