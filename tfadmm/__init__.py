"""tfadmm: progressive ADMM pruning and quantization for Keras 3."""

from tfadmm import data, models
from tfadmm.admm_model import ADMMModel
from tfadmm.constraints import Chain, Constraint, NMSparsity, Sparsity
from tfadmm.kernel_state import KernelState
from tfadmm.version import __version__
from tfadmm.wrapping import project, strip, wrap

__all__ = [
    "ADMMModel",
    "Chain",
    "Constraint",
    "KernelState",
    "NMSparsity",
    "Sparsity",
    "__version__",
    "data",
    "models",
    "project",
    "strip",
    "wrap",
]
