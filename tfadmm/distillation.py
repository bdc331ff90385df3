"""Knowledge distillation: the compressed model learns the outputs of the model it started from.

`Distill(temperature, alpha)` adds, in every training step of a stage (ADMM
and retraining), Hinton et al.'s soft-target term to the compiled loss:

    (1 - alpha) * loss(y, student) + alpha * T^2 * KL(softmax(t / T) || softmax(s / T))

with `t` the teacher's and `s` the student's logits for the same batch (the
teacher runs inside the training step: no second pass over the data). The
teacher is by default a frozen copy of the model as it was when the stage
began; pass `teacher=` to use another (e.g. the dense model).
"""

from __future__ import annotations

import numbers

import keras
from keras import ops

DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.5
#: `distill="auto"` (the stage engine's and recipes' default) distills a stage with the
#: default settings when it prunes (`tfadmm.Sparsity` targets) by less than `AUTO_BELOW_RATE`
#: or quantizes (`tfadmm.Quantize` targets) to at least `AUTO_MIN_BITS` bits, and not
#: otherwise. Measured on LeNet-5 / Fashion-MNIST (benchmarks/RESULTS.md), on the validation
#: split: distillation helps at 10x and 40x, hurts at 246x at any alpha or teacher tried, and
#: helps 4-bit and 3-bit quantization; ternary, binary and structured stages were not
#: measured with it and stay undistilled.
AUTO = "auto"
AUTO_BELOW_RATE = 100.0
AUTO_MIN_BITS = 3


@keras.saving.register_keras_serializable(package="tfadmm")
class Distill:
    """Settings of knowledge distillation during a stage.

    Args:
        temperature: softens both distributions, > 0.
        alpha: weight of the distillation term, in [0, 1] (the compiled loss
            gets `1 - alpha`).
        teacher: optional `keras.Model` with the same inputs and outputs; None
            uses a frozen copy of the model being compressed, as it was when
            it was wrapped.
        from_logits: whether model outputs are logits (else probabilities).
    """

    def __init__(self, temperature=DEFAULT_TEMPERATURE, alpha=DEFAULT_ALPHA, teacher=None,
                 from_logits=True):
        if not _is_number(temperature) or temperature <= 0:
            raise ValueError(
                "Invalid `temperature`: expected a number > 0. "
                f"Received: temperature={temperature!r}"
            )
        if not _is_number(alpha) or not 0 <= alpha <= 1:
            raise ValueError(
                f"Invalid `alpha`: expected a number in [0, 1]. Received: alpha={alpha!r}"
            )
        if teacher is not None and not isinstance(teacher, keras.Model):
            raise ValueError(
                f"Invalid `teacher`: expected a keras.Model or None. Received: {type(teacher)}"
            )
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.teacher = teacher
        self.from_logits = bool(from_logits)

    def get_config(self):
        # The teacher travels with the `ADMMModel` that uses it, not here.
        return {"temperature": self.temperature, "alpha": self.alpha,
                "from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Distill) and self.get_config() == other.get_config() and (
            self.teacher is other.teacher)

    def __repr__(self):
        return (f"Distill(temperature={self.temperature}, alpha={self.alpha}, "
                f"from_logits={self.from_logits})")


def soft_target_loss(teacher_outputs, student_outputs, temperature, from_logits=True):
    """`T^2 * KL(softmax(t / T) || softmax(s / T))`, averaged over the batch.

    Scaled for `tf.distribute` like any Keras loss (it is one). With
    `from_logits=False` the outputs are probabilities and their logs stand in
    for the logits.
    """
    if not from_logits:
        teacher_outputs = ops.log(ops.maximum(teacher_outputs, 1e-12))
        student_outputs = ops.log(ops.maximum(student_outputs, 1e-12))
    teacher = ops.softmax(ops.cast(teacher_outputs, "float32") / temperature, axis=-1)
    student = ops.softmax(ops.cast(student_outputs, "float32") / temperature, axis=-1)
    return keras.losses.KLDivergence()(teacher, student) * (temperature**2)


def frozen_copy(model):
    """A copy of `model` with the same weights, not trainable: the default teacher.

    Raises:
        ValueError: a model that cannot be rebuilt from its config.
    """
    try:
        copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
        if not copy.built:
            copy.build(model.input_shape)
        copy.set_weights(model.get_weights())
    except Exception as error:  # a config that does not rebuild: the user passes a teacher
        raise ValueError(
            f"Cannot copy model '{model.name}' to use as the distillation teacher "
            f"({type(error).__name__}: {error}): pass one with Distill(teacher=...)."
        ) from None
    copy.trainable = False
    return copy


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
