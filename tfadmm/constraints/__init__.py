"""Constraint sets and their projections: what a compressed kernel must satisfy."""

from tfadmm.constraints.base import Chain, Constraint, Projection, get
from tfadmm.constraints.nm_sparsity import NMSparsity, project_n_m
from tfadmm.constraints.quantization import (
    Binary,
    PowerOfTwo,
    Quantize,
    Quantizer,
    Ternary,
    project_binary,
    project_power_of_two,
    project_quantize,
    project_ternary,
)
from tfadmm.constraints.sparsity import Sparsity, project_sparsity, top_k_mask
from tfadmm.constraints.structured import ChannelSparsity, FilterSparsity, project_slices

__all__ = [
    "Binary",
    "Chain",
    "ChannelSparsity",
    "Constraint",
    "FilterSparsity",
    "NMSparsity",
    "PowerOfTwo",
    "Projection",
    "Quantize",
    "Quantizer",
    "Sparsity",
    "Ternary",
    "get",
    "project_binary",
    "project_n_m",
    "project_power_of_two",
    "project_slices",
    "project_quantize",
    "project_sparsity",
    "project_ternary",
    "top_k_mask",
]
