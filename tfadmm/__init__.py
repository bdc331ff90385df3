"""tfadmm: progressive ADMM pruning and quantization for Keras 3."""

from tfadmm import callbacks, data, models
from tfadmm.admm_model import ADMMModel
from tfadmm.allocation import (
    Allocation,
    SensitivityCurves,
    allocate,
    plan_allocation,
    sensitivity_curves,
)
from tfadmm.batchnorm import recalibrate_batchnorm
from tfadmm.constraints import (
    Binary,
    Chain,
    ChannelSparsity,
    Constraint,
    FilterSparsity,
    NMSparsity,
    PowerOfTwo,
    Quantize,
    Sparsity,
    Ternary,
)
from tfadmm.distillation import Distill
from tfadmm.exporting import evaluate_tflite, export
from tfadmm.kernel_state import KernelState
from tfadmm.optimizer_spec import OptimizerSpec
from tfadmm.quantization_order import QuantizationSensitivity, quantization_sensitivity
from tfadmm.report import CompressionReport, build_report
from tfadmm.stage import ADMMPhase, RetrainPhase, StageResult, auto_distill, run_stage
from tfadmm.version import __version__
from tfadmm.wrapping import fully_mapped, map_progressively, project, strip, wrap

__all__ = [
    "ADMMModel",
    "ADMMPhase",
    "Allocation",
    "Binary",
    "Chain",
    "ChannelSparsity",
    "CompressionReport",
    "Constraint",
    "Distill",
    "FilterSparsity",
    "KernelState",
    "NMSparsity",
    "OptimizerSpec",
    "PowerOfTwo",
    "QuantizationSensitivity",
    "Quantize",
    "RetrainPhase",
    "SensitivityCurves",
    "Sparsity",
    "StageResult",
    "Ternary",
    "__version__",
    "allocate",
    "auto_distill",
    "build_report",
    "callbacks",
    "data",
    "evaluate_tflite",
    "export",
    "fully_mapped",
    "map_progressively",
    "models",
    "plan_allocation",
    "project",
    "quantization_sensitivity",
    "recalibrate_batchnorm",
    "run_stage",
    "sensitivity_curves",
    "strip",
    "wrap",
]
