"""Models. Import a model from here (``from latentrec.models import BiasedMF``); modules load on first use.

The folders say what is inside: ``base.py`` (the contract: Recommender and the family bases
EmbeddingModel, FactorModel, ItemWeightsModel), ``baselines.py``, ``factorization/``,
``neighbours/``, ``linear/`` (item-item autoencoders), ``bayesian/``, ``neural/``, ``ensemble.py``;
``kernels/`` holds the numba kernels. Module paths of the earlier layout (``latentrec.models.ials``,
``.mf``, ``.svd``, ``.knn``, ``.graph``) still import, with a DeprecationWarning, for one release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

from .. import registry as _registry
from .base import Recommender

#: class name -> module, read off the one model catalogue (latentrec.registry)
_LAZY = {e.cls: e.module.removeprefix(__name__ + ".") for e in _registry.entries() if e.module.startswith(__name__ + ".")}

__all__ = ["Recommender", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: modules of the earlier layout -> where their contents live now (one name, or several merged)
MOVED: dict[str, str | tuple[str, ...]] = {
    f"{__name__}.mf": f"{__name__}.factorization.mf",
    f"{__name__}.svd": f"{__name__}.factorization.svd",
    f"{__name__}.knn": f"{__name__}.neighbours.knn",
    f"{__name__}.graph": f"{__name__}.neighbours.graph",
    f"{__name__}.ials": (f"{__name__}.factorization", f"{__name__}.linear"),
    f"{__name__}.ials.wrmf": f"{__name__}.factorization.wrmf",
    f"{__name__}.ials.bpr": f"{__name__}.factorization.bpr",
    f"{__name__}.ials.ease": f"{__name__}.linear.ease",
    f"{__name__}.ials._common": (f"{__name__}._feedback", f"{__name__}.base"),
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module(s) it moved to, with a DeprecationWarning
    attributed to the importing code (so scripts see it under Python's default filters)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        package = any(k.startswith(fullname + ".") for k in MOVED)
        return importlib.util.spec_from_loader(fullname, self, is_package=package)

    def create_module(self, spec):
        targets = MOVED[spec.name]
        targets = (targets,) if isinstance(targets, str) else targets
        level, frame = 2, sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                     or frame.f_code.co_filename == __file__):
            frame, level = frame.f_back, level + 1
        warnings.warn(f"{spec.name} moved to {' and '.join(targets)}; the old path works until the next "
                      f"release (import models from latentrec or latentrec.models)", DeprecationWarning,
                      stacklevel=level)
        module = types.ModuleType(spec.name, f"Deprecated alias of {', '.join(targets)}.")
        for name in targets:
            module.__dict__.update({k: v for k, v in vars(importlib.import_module(name)).items()
                                    if not k.startswith("__")})
        return module

    def exec_module(self, module):
        pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
