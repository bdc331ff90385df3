"""tfadmm: progressive ADMM pruning and quantization for Keras 3."""

from tfadmm.admm_model import ADMMModel
from tfadmm.constraints import (
    Binary,
    Chain,
    Constraint,
    NMSparsity,
    PowerOfTwo,
    Quantize,
    Sparsity,
    Ternary,
)
from tfadmm.kernel_state import KernelState
from tfadmm.mapping import fully_mapped, map_progressively
from tfadmm.version import __version__
from tfadmm.wrapping import project, strip, wrap

__all__ = [
    "ADMMModel",
    "Binary",
    "Chain",
    "Constraint",
    "KernelState",
    "NMSparsity",
    "PowerOfTwo",
    "Quantize",
    "Sparsity",
    "Ternary",
    "__version__",
    "fully_mapped",
    "map_progressively",
    "project",
    "strip",
    "wrap",
]
