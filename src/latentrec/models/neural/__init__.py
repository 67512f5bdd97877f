"""Neural models in PyTorch (extra ``[neural]``): DotProduct, BiasedDotProduct, MLP, NeuMF, MultVAE.

Importing this package does not import torch; ``fit`` does, and raises
:class:`latentrec.errors.MissingDependencyError` naming the ``[neural]`` extra when
torch is absent. A fitted (or loaded) model predicts with NumPy alone.
"""

from __future__ import annotations

from .explicit import MLP, BiasedDotProduct, DotProduct
from .multvae import MultVAE
from .neumf import NeuMF

__all__ = ["DotProduct", "BiasedDotProduct", "MLP", "NeuMF", "MultVAE"]
