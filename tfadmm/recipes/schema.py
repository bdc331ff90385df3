"""The recipe as typed, immutable objects: the Python API written in YAML.

Each section maps one-to-one onto a library call: `model` onto
`tfadmm.models.get` / `tfadmm.models.load`, `data` onto `tfadmm.data.load`,
a stage's `targets` and `admm` onto `tfadmm.wrap`, its `retrain` onto
`tfadmm.project` and a second `fit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}
SCHEDULES = ("constant", "cosine", "step")
DISTRIBUTE = ("none", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer and its learning-rate schedule over one training phase.

    `schedule`: `constant`; `cosine` (decays to 0 over the phase); `step`
    (multiplied by `decay_rate` every `decay_epochs` epochs).
    """

    name: str = "adam"
    learning_rate: float = 1e-3
    momentum: float | None = None
    weight_decay: float | None = None
    schedule: str = "constant"
    decay_epochs: int = 10
    decay_rate: float = 0.1

    def build(self, epochs, steps_per_epoch):
        """A fresh Keras optimizer for a phase of `epochs` x `steps_per_epoch` steps."""
        total = max(1, epochs * steps_per_epoch)
        lr = self.learning_rate
        if self.schedule == "cosine":
            lr = keras.optimizers.schedules.CosineDecay(self.learning_rate, total)
        elif self.schedule == "step":
            boundaries = [
                e * steps_per_epoch for e in range(self.decay_epochs, epochs, self.decay_epochs)
            ]
            values = [self.learning_rate * self.decay_rate**i for i in range(len(boundaries) + 1)]
            if boundaries:
                lr = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
        kwargs = {"learning_rate": lr}
        if self.momentum is not None:
            kwargs["momentum"] = self.momentum
        if self.weight_decay is not None:
            kwargs["weight_decay"] = self.weight_decay
        return OPTIMIZERS[self.name](**kwargs)


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


@dataclass(frozen=True)
class ADMMSpec:
    """The ADMM phase of a stage (arguments of `tfadmm.wrap` plus epochs)."""

    epochs: int = 10
    update_every_steps: int | None = None
    rho: float = 1e-3
    rho_multiplier: float = 1.3
    rho_max: float | None = None
    optimizer: OptimizerSpec = OptimizerSpec()


@dataclass(frozen=True)
class RetrainSpec:
    """Masked retraining after hard mapping.

    `progressive_fraction`: for quantized layers, map this fraction of the
    weights at a time (the authors' progressive mapping); None maps all at once.
    """

    epochs: int = 10
    optimizer: OptimizerSpec = OptimizerSpec()
    progressive_fraction: float | None = None


@dataclass(frozen=True)
class Stage:
    """One progressive stage: ADMM towards `targets`, hard mapping, retraining.

    `targets` is a tuple of `(pattern, constraint)` pairs in recipe order;
    `keep_previous` holds what earlier stages compressed exactly in place.
    """

    name: str
    targets: tuple
    admm: ADMMSpec = ADMMSpec()
    retrain: RetrainSpec = RetrainSpec()
    keep_previous: bool = True

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
