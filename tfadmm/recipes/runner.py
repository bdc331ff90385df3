"""`run_recipe`: baseline, then every stage (ADMM, hard mapping, retraining), resumable."""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import tempfile

import keras

from tfadmm import lazy_tensorflow, report
from tfadmm.admm_model import ADMM, RETRAIN, ADMMModel
from tfadmm.allocation import Allocation, plan_allocation, select_layers
from tfadmm.backend.multi_worker import is_multi_worker
from tfadmm.batch_count import batch_count
from tfadmm.callbacks import ADMMTensorBoard
from tfadmm.distillation import AUTO, Distill
from tfadmm.errors import DataError, ModelError, TfadmmError
from tfadmm.lazy_tensorflow import needs_tensorflow
from tfadmm.models.loading import load_file
from tfadmm.recipes.amendments import check_changes
from tfadmm.recipes.building import build_model, load_data
from tfadmm.recipes.checks import check_against_model
from tfadmm.recipes.execution import execution, jit_compile_for
from tfadmm.recipes.numerics import StopOnNonFinite, check_finite, non_finite_message
from tfadmm.recipes.run_directory import (
    ALLOCATION,
    BASELINE,
    CHECKPOINTS,
    HISTORY,
    KEEP_CHECKPOINTS,
    LOGS,
    METRICS,
    MODEL,
    REPORT_JSON,
    REPORT_MD,
    SENSITIVITY_PNG,
    RunDirectory,
    atomic_write,
    load_weights,
    recipe_text,
    save_model,
    save_weights,
    write_json,
    write_text,
    writes_enabled,
)
from tfadmm.seeding import reseed
from tfadmm.sensitivity_plot import MATPLOTLIB_MISSING, can_draw, draw_allocation
from tfadmm.stage import (
    MAPPED,
    START,
    Candidate,
    StageMonitor,
    StageResume,
    auto_distill,
    compile_classifier,
    evaluate_accuracy,
    outputs_logits,
    phase_multiplier,
    run_stage,
)
from tfadmm.wrapping import project, strip

tf = needs_tensorflow("Recipe runs (`tfadmm run`)")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run produced.

    Attributes:
        directory: the run directory.
        model_path: the final stripped `.keras` model.
        history: baseline and per-stage accuracies (as in `history.json`).
    """

    directory: pathlib.Path
    model_path: pathlib.Path
    history: dict


class _RunMonitor(StageMonitor):
    """The run's side of each epoch: progress lines, TensorBoard steps, Dropout reseeding,
    NaN guard, checkpoints. One per stage (`index`), or for the dense baseline (None)."""

    def __init__(self, run, label, index=None):
        self.run, self.label, self.index = run, label, index
        self.stop = StopOnNonFinite()

    def _position(self, phase):
        return (phase,) if self.index is None else (self.index, phase)

    def _phase_label(self, phase):
        if self.index is None:
            return self.label
        return f"{self.label}: {'ADMM' if phase == ADMM else RETRAIN}"

    def epoch_begin(self, model, phase, epoch, epochs):
        self.stop.problem = None
        reseed(model, _epoch_seed(self.run.recipe.seed, self._position(phase), epoch))
        self.run.emit(f"{self._phase_label(phase)} epoch {epoch + 1}/{epochs}")
        self.run.board.step = self.run._global_epoch(self._position(phase), epoch)

    def epoch_end(self, model, phase, epoch):
        position = self._position(phase)
        if self.stop.problem is not None:
            raise TfadmmError(non_finite_message(self.run.recipe, model, position, epoch - 1,
                                                 self._phase_label(phase), self.stop.problem))
        check_finite(model, self._phase_label(phase))
        self.run.commit(model, (*position, epoch))

    def mapped(self, model):
        self.run.commit(model, (self.index, RETRAIN, 0))

    def measured(self, name, value):
        self.run.state.setdefault("measured", {})[name] = value

    def best_changed(self, candidate):
        slug = candidate.label.replace(" ", "-")
        name = f"{CHECKPOINTS}/best-{self.index}-{slug}.npz"
        save_weights(candidate.weights, self.run.dir.path(name))
        self.run.state["best"] = {"label": candidate.label, "file": name,
                                  "val_accuracy": candidate.val_accuracy}

    def mapped_share(self, epoch):
        self.run.emit(f"{self._phase_label(RETRAIN)}: mapped the next share of quantized "
                      "weights")


class _Progbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar without its `Epoch 1/1` line (the runner names the epoch)."""

    def set_params(self, params):
        super().set_params(params)
        self.epochs = 1


def run_recipe(
    recipe,
    output_dir,
    *,
    resume=False,
    force=False,
    on_event=None,
    verbose=1,
    callbacks=(),
    allow_changes=False,
    keep_checkpoints=KEEP_CHECKPOINTS,
):
    """Runs a recipe into a run directory.

    Every epoch is checkpointed (atomically); with `resume=True` a run that
    crashed or was killed continues from its last completed epoch and ends
    with the same result as an uninterrupted run. The last `keep_checkpoints`
    checkpoints are kept with their size and sha256: if the latest is missing
    or damaged, the run resumes from the previous one.

    Args:
        recipe: a `Recipe` from `load_recipe`.
        output_dir: the run directory.
        resume: continue the run in `output_dir`.
        force: clear a non-empty `output_dir` and start over.
        on_event: optional callable receiving one progress line per phase
            and epoch (`"stage 1/2 prune: ADMM epoch 3/8"`).
        verbose: Keras' verbosity for `fit` (0, 1 progress bar, 2 one line).
        callbacks: extra Keras callbacks for every `fit`.
        allow_changes: with `resume`, accept a recipe that differs from the
            run's own in work not yet completed (the phase in progress and
            later ones: epochs, optimizer, rho, later stages); completed
            phases, the model, the data and the seed must stay the same. A
            changed optimizer starts fresh at the resumed epoch; a changed
            rho restarts the phase's rho schedule there.
        keep_checkpoints: how many of the latest checkpoints to keep (>= 1).

    Returns:
        A `RunResult`.

    Raises:
        TfadmmError: bad input (a data set or model that cannot be loaded, a
            run directory that exists, a run from another recipe, no usable
            checkpoint to resume from, a damaged `state.json`, ...).
    """
    directory = RunDirectory(output_dir, keep_checkpoints=keep_checkpoints)
    run = _Run(recipe, directory, on_event or (lambda line: None), verbose, list(callbacks))
    with execution(recipe):  # model build, wrap and compile inside strategy.scope()
        return run.execute(resume=resume, force=force, allow_changes=allow_changes)


class _Run:
    def __init__(self, recipe, directory, emit, verbose, callbacks):
        self.recipe = recipe
        self.dir = directory
        self.emit = emit
        self.verbose = verbose
        self.callbacks = callbacks
        self.jit_compile = jit_compile_for(recipe)
        self._checkpoint = None  # the model of the checkpoint a resumed run continues from
        self._said_no_png = False  # the run said once that it draws no sensitivity.png

    # -- the plan --------------------------------------------------------------

    def execute(self, *, resume, force, allow_changes=False):
        self.state = self.dir.prepare(
            recipe_text(self.recipe), resume=resume, force=force,
            changes=functools.partial(check_changes, self.recipe, self.dir)
            if allow_changes else None,
        )
        self.amended = self.state.pop("amended", False)
        self.history = self._read_history()
        keras.utils.set_random_seed(self.recipe.seed)
        self.emit(f"loading data '{self.recipe.data.name}'")
        self.splits = load_data(self.recipe)
        self.steps = _cardinality(self.splits.train)
        self.board = ADMMTensorBoard(self.dir.path(LOGS) if writes_enabled() else _scratch())

        current = self._starting_model()
        total = len(self.recipe.stages)
        for index, stage in enumerate(self.recipe.stages):
            if index < self.state["completed_stages"]:
                continue
            current = self._train_stage(index, total, stage, current)

        plain = strip(current) if isinstance(current, ADMMModel) else current
        final = self.dir.path(MODEL)
        save_model(plain, final, include_optimizer=False)
        self.history["final_accuracy"] = self.history["stages"][-1]["test_accuracy"]
        write_json(self.dir.path(HISTORY), self.history)
        self._write_report(plain)
        self.board.close()
        self.state.update(status="done")
        self.dir.release_checkpoints(self.state)  # the stages' models hold everything they had
        self.emit(f"done: {final}")
        return RunResult(self.dir.root, final, self.history)

    def _starting_model(self):
        """The last completed stage's model, or the dense baseline (trained if asked)."""
        self._checkpoint = self._usable_checkpoint()
        if self.state["completed_stages"] > 0:
            stage = self.recipe.stages[self.state["completed_stages"] - 1]
            path = self.dir.stage_dir(self.state["completed_stages"] - 1, stage.name)
            return load_file(path / MODEL, safe_mode=self.recipe.model.safe_mode)
        if self.dir.path(BASELINE).exists():
            return load_file(self.dir.path(BASELINE), safe_mode=self.recipe.model.safe_mode)
        try:
            model = build_model(self.recipe, self.splits.input_shape, self.splits.num_classes)
        except TfadmmError:
            raise
        except (ValueError, TypeError) as error:
            raise ModelError(f"model: cannot build the model: {error}") from None
        _check_model_fits(self.recipe, model, self.splits)
        spec = self.recipe.baseline
        trainer = _trainer_for(model)
        if spec is not None and spec.epochs > 0:
            resumed = self._resume_model(("baseline",))
            trainer, start = resumed if resumed else (trainer, 0)
            if not resumed or self.amended:
                compile_classifier(trainer, spec.optimizer.build(spec.epochs, self.steps),
                              self.jit_compile)
            self._train(trainer, start, spec.epochs)
        elif getattr(trainer, "optimizer", None) is None:
            compile_classifier(trainer, "adam", self.jit_compile)
        self.history["baseline"] = self._accuracies(trainer)
        model = trainer.model if isinstance(trainer, ADMMModel) else trainer
        self.emit(f"baseline: validation accuracy {self.history['baseline']['val_accuracy']:.4f}, "
                  f"test accuracy {self.history['baseline']['test_accuracy']:.4f}")
        write_json(self.dir.path(HISTORY), self.history)
        save_model(model, self.dir.path(BASELINE))
        return model

    def _train_stage(self, index, total, stage, current):
        label = f"stage {index + 1}/{total} {stage.name}"
        position = self.state.get("position") or []
        resume, base = None, None
        if position[:1] == [index]:
            resumed = self._resume_model((index, position[1]))
            if resumed is not None:
                model, epoch = resumed
                if self.amended:
                    _apply_settings(model, stage, position[1], self.steps, self.jit_compile)
                measured = self.state.get("measured") or {}
                resume = StageResume(model, position[1], epoch, self._read_best(),
                                     measured.get(START), measured.get(MAPPED))
        if resume is None:
            self.state.update(best=None, measured={})
            base = current if stage.keep_previous else _plain(current)
            if isinstance(base, ADMMModel) and base.phase == ADMM:
                project(base)
        monitor = _RunMonitor(self, label, index)
        try:
            targets = stage.target_dict
            if stage.allocate is not None and resume is None:
                targets = self._allocation(index, stage, base, label).targets()
            result = run_stage(
                base, targets,
                lambda phase, epoch: self.splits.train_for_seed(
                    _epoch_seed(self.recipe.seed, (index, phase), epoch)),
                validation=self.splits.validation, admm=stage.admm, retrain=stage.retrain,
                distill=None if resume else self._distill(stage, base, targets, label),
                compile=functools.partial(compile_classifier, jit_compile=self.jit_compile),
                callbacks=[monitor.stop, _Progbar(), self.board, *self.callbacks],
                verbose=self.verbose, monitor=monitor, resume=resume,
            )
        except TfadmmError:
            raise
        except ValueError as error:
            raise TfadmmError(f"stages[{index}] '{stage.name}': {error}") from None
        admm = result.model

        record = {"name": stage.name, "accuracy_before": self._previous_accuracy(),
                  **self._accuracies(admm), "chosen": result.chosen,
                  "start_val_accuracy": result.start_val_accuracy,
                  "mapped_val_accuracy": result.mapped_val_accuracy}
        record["accuracy_after"] = record["test_accuracy"]
        self.history["stages"].append(record)
        self._log_stage(index, stage, admm, record)
        stage_dir = self.dir.stage_dir(index, stage.name)
        save_model(admm, stage_dir / MODEL)
        write_json(stage_dir / METRICS, record)
        write_json(self.dir.path(HISTORY), self.history)
        self.state.update(completed_stages=index + 1, position=None, best=None, measured={})
        self.dir.write_state(self.state)
        self._drop_stale_best()
        chosen = "" if result.chosen == "last" else f", kept: {result.chosen}"
        self.emit(f"{label}: test accuracy {record['test_accuracy']:.4f} "
                  f"(validation {record['val_accuracy']:.4f}{chosen})")
        return admm

    def _allocation(self, index, stage, base, label):
        """The stage's `tfadmm.Allocation`: from its run directory, else computed and saved."""
        path, spec = self.dir.stage_dir(index, stage.name) / ALLOCATION, stage.allocate
        allocation = None
        if path.exists():  # a resumed run: exactly the allocation it trained towards
            allocation = Allocation.from_dict(json.loads(path.read_text(encoding="utf-8")))
            if (allocation.method, allocation.rate) != (spec.method, spec.rate) or set(
                    allocation.sparsities) != set(select_layers(_plain(base), spec.layers)):
                allocation = None  # made for another `allocate:` (--allow-changes)
        fresh = allocation is None
        if fresh:
            allocation = plan_allocation(
                _plain(base), spec.rate, method=spec.method, data=self.splits.validation,
                layers=spec.layers, on_progress=lambda line: self.emit(f"{label}: {line}"),
            )
            write_json(path, allocation.to_dict())
            if allocation.curves is not None:
                self.board.write_sensitivity(allocation.curves, f"sensitivity/{stage.name}")
        self._draw_curves(allocation, path.with_name(SENSITIVITY_PNG), stage.name, label,
                          redraw=fresh)
        self.emit(f"{label}: {allocation.method} allocation at {allocation.achieved_rate:.1f}x: "
                  + ", ".join(f"{n} {s:.4f}" for n, s in allocation.sparsities.items()))
        return allocation

    def _draw_curves(self, allocation, png, name, label, *, redraw):
        """Draws the allocation's curves to `png`, unless it is there (`redraw`: an
        allocation made now, which replaces any earlier drawing). Without matplotlib the
        run says so once, and drops a drawing of an earlier allocation."""
        if allocation.curves is None or not writes_enabled() or (png.exists() and not redraw):
            return
        if not can_draw():
            png.unlink(missing_ok=True)
            if not self._said_no_png:
                self._said_no_png = True
                self.emit(f"{label}: {SENSITIVITY_PNG} not drawn: {MATPLOTLIB_MISSING}")
            return
        atomic_write(png, lambda tmp: draw_allocation(allocation, tmp, name=name))

    def _distill(self, stage, base, targets, label):
        """The stage's `tfadmm.Distill`, its teacher the stage's input or the baseline;
        `distill: auto` as `tfadmm.auto_distill` decides (said in the run's events)."""
        spec = stage.distill
        if spec == AUTO:
            on = auto_distill(base, targets)
            self.emit(f"{label}: distillation {'on' if on else 'off'} (distill: auto)")
            return Distill(from_logits=outputs_logits(base)) if on else None
        if spec is None:
            return None
        teacher = None
        if spec.teacher == "baseline":
            teacher = load_file(self.dir.path(BASELINE),
                                safe_mode=self.recipe.model.safe_mode)
        return Distill(spec.temperature, spec.alpha, teacher=teacher,
                       from_logits=outputs_logits(base))

    def _read_best(self):
        best = self.state.get("best")
        if not best:
            return None
        return Candidate(best["label"], best["val_accuracy"],
                         load_weights(self.dir.path(best["file"])))

    # -- helpers ---------------------------------------------------------------

    def _train(self, model, start, epochs):
        """The dense baseline's epochs (stages train through `run_stage`, with the same monitor)."""
        monitor = _RunMonitor(self, "baseline: dense training")
        for epoch in range(start, epochs):
            monitor.epoch_begin(model, "baseline", epoch, epochs)
            model.fit(
                self.splits.train_for_seed(_epoch_seed(self.recipe.seed, ("baseline",), epoch)),
                validation_data=self.splits.validation,
                epochs=1, verbose=self.verbose, shuffle=False,
                callbacks=[monitor.stop, _Progbar(), self.board, *self.callbacks],
            )
            monitor.epoch_end(model, "baseline", epoch + 1)

    def commit(self, model, position):
        """Checkpoints `model` at `position`, then drops best-candidate files no longer named."""
        self.dir.commit_checkpoint(model, self.state, position)
        self._drop_stale_best()

    def _drop_stale_best(self):
        """Deletes the best-candidate files the written state no longer names."""
        if not writes_enabled():
            return
        keep = (self.state.get("best") or {}).get("file")
        for path in self.dir.path(CHECKPOINTS).glob("best-*.npz"):
            if f"{CHECKPOINTS}/{path.name}" != keep:
                path.unlink(missing_ok=True)

    def _global_epoch(self, position, epoch):
        """The epoch's index in the whole run: the step of its TensorBoard values."""
        done = self.recipe.baseline.epochs if self.recipe.baseline else 0
        if position[0] == "baseline":
            return epoch
        for stage in self.recipe.stages[: position[0]]:
            done += stage.admm.epochs + stage.retrain.epochs
        if position[1] == RETRAIN:
            done += self.recipe.stages[position[0]].admm.epochs
        return done + epoch

    def _log_stage(self, index, stage, model, record):
        """Stage accuracies and the compression report, in TensorBoard."""

        step = self._global_epoch((index, RETRAIN), stage.retrain.epochs)
        self.board.write_scalars({"stages/val_accuracy": record["val_accuracy"],
                                  "stages/test_accuracy": record["test_accuracy"]},
                                 step=index + 1)
        self.board.write_report(report.build_report(model), step=step, name=stage.name)

    def _usable_checkpoint(self):
        """On resume: the model of the newest kept checkpoint that verifies and loads.

        When it is an older one than the state's latest, the state's position
        moves back to it (the epochs after it are rerun); None when the run
        continues from the start of the work in progress.
        """
        if not self.state.get("position"):
            return None
        done = self.state["completed_stages"]
        in_baseline = done == 0 and not self.dir.path(BASELINE).exists()
        checkpoint, model = self.dir.usable_checkpoint(
            self.state, functools.partial(load_file, safe_mode=self.recipe.model.safe_mode),
            part=("baseline",) if in_baseline else (done,), on_fallback=self.emit,
        )
        if checkpoint is None:  # the starting model holds the previous checkpoint's work
            self.state.update(position=None, checkpoint=None)
            stages = self.recipe.stages
            self.emit(f"resuming from the start of stage {done + 1}/{len(stages)} "
                      f"{stages[done].name}")
        else:
            self.state.update(position=list(checkpoint.position), checkpoint=checkpoint.path)
        return model

    def _resume_model(self, prefix):
        position = self.state.get("position") or []
        if tuple(position[: len(prefix)]) != tuple(prefix) or self._checkpoint is None:
            return None
        model, self._checkpoint = self._checkpoint, None
        self.emit(f"resuming from {self.state['checkpoint']}")
        return model, int(position[-1])

    def _accuracies(self, model):
        return {"val_accuracy": evaluate_accuracy(model, self.splits.validation),
                "test_accuracy": evaluate_accuracy(model, self.splits.test)}

    def _previous_accuracy(self):
        if self.history["stages"]:
            return self.history["stages"][-1]["test_accuracy"]
        return self.history["baseline"]["test_accuracy"]

    def _read_history(self):
        path = self.dir.path(HISTORY)
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        return {"recipe": self.recipe.name, "baseline": None, "stages": []}

    def _write_report(self, model):
        built = report.build_report(
            model,
            stages=[{"name": s["name"], "accuracy_before": s["accuracy_before"],
                     "accuracy_after": s["accuracy_after"],
                     "start_val_accuracy": s.get("start_val_accuracy"),
                     "chosen": s.get("chosen")} for s in self.history["stages"]],
            baseline_accuracy=self.history["baseline"]["test_accuracy"],
        )
        write_text(self.dir.path(REPORT_MD), report.render_markdown(built))
        write_text(self.dir.path(REPORT_JSON), report.to_json(built))


def _apply_settings(model, stage, phase, steps, jit_compile):
    """A changed recipe (`--allow-changes`): the resumed phase's optimizer and rho."""
    spec = getattr(stage, phase)
    if phase == ADMM:
        model.set_rho_schedule(spec.rho, phase_multiplier(spec, steps), spec.rho_max)
    compile_classifier(model, spec.optimizer.build(spec.epochs, steps), jit_compile)


def _check_model_fits(recipe, model, splits):
    """Before any training: the data's input shape, and every stage's layer patterns."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) == 1 and inputs[0].shape[1:] is not None:
        expected = tuple(inputs[0].shape[1:])
        received = tuple(splits.input_shape)
        if len(expected) != len(received) or any(
            e is not None and e != r for e, r in zip(expected, received, strict=True)
        ):
            raise DataError(
                f"data: the model '{model.name}' takes inputs of shape {expected}, the data set "
                f"'{splits.name}' has examples of shape {received}: use a model built for this "
                "data, or other data"
            )
    check_against_model(recipe, model)


def _scratch():
    """A throw-away log directory for a worker that does not write the run directory."""
    return tempfile.mkdtemp(prefix="tfadmm-worker-logs-")


def _trainer_for(model):
    """The model to train and evaluate a dense model with.

    Under MultiWorkerMirroredStrategy that is an `ADMMModel` with no kernels
    (see `tfadmm.backend.multi_worker`: Keras' own `fit` fails there); the
    model itself everywhere else.
    """

    if lazy_tensorflow.is_loaded() and is_multi_worker(tf.distribute.get_strategy()):
        return ADMMModel(model, [])
    return model


def _plain(model):
    return strip(model) if isinstance(model, ADMMModel) else model


def _cardinality(dataset):
    steps = batch_count(dataset)
    if steps <= 0:
        raise DataError(
            "data: the training set has an unknown or infinite number of batches. Received: "
            f"cardinality={steps}"
        )
    return steps


def _epoch_seed(seed, position, epoch):
    """A seed for one epoch's data that depends only on (seed, stage, phase, epoch).

    So a resumed run sees the same batches as an uninterrupted one.
    """
    phase = {"baseline": 1, ADMM: 2, RETRAIN: 3}[position[-1]]
    stage = position[0] if isinstance(position[0], int) else -1
    return (seed * 1_000_003 + (stage + 1) * 10_007 + phase * 1_009 + epoch) % (2**31)
