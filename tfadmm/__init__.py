"""tfadmm: progressive ADMM pruning and quantization for Keras 3."""

from tfadmm import callbacks, data, models
from tfadmm.admm_model import ADMMModel
from tfadmm.constraints import Chain, Constraint, NMSparsity, Sparsity
from tfadmm.export import evaluate_tflite, export
from tfadmm.kernel_state import KernelState
from tfadmm.report import CompressionReport, build_report
from tfadmm.version import __version__
from tfadmm.wrapping import project, strip, wrap

__all__ = [
    "ADMMModel",
    "Chain",
    "CompressionReport",
    "Constraint",
    "KernelState",
    "NMSparsity",
    "Sparsity",
    "__version__",
    "build_report",
    "callbacks",
    "data",
    "evaluate_tflite",
    "export",
    "models",
    "project",
    "strip",
    "wrap",
]
