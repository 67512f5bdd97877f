"""Latent-factor models: s_ui = p_u · q_i (+ μ + b_u + b_i), all :class:`~latentrec.models.base.FactorModel`.

Ratings: BiasedMF (SGD), ALS and SVDpp (mf.py), TruncatedSVD (svd.py). Implicit feedback:
ImplicitALS (wrmf.py: WRMF with Rendle 2021's unobserved weight and frequency-scaled penalty)
and BPR (bpr.py).
"""

from __future__ import annotations

from .bpr import BPR
from .mf import ALS, SVDpp, BiasedMF
from .svd import TruncatedSVD
from .wrmf import ImplicitALS

__all__ = ["BiasedMF", "ALS", "SVDpp", "TruncatedSVD", "ImplicitALS", "BPR"]
