"""Data layer: Interactions, vocabularies, MovieLens, generic readers, filters, synthetic data."""

from .interactions import Interactions, as_interactions
from .synthetic import synthetic_implicit, synthetic_ratings
from .vocab import Vocabulary

__all__ = ["Interactions", "Vocabulary", "as_interactions", "synthetic_ratings", "synthetic_implicit"]
