"""Constraint sets and their projections: what a compressed kernel must satisfy."""

from tfadmm.constraints.base import Chain, Constraint, Projection
from tfadmm.constraints.nm_sparsity import NMSparsity, project_n_m
from tfadmm.constraints.registry import get
from tfadmm.constraints.sparsity import Sparsity, project_sparsity, top_k_mask

__all__ = [
    "Chain",
    "Constraint",
    "NMSparsity",
    "Projection",
    "Sparsity",
    "get",
    "project_n_m",
    "project_sparsity",
    "top_k_mask",
]
