"""Linear item-item autoencoders beyond EASE: EDLAE and DLAE (Steck 2020).

The classes live in submodules but report this package as their module, which
is the name the registry (and so every saved model) knows them by.
"""

from __future__ import annotations

from .dlae import DLAE, EDLAE


for _cls in (EDLAE, DLAE):
    _cls.__module__ = __name__
del _cls

__all__ = ["EDLAE", "DLAE"]
