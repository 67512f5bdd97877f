"""Bayesian factorization machines trained by Gibbs sampling (:class:`BayesianFM`)."""

from .estimator import BayesianFM

__all__ = ["BayesianFM"]
