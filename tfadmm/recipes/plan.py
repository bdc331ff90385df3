"""`plan_recipe`: every stage's per-layer sparsities before anything trains.

Loads the recipe's model and data as `tfadmm run --dry-run` does. A stage
with `allocate:` runs its analysis on the model as the plan has pruned it so
far (one-shot magnitude pruning of the stages before: their zeros are known,
their retraining is not), so later stages see what earlier ones removed.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import keras

from tfadmm.allocation import Allocation, layer_kept, plan_allocation
from tfadmm.callbacks.tensorboard import ADMMTensorBoard
from tfadmm.compressible import find_compressible_layers
from tfadmm.constraints.sparsity import project_sparsity
from tfadmm.errors import RecipeError
from tfadmm.recipes.building import build_model, load_data
from tfadmm.recipes.checks import check_against_model
from tfadmm.recipes.pruning_order import sparsity_of
from tfadmm.recipes.reader import Reader, format_path
from tfadmm.recipes.run_directory import SENSITIVITY_PNG, atomic_write, stage_dir_name
from tfadmm.sensitivity_plot import MATPLOTLIB_MISSING, can_draw, draw_allocation
from tfadmm.targets import resolve_targets


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """One compressible layer after a stage: its weights, sparsity and weights kept."""

    name: str
    weights: int
    sparsity: float
    kept: int


@dataclasses.dataclass(frozen=True)
class StagePlan:
    """One stage: every compressible layer after it, and the overall pruning rate.

    Attributes:
        name: the stage's name.
        layers: a `LayerPlan` per compressible layer, in model order.
        pruned_weights: the weights of the layers pruned so far.
        kept: how many of those they keep.
        allocation: the stage's `tfadmm.Allocation` (`allocate:` stages), else None.
    """

    name: str
    layers: tuple
    pruned_weights: int
    kept: int
    allocation: Allocation | None = None

    @property
    def rate(self):
        """`pruned_weights / kept`: the overall pruning rate (None when nothing is pruned)."""
        return self.pruned_weights / self.kept if self.kept else None


@dataclasses.dataclass(frozen=True)
class RecipePlan:
    """What `tfadmm plan` prints: the stages' plans, and notes on what it assumed."""

    source: str
    model: str
    stages: tuple
    notes: tuple = ()


def png_name(index, name):
    """`01-prune-sensitivity.png`: the drawing of stage `index`'s (from 0) curves."""
    return f"{stage_dir_name(index, name)}-{SENSITIVITY_PNG}"


def plan_recipe(recipe, *, on_event=None, logdir=None, png=None):
    """Plans every stage of `recipe`, running the sensitivity analyses it asks for.

    Args:
        recipe: a `Recipe`.
        on_event: optional callable receiving progress lines.
        logdir: optional directory: the sensitivity curves go to TensorBoard there.
        png: optional directory: each stage's curves are drawn there (`png_name`), with
            matplotlib installed; without it an event says that none are drawn.

    Returns:
        A `RecipePlan`.

    Raises:
        RecipeError: layer patterns that match nothing, a rate the layers
            cannot reach (with the file, line and path).
        DataError, ModelError: data or a model that cannot be loaded.
    """
    emit = on_event or (lambda line: None)
    emit(f"loading data '{recipe.data.name}'")
    splits = load_data(recipe)
    model = build_model(recipe, splits.input_shape, splits.num_classes)
    check_against_model(recipe, model)
    board = ADMMTensorBoard(str(logdir)) if logdir is not None else None
    draws = png is not None and any(s.allocate is not None and s.allocate.method == "sensitivity"
                                    for s in recipe.stages)
    if draws and not can_draw():
        emit(f"{SENSITIVITY_PNG} not drawn: {MATPLOTLIB_MISSING}")
        draws = False
    layers = find_compressible_layers(model)
    sparsity = dict.fromkeys(layers, 0.0)
    pruned = set()
    stages = []
    for index, stage in enumerate(recipe.stages):
        allocation = None
        if stage.allocate is not None:
            spec = stage.allocate
            try:
                allocation = plan_allocation(
                    model, spec.rate, method=spec.method, data=splits.validation,
                    layers=spec.layers,
                    on_progress=lambda line, name=stage.name: emit(f"{name}: {line}"),
                )
            except ValueError as error:
                reader = Reader(recipe.source, recipe.lines)
                path = ("stages", index, "allocate")
                raise RecipeError(f"{reader.where(path)}: {format_path(path)}: {error}") from None
            wanted = dict(allocation.sparsities)
            if board is not None and allocation.curves is not None:
                board.write_sensitivity(allocation.curves, f"sensitivity/{stage.name}")
            if draws and allocation.curves is not None:
                path = pathlib.Path(png) / png_name(index, stage.name)
                atomic_write(path, lambda tmp, a=allocation, n=stage.name:
                             draw_allocation(a, tmp, name=n))
                emit(f"{stage.name}: curves drawn to {path}")
        else:
            wanted = {}
            for (layer, _), (constraint, _) in resolve_targets(model, stage.target_dict).items():
                if sparsity_of(constraint) is not None:
                    wanted[layer] = sparsity_of(constraint)
        for layer, value in wanted.items():
            sparsity[layer] = max(sparsity[layer], value)
            pruned.add(layer)
            for variable in layers[layer].values():
                weights = keras.ops.convert_to_numpy(variable)
                variable.assign(project_sparsity(weights, sparsity[layer]).values)
        rows = tuple(_layer_plan(name, kernels, sparsity[name]) for name, kernels in layers.items())
        total = sum(row.weights for row in rows if row.name in pruned)
        kept = sum(row.kept for row in rows if row.name in pruned)
        stages.append(StagePlan(stage.name, rows, total, kept, allocation))
    if board is not None:
        board.close()
    notes = ()
    if recipe.baseline is not None and recipe.baseline.epochs > 0 and any(
            s.allocate is not None for s in recipe.stages):
        notes = ("analysed on the model before its baseline training: `tfadmm run` analyses "
                 "the model each stage receives, so its allocation may differ",)
    return RecipePlan(recipe.source, model.name, tuple(stages), notes)


def _layer_plan(name, kernels, sparsity):
    sizes = [math.prod(variable.shape) for variable in kernels.values()]
    return LayerPlan(name, sum(sizes), sparsity, layer_kept(sizes, sparsity))


def render_plan(plan):
    """The plan as text: per stage a layer table and the rate, then any curves."""
    lines = [f"{plan.source}: model '{plan.model}', {len(plan.stages)} stages"]
    for number, stage in enumerate(plan.stages, 1):
        how = "targets"
        if stage.allocation is not None:
            how = f"{stage.allocation.method} allocation"
            if stage.allocation.curves is not None:
                how += f", analysed in {stage.allocation.curves.seconds:.1f} s"
        lines += ["", f"stage {number}/{len(plan.stages)} {stage.name} ({how})"]
        width = max(len("layer"), *(len(row.name) for row in stage.layers))
        lines.append(f"  {'layer':<{width}}  {'weights':>10}  {'sparsity':>8}  {'kept':>10}")
        for row in stage.layers:
            lines.append(f"  {row.name:<{width}}  {row.weights:>10,}  {row.sparsity:>8.4f}  "
                         f"{row.kept:>10,}")
        if stage.rate is None:
            lines.append("  overall rate: - (nothing pruned)")
        else:
            lines.append(f"  overall rate: {stage.rate:.1f}x ({stage.kept:,} of "
                         f"{stage.pruned_weights:,} weights of the pruned layers kept)")
        if stage.allocation is not None and stage.allocation.curves is not None:
            lines += render_curves(stage.allocation.curves)
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines) + "\n"


def render_curves(curves):
    """The sensitivity curves as table lines: validation loss (accuracy) per layer."""
    names = list(curves.loss)
    width = max(15, *(len(n) for n in names))
    lines = ["  sensitivity: validation loss (accuracy) with one layer pruned alone",
             "  " + f"{'sparsity':>8}" + "".join(f"  {n:>{width}}" for n in names)]
    rows = [(0.0, {n: (curves.base_loss, curves.base_accuracy) for n in names})]
    rows += [(s, {n: (curves.loss[n][i], curves.accuracy[n][i]) for n in names})
             for i, s in enumerate(curves.sparsities)]
    for s, cells in rows:
        lines.append("  " + f"{s:>8.3f}" + "".join(
            f"  {f'{cells[n][0]:.4f} ({cells[n][1]:.3f})':>{width}}" for n in names))
    return lines
