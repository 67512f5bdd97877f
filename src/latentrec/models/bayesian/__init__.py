"""Bayesian factorization machines trained by Gibbs sampling (:class:`BayesianFM`, estimator.py)."""

from .estimator import BayesianFM

__all__ = ["BayesianFM"]
