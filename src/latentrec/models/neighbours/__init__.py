"""Neighbourhood models: UserKNN, ItemKNN (ratings) and ImplicitItemKNN (knn.py); RP3beta, a
popularity-penalised random walk over the user-item graph (graph.py)."""

from __future__ import annotations

from .graph import RP3beta
from .knn import ImplicitItemKNN, ItemKNN, UserKNN

__all__ = ["UserKNN", "ItemKNN", "ImplicitItemKNN", "RP3beta"]
