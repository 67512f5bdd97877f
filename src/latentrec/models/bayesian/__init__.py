"""Bayesian factorization machines trained by Gibbs sampling (:class:`BayesianFM`).

The class lives in a submodule but reports this package as its module, which is
the name the registry (and so every saved model) knows it by.
"""

from .estimator import BayesianFM

BayesianFM.__module__ = __name__

__all__ = ["BayesianFM"]
