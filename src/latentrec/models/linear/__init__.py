"""Linear item-item autoencoders, scores s_u = x_u W (:class:`~latentrec.models.base.ItemWeightsModel`):
EASE (ease.py, Steck 2019), the dropout-penalised EDLAE and DLAE (dlae.py, Steck 2020) and
SparseEASE (sparse_ease.py) for catalogues too large for a dense item x item matrix."""

from __future__ import annotations

from .dlae import DLAE, EDLAE
from .ease import EASE, ease_memory_gb
from .sparse_ease import SparseEASE

__all__ = ["EASE", "EDLAE", "DLAE", "SparseEASE", "ease_memory_gb"]
