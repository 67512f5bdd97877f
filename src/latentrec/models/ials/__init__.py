"""Implicit-feedback models: ImplicitALS (WRMF), BPR and EASE.

The classes live in submodules but report this package as their module, which
is the name the registry (and so every saved model) knows them by.
"""

from __future__ import annotations

from .bpr import BPR
from .ease import EASE, ease_memory_gb
from .wrmf import ImplicitALS

for _cls in (ImplicitALS, BPR, EASE):
    _cls.__module__ = __name__
del _cls

__all__ = ["ImplicitALS", "BPR", "EASE", "ease_memory_gb"]
