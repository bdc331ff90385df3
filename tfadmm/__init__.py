"""tfadmm: progressive ADMM pruning and quantization for Keras 3."""

from tfadmm import callbacks, data, models
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
from tfadmm.export import evaluate_tflite, export
from tfadmm.kernel_state import KernelState
from tfadmm.mapping import fully_mapped, map_progressively
from tfadmm.report import CompressionReport, build_report
from tfadmm.version import __version__
from tfadmm.wrapping import project, strip, wrap

__all__ = [
    "ADMMModel",
    "Binary",
    "Chain",
    "CompressionReport",
    "Constraint",
    "KernelState",
    "NMSparsity",
    "PowerOfTwo",
    "Quantize",
    "Sparsity",
    "Ternary",
    "__version__",
    "build_report",
    "callbacks",
    "data",
    "evaluate_tflite",
    "export",
    "fully_mapped",
    "map_progressively",
    "models",
    "project",
    "strip",
    "wrap",
]
