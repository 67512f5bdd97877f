"""Models. Import a model from here (``from latentrec.models import BiasedMF``); modules load on first use."""

from __future__ import annotations

import importlib

from .base import Recommender

_LAZY = {
    "GlobalMean": "baselines", "UserMean": "baselines", "ItemMean": "baselines",
    "UserItemMean": "baselines", "Biases": "baselines", "Popularity": "baselines",
    "BiasedMF": "mf", "ALS": "mf", "SVDpp": "mf",
    "TruncatedSVD": "svd",
    "UserKNN": "knn", "ItemKNN": "knn", "ImplicitItemKNN": "knn",
    "BayesianFM": "bayesian",
    "ImplicitALS": "ials", "BPR": "ials", "EASE": "ials",
    "EDLAE": "linear", "DLAE": "linear", "RP3beta": "graph",
    "Ensemble": "ensemble",
    "DotProduct": "neural", "BiasedDotProduct": "neural", "MLP": "neural", "NeuMF": "neural", "MultVAE": "neural",
}

__all__ = ["Recommender", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
