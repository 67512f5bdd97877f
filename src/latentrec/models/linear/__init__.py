"""Linear item-item autoencoders, scores s_u = x_u W (:class:`~latentrec.models.base.ItemWeightsModel`):
EASE (ease.py, Steck 2019) and the dropout-penalised EDLAE and DLAE (dlae.py, Steck 2020)."""

from __future__ import annotations

from .dlae import DLAE, EDLAE
from .ease import EASE, ease_memory_gb

__all__ = ["EASE", "EDLAE", "DLAE", "ease_memory_gb"]
