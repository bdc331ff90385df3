"""The recipe as typed, immutable objects: the Python API written in YAML.

Each section maps one-to-one onto a library call: `model` onto
`tfadmm.models.get` / `tfadmm.models.load`, `data` onto `tfadmm.data.load`,
a stage's `targets` and `admm` onto `tfadmm.wrap` (its `allocate` onto
`tfadmm.allocate`, whose result are the targets), its `retrain` onto
`tfadmm.project` and a second `fit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfadmm.allocation import DEFAULT_METHOD
from tfadmm.distillation import AUTO as AUTO
from tfadmm.distillation import DEFAULT_ALPHA, DEFAULT_TEMPERATURE
from tfadmm.optimizer_spec import OPTIMIZERS as OPTIMIZERS
from tfadmm.optimizer_spec import SCHEDULES as SCHEDULES
from tfadmm.optimizer_spec import OptimizerSpec
from tfadmm.stage import ADMMPhase, RetrainPhase

TEACHERS = ("previous", "baseline")
DISTRIBUTE = ("none", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclass(frozen=True)
class ModelSpec:
    """Where the model comes from: exactly one of `zoo`, `file`, `function`."""

    zoo: str | None = None
    file: str | None = None
    function: str | None = None
    args: dict = field(default_factory=dict)
    safe_mode: bool = True


@dataclass(frozen=True)
class DataSpec:
    """Arguments of `tfadmm.data.load`."""

    name: str = "fashion_mnist"
    source: str = "auto"
    path: str | None = None
    batch_size: int = 128
    validation_split: float = 0.1
    take: int | None = None
    augment: bool = True
    normalize: bool = True


@dataclass(frozen=True)
class TrainSpec:
    """Dense baseline training before the first stage."""

    epochs: int
    optimizer: OptimizerSpec = OptimizerSpec()


# A stage's phases are the engine's own settings (`tfadmm.ADMMPhase`, `tfadmm.RetrainPhase`).
ADMMSpec = ADMMPhase
RetrainSpec = RetrainPhase


@dataclass(frozen=True)
class DistillSpec:
    """Knowledge distillation during a stage (`tfadmm.Distill`).

    `teacher`: `previous` (the model as the stage received it) or `baseline`
    (the run's dense model).
    """

    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    teacher: str = "previous"


@dataclass(frozen=True)
class AllocateSpec:
    """Arguments of `tfadmm.allocate`: the stage's targets, computed when it starts.

    `layers`: layer-name patterns (None: every compressible layer).
    """

    rate: float
    method: str = DEFAULT_METHOD
    layers: tuple | None = None


@dataclass(frozen=True)
class Stage:
    """One progressive stage: ADMM towards `targets`, hard mapping, retraining.

    `targets` is a tuple of `(pattern, constraint)` pairs in recipe order;
    `allocate` (an `AllocateSpec`, else None) replaces them: the runner
    computes them on the validation split when the stage starts;
    `keep_previous` holds what earlier stages compressed exactly in place;
    `distill` adds knowledge distillation: a `DistillSpec`, None (off) or `AUTO`
    (the default: `tfadmm.auto_distill` decides when the stage starts).
    """

    name: str
    targets: tuple
    admm: ADMMSpec = ADMMSpec()
    retrain: RetrainSpec = RetrainSpec()
    keep_previous: bool = True
    distill: DistillSpec | str | None = AUTO
    allocate: AllocateSpec | None = None

    @property
    def target_dict(self):
        return dict(self.targets)


@dataclass(frozen=True)
class Recipe:
    """A whole compression plan; build one with `tfadmm.load_recipe(path)`.

    `distribute` names the `tf.distribute` strategy the run uses (`none`,
    `mirrored`, `multi_worker` from `TF_CONFIG`, `tpu`); `precision` the
    global Keras dtype policy (`float32`, `mixed_float16`, `mixed_bfloat16`;
    ADMM state stays float32); `jit_compile` is passed to `compile`.
    """

    name: str
    model: ModelSpec
    data: DataSpec
    stages: tuple
    baseline: TrainSpec | None = None
    seed: int = 0
    version: int = 1
    source: str = "<recipe>"
    document: dict = field(default_factory=dict, compare=False, repr=False)
    lines: dict = field(default_factory=dict, compare=False, repr=False)
    distribute: str = "none"
    precision: str = "float32"
    jit_compile: bool | str = "auto"
