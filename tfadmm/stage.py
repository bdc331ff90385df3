"""`run_stage`: one progressive stage, run the same way by recipes, the API and the benchmarks.

A stage wraps a model for its targets, trains the ADMM phase, hard-maps the
kernels into their sets, and retrains with masks (mapping quantized weights a
share at a time if asked). With `keep_best` and validation data, the stage's
result is the candidate with the best validation accuracy among:

- `start`: the model hard-mapped before any training (for a quantized stage,
  round-to-nearest post-training quantization; for pruning, one-shot magnitude
  pruning): the stage never ends below it;
- `mapped`: right after the ADMM phase's hard mapping;
- `retrain epoch k`: after each retraining epoch, once every weight is mapped.

With `RetrainPhase(recalibrate_bn=True)`, batch norms' moving statistics are re-estimated
(`tfadmm.recalibrate_batchnorm`, on up to `BN_RECALIBRATION_STEPS` training batches) right
after each hard mapping that `start` and `mapped` are measured on, before they are evaluated:
the hard mapping changes every kernel at once, the statistics learned for the unmapped ones
no longer fit. Retraining epochs keep Keras' own moving averages, which follow the weights as
they train. A model without batch norms is unaffected.

Every candidate is inside the constraint sets (masks and levels hold), and it
is restored exactly, with its masks.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import keras

from tfadmm.admm import growth_to_reach
from tfadmm.admm_model import (
    ADMM,
    DEFAULT_RHO,
    DEFAULT_RHO_MULTIPLIER,
    DEFAULT_UPDATES_PER_EPOCH,
    RETRAIN,
    ADMMModel,
    interval_for,
)
from tfadmm.batch_count import batch_count
from tfadmm.batchnorm import recalibrate_batchnorm
from tfadmm.constraints.quantization import Quantize
from tfadmm.constraints.sparsity import Sparsity, kept_count
from tfadmm.distillation import AUTO, AUTO_BELOW_RATE, AUTO_MIN_BITS, Distill
from tfadmm.optimizer_spec import OptimizerSpec, build_optimizer
from tfadmm.targets import resolve_targets
from tfadmm.wrapping import fully_mapped, project, wrap

START, MAPPED = "start", "mapped"
#: Where rho ends an ADMM phase that sets neither `rho_final` nor `rho_multiplier` *(ours)*.
DEFAULT_RHO_FINAL = 1.0
#: Training batches `RetrainPhase(recalibrate_bn=True)` re-estimates batch norms on.
BN_RECALIBRATION_STEPS = 200


@dataclasses.dataclass(frozen=True)
class ADMMPhase:
    """The ADMM phase of a stage: `tfadmm.wrap`'s penalty schedule plus epochs.

    rho grows geometrically from `rho` to `rho_final` (`DEFAULT_RHO_FINAL`, 1.0,
    when neither it nor `rho_multiplier` is given; never below `rho`) over the
    phase's Z/U updates, however many the phase makes (its epochs,
    `updates_per_epoch` or `update_every_steps`, and the batches an epoch): the
    multiplier is derived at the start of the phase (`phase_multiplier`). A
    short phase then pulls the weights as hard into their sets as a long one.
    `rho_multiplier` instead fixes the growth at each Z/U update (one or the
    other, not both). `optimizer`: an `OptimizerSpec` (made fresh for the phase,
    so its schedule spans the phase), a Keras optimizer or an identifier.
    """

    epochs: int = 10
    update_every_steps: int | None = None
    updates_per_epoch: int = DEFAULT_UPDATES_PER_EPOCH
    rho: float = DEFAULT_RHO
    rho_multiplier: float | None = None
    rho_max: float | None = None
    rho_final: float | None = None
    optimizer: Any = OptimizerSpec()


def phase_interval(admm, steps):
    """Training steps between the phase's Z/U updates: `update_every_steps`, or
    `updates_per_epoch` an epoch of `steps` steps (`ADMMModel.fit`'s interval)."""
    if admm.update_every_steps is None:
        return interval_for(steps, admm.updates_per_epoch)
    return admm.update_every_steps


def phase_updates(admm, steps):
    """The Z/U updates an ADMM phase makes with `steps` batches an epoch.

    As `ADMMModel` counts them: one every `update_every_steps` steps, or
    `updates_per_epoch` an epoch (an interval of `steps // updates_per_epoch`).
    `steps` None (unknown): `epochs * updates_per_epoch`.

    Raises:
        ValueError: `update_every_steps` with an unknown number of steps.
    """
    if steps is None:
        if admm.update_every_steps is None:
            return admm.epochs * admm.updates_per_epoch
        raise ValueError(
            "Invalid `admm.update_every_steps` with rho growing to `admm.rho_final` (default "
            f"{DEFAULT_RHO_FINAL!r}): expected training data whose batches an epoch are known, "
            "to count the phase's Z/U updates, or a fixed `admm.rho_multiplier`. Received: "
            "data of unknown length"
        )
    return admm.epochs * steps // phase_interval(admm, steps)


def phase_rho_final(admm):
    """Where rho ends the phase: `rho_final`, else `DEFAULT_RHO_FINAL` (or `rho`, if
    larger); None when `rho_multiplier` sets the growth instead."""
    if admm.rho_multiplier is not None:
        return None
    if admm.rho_final is not None:
        return admm.rho_final
    return max(DEFAULT_RHO_FINAL, admm.rho)


def phase_multiplier(admm, steps):
    """rho's multiplier at each Z/U update of the phase: `rho_multiplier`, or the growth
    from `rho` to `phase_rho_final(admm)` over `phase_updates(admm, steps)` updates."""
    final = phase_rho_final(admm)
    if final is None:
        return admm.rho_multiplier
    return growth_to_reach(admm.rho, final, phase_updates(admm, steps))


@dataclasses.dataclass(frozen=True)
class RetrainPhase:
    """Masked retraining after hard mapping.

    `progressive_fraction`: for quantized layers, map this share of the
    weights at a time, spread over the epochs (the authors' progressive
    mapping); None maps all at once. `keep_best`: with validation data, the
    stage ends on its best candidate by validation accuracy (module docstring).
    `recalibrate_bn`: re-estimate batch norms' moving statistics on training data
    right after hard mapping, before `start` and `mapped` are evaluated (module
    docstring); off by default.
    The default learning rate decays to 0 over the phase (cosine).
    """

    epochs: int = 10
    optimizer: Any = OptimizerSpec(schedule="cosine")
    progressive_fraction: float | None = None
    keep_best: bool = True
    recalibrate_bn: bool = False


@dataclasses.dataclass
class Candidate:
    """A point a stage may end on: its label, validation accuracy and every weight."""

    label: str
    val_accuracy: float
    weights: list


@dataclasses.dataclass(frozen=True)
class StageResult:
    """What `run_stage` returns.

    Attributes:
        model: the `ADMMModel`, in its retraining phase, fully mapped, holding
            the chosen candidate's weights.
        chosen: the candidate the stage ended on (`start`, `mapped`,
            `retrain epoch k`), or `last` without `keep_best`.
        val_accuracy: the result's validation accuracy (None without data).
        start_val_accuracy: the hard-mapped starting point's (post-training
            quantization, or one-shot magnitude pruning); None without data.
        mapped_val_accuracy: right after the ADMM phase's hard mapping.
    """

    model: Any
    chosen: str
    val_accuracy: float | None = None
    start_val_accuracy: float | None = None
    mapped_val_accuracy: float | None = None


@dataclasses.dataclass
class StageResume:
    """Where a stage continues: its `ADMMModel` (loaded from a checkpoint), phase,
    next epoch, best candidate so far and the accuracies already measured."""

    model: Any
    phase: str
    epoch: int
    best: Candidate | None = None
    start_val_accuracy: float | None = None
    mapped_val_accuracy: float | None = None


class StageMonitor:
    """Hooks a caller of `run_stage` may override (the recipe runner checkpoints here)."""

    def epoch_begin(self, model, phase, epoch, epochs):
        """Before each epoch (reseed the model's random layers here, for exact resume)."""

    def epoch_end(self, model, phase, epoch):
        """After each epoch (checkpoint here; `epoch` is the one just finished)."""

    def mapped(self, model):
        """After the ADMM phase's hard mapping, once retraining is compiled."""

    def best_changed(self, candidate):
        """A new best candidate (persist it here for resume)."""

    def measured(self, name, value):
        """A validation accuracy measured once: `start` or `mapped` (keep it for resume)."""

    def mapped_share(self, epoch):
        """A progressive mapping step before retraining epoch `epoch`."""


def compile_classifier(model, optimizer, jit_compile="auto"):
    """Compiles for classification; logits unless the model ends in a softmax."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def outputs_logits(model):
    """Whether `model` outputs logits (its last layer is no softmax: neither a layer with
    `activation="softmax"` nor a `keras.layers.Softmax`)."""
    inner = getattr(model, "model", model)
    layers = getattr(inner, "layers", None)
    last = layers[-1] if layers else None
    if isinstance(last, keras.layers.Softmax):
        return False
    return getattr(last, "activation", None) is not keras.activations.softmax


def evaluate_accuracy(model, dataset):
    """Top-1 accuracy of a compiled (or compilable) classifier on `dataset`."""
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        compile_classifier(model, "adam")
    return float(model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"])


def run_stage(
    model: keras.Model,
    targets: Mapping[str, Any],
    train: Any,
    *,
    validation: Any = None,
    admm: ADMMPhase = ADMMPhase(),
    retrain: RetrainPhase = RetrainPhase(),
    distill: Any = AUTO,
    freeze: Iterable[str] | None = None,
    compile: Callable = compile_classifier,  # noqa: A002 (the Keras verb)
    callbacks: Iterable[keras.callbacks.Callback] = (),
    verbose: int = 0,
    monitor: StageMonitor | None = None,
    resume: StageResume | None = None,
) -> StageResult:
    """Runs one stage: ADMM, hard mapping, masked retraining, best candidate.

    Args:
        model: a built Keras model, or the `ADMMModel` of a finished stage
            (what it compressed stays as it is).
        targets: `{layer-name pattern: constraint}`, as for `tfadmm.wrap`.
        train: a dataset for `fit`, or a callable `(phase, epoch) -> dataset`
            (e.g. a fresh shuffle per epoch).
        validation: optional validation dataset: candidates are chosen on it.
        admm: an `ADMMPhase`.
        retrain: a `RetrainPhase`.
        distill: a `tfadmm.Distill` (teacher: the model as it was at the
            stage's start, unless it names one), None for none, or `"auto"`
            (the default): the default `Distill` where `auto_distill` says so.
        freeze: layer-name patterns held fixed (see `tfadmm.wrap`).
        compile: `(model, optimizer) -> model`; classification by default.
        callbacks: Keras callbacks for every `fit`.
        verbose: Keras' verbosity for `fit`.
        monitor: optional `StageMonitor`.
        resume: optional `StageResume`, to continue a stage from a checkpoint.

    Returns:
        A `StageResult`.

    Raises:
        ValueError: bad targets or settings (see `tfadmm.wrap`).

    Example:
        >>> result = tfadmm.run_stage(model, {"fc*": tfadmm.Sparsity(0.9)}, train_ds,
        ...                           validation=val_ds, admm=tfadmm.ADMMPhase(epochs=5),
        ...                           retrain=tfadmm.RetrainPhase(epochs=5))
        >>> plain = tfadmm.strip(result.model)
    """
    _check_phases(admm, retrain)
    if isinstance(distill, str):
        if distill != AUTO:
            raise ValueError(f"Invalid `distill`: expected a tfadmm.Distill, None or "
                             f"'{AUTO}'. Received: distill={distill!r}")
        distill = Distill(from_logits=outputs_logits(model)) if (
            resume is None and auto_distill(model, targets)) else None
    run = _StageRun(train, validation, admm, retrain, compile, list(callbacks), verbose,
                    monitor or StageMonitor())
    if resume is None:
        return run.start(model, targets, distill, freeze)
    return run.resume(resume)


def auto_distill(model, targets):
    """Whether `distill="auto"` distills a stage with `targets` on `model`.

    Yes when every target is a `tfadmm.Sparsity` or a `tfadmm.Quantize` of at
    least `tfadmm.distillation.AUTO_MIN_BITS` (3) bits, and the `Sparsity`
    targets together prune the kernels they name by less than
    `tfadmm.distillation.AUTO_BELOW_RATE` (100x: total weights / weights kept);
    no for ternary, binary, power-of-two, structured, combined or custom
    targets and at higher rates (see `tfadmm.distillation`).

    Args:
        model: a built Keras model, or the `ADMMModel` of a finished stage.
        targets: `{layer-name pattern: constraint}`, as for `tfadmm.wrap`.

    Raises:
        ValueError: targets `tfadmm.wrap` would refuse.
    """
    resolved = resolve_targets(model.model if isinstance(model, ADMMModel) else model, targets)
    total = kept = 0
    for constraint, variable in resolved.values():
        if type(constraint) is Quantize and constraint.bits >= AUTO_MIN_BITS:
            continue
        if type(constraint) is not Sparsity:
            return False
        size = math.prod(variable.shape)
        total, kept = total + size, kept + kept_count(size, constraint.sparsity)
    return total == 0 or total < AUTO_BELOW_RATE * kept  # total == 0: quantization only


class _StageRun:
    def __init__(self, train, validation, admm, retrain, compile_fn, callbacks, verbose,
                 monitor):
        self.train = train if callable(train) else (lambda phase, epoch: train)
        self.validation = validation
        self.admm, self.retrain = admm, retrain
        self.compile = compile_fn
        self.callbacks, self.verbose, self.monitor = callbacks, verbose, monitor
        self.keep_best = retrain.keep_best and validation is not None
        self.best = None
        self.start_val = self.mapped_val = None

    def start(self, model, targets, distill, freeze):
        fixed = self.admm.rho_multiplier
        wrapped = wrap(model, targets, rho=self.admm.rho,
                       rho_multiplier=DEFAULT_RHO_MULTIPLIER if fixed is None else fixed,
                       rho_max=self.admm.rho_max, update_every_steps=self.admm.update_every_steps,
                       updates_per_epoch=self.admm.updates_per_epoch,
                       freeze=freeze, distill=distill)
        if fixed is None:  # rho grows to rho_final: the growth depends on the phase's length
            steps = batch_count(self.train(ADMM, 0))
            wrapped.set_rho_schedule(self.admm.rho,
                                     phase_multiplier(self.admm, steps if steps > 0 else None),
                                     self.admm.rho_max)
        if self.validation is not None:
            self._consider(self._start_candidate(wrapped))
        self._compile(wrapped, self.admm)
        return self._continue(wrapped, ADMM, 0)

    def resume(self, resume):
        self.best = resume.best
        self.start_val, self.mapped_val = resume.start_val_accuracy, resume.mapped_val_accuracy
        return self._continue(resume.model, resume.phase, resume.epoch)

    def _continue(self, model, phase, start):
        if phase == ADMM:
            self._epochs(model, ADMM, start, self.admm.epochs)
            project(model, fraction=self.retrain.progressive_fraction)
            self._recalibrate(model, RETRAIN)
            self._compile(model, self.retrain)
            if self.validation is not None and fully_mapped(model):
                self.mapped_val = evaluate_accuracy(model, self.validation)
                self.monitor.measured(MAPPED, self.mapped_val)
                self._consider(Candidate(MAPPED, self.mapped_val, model.get_weights()))
            self.monitor.mapped(model)
            start = 0
        self._epochs(model, RETRAIN, start, self.retrain.epochs)
        if not fully_mapped(model):
            project(model)  # fewer retraining epochs than mapping steps: map the rest now
        chosen, val = "last", None
        if self.keep_best and self.best is not None:
            model.set_weights(self.best.weights)
            chosen, val = self.best.label, self.best.val_accuracy
        elif self.validation is not None:
            val = evaluate_accuracy(model, self.validation)
        return StageResult(model, chosen, val, self.start_val, self.mapped_val)

    def _epochs(self, model, phase, start, epochs):
        fraction = self.retrain.progressive_fraction if phase == RETRAIN else None
        every = max(1, epochs // math.ceil(1 / fraction)) if fraction else 0
        for epoch in range(start, epochs):
            if every and epoch and epoch % every == 0 and not fully_mapped(model):
                project(model, fraction=fraction)
                self.monitor.mapped_share(epoch)
            self.monitor.epoch_begin(model, phase, epoch, epochs)
            history = model.fit(self.train(phase, epoch), validation_data=self.validation,
                                epochs=1, verbose=self.verbose, shuffle=False,
                                callbacks=self.callbacks)
            if phase == RETRAIN and self.keep_best and fully_mapped(model):
                val = history.history.get("val_accuracy", [None])[-1]
                if val is None:
                    val = evaluate_accuracy(model, self.validation)
                self._consider(Candidate(f"retrain epoch {epoch + 1}", float(val),
                                         model.get_weights()))
            self.monitor.epoch_end(model, phase, epoch + 1)

    def _start_candidate(self, wrapped):
        """Hard-maps everything now, measures it, and puts the model back as it was."""
        before = wrapped.get_weights()
        project(wrapped)
        self._recalibrate(wrapped, ADMM)  # put back below with the other weights
        self.start_val = evaluate_accuracy(wrapped, self.validation)
        self.monitor.measured(START, self.start_val)
        candidate = Candidate(START, self.start_val, wrapped.get_weights())
        wrapped.set_weights(before)  # also the phase (the next fit retraces), masks, mapping
        return candidate

    def _recalibrate(self, model, phase):
        if self.retrain.recalibrate_bn:
            recalibrate_batchnorm(model, self.train(phase, 0), steps=BN_RECALIBRATION_STEPS)

    def _consider(self, candidate):
        if not self.keep_best:
            return
        if self.best is None or candidate.val_accuracy > self.best.val_accuracy:
            self.best = candidate
            self.monitor.best_changed(candidate)

    def _compile(self, model, phase):
        steps = _steps(self.train(ADMM, 0))
        self.compile(model, build_optimizer(phase.optimizer, phase.epochs, steps))


def _steps(dataset):
    try:
        steps = int(dataset.cardinality())
    except (AttributeError, TypeError):
        steps = len(dataset) if hasattr(dataset, "__len__") else 1
    return max(1, steps)


def _check_phases(admm, retrain):
    for name, value, kind in ((ADMM, admm, ADMMPhase), (RETRAIN, retrain, RetrainPhase)):
        if not isinstance(value, kind):
            raise ValueError(
                f"Invalid `{name}`: expected a tfadmm.{kind.__name__}. Received: {value!r}"
            )
        epochs = value.epochs
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
            raise ValueError(
                f"Invalid `{name}.epochs`: expected an integer >= 0. Received: {epochs!r}"
            )
    final, rho = admm.rho_final, admm.rho
    if final is not None and admm.rho_multiplier is not None:
        raise ValueError(
            "Invalid `admm`: expected rho_final or rho_multiplier, not both (rho_final sets the "
            f"growth). Received: rho_final={final!r}, rho_multiplier={admm.rho_multiplier!r}"
        )
    comparable = isinstance(rho, numbers.Real) and not isinstance(rho, bool)  # else wrap says
    if final is not None and (isinstance(final, bool) or not isinstance(final, numbers.Real)
                              or (comparable and not final >= rho)):
        raise ValueError(
            f"Invalid `admm.rho_final`: expected None or a number >= admm.rho ({rho!r}). "
            f"Received: {final!r}"
        )
    if not isinstance(retrain.recalibrate_bn, bool):
        raise ValueError(
            "Invalid `retrain.recalibrate_bn`: expected True or False. "
            f"Received: {retrain.recalibrate_bn!r}"
        )
