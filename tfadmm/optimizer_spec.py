"""`OptimizerSpec`: an optimizer and its learning-rate schedule over one training phase.

A phase's optimizer is made fresh when the phase starts, since the schedule
depends on the phase's length; the spec is what a recipe's `optimizer:`
section and `tfadmm.ADMMPhase` / `tfadmm.RetrainPhase` hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}
SCHEDULES = ("constant", "cosine", "step")


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer and its learning-rate schedule over one training phase.

    `schedule`: `constant`; `cosine` (decays to 0 over the phase); `step`
    (multiplied by `decay_rate` every `decay_epochs` epochs).

    Example:
        >>> OptimizerSpec("adam", 1e-3, schedule="cosine").build(epochs=10, steps_per_epoch=422)
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


def build_optimizer(optimizer, epochs, steps_per_epoch):
    """A Keras optimizer from an `OptimizerSpec`, an optimizer, or a Keras identifier."""
    if isinstance(optimizer, OptimizerSpec):
        return optimizer.build(epochs, steps_per_epoch)
    return keras.optimizers.get(optimizer)
