"""Checks of a recipe against its model and data, before anything trains."""

from __future__ import annotations

import math

from tfadmm.batch_count import batch_count
from tfadmm.compressible import find_compressible_layers
from tfadmm.data.specs import get_spec
from tfadmm.errors import RecipeError, TfadmmError
from tfadmm.recipes.building import build_model, load_data
from tfadmm.recipes.pruning_order import check_sparsity_grows, sparsity_of
from tfadmm.recipes.reader import Reader, format_path
from tfadmm.targets import match_layers, resolve_targets, winning_pattern


def _model_for(recipe):
    """The recipe's model, built for its dataset's known input shape and classes."""
    spec = get_spec(recipe.data.name)
    shape, classes = spec.input_shape, spec.num_classes
    try:
        return build_model(recipe, shape, classes)
    except TfadmmError as error:
        raise RecipeError(f"{recipe.source}: model: {error}") from None
    except (ValueError, TypeError) as error:
        raise RecipeError(f"{recipe.source}: model: cannot build the model: {error}") from None


def check_against_model(recipe, model=None):
    """Resolves every stage's targets on the recipe's model.

    Catches patterns that match no layer, layers without a kernel, kernel
    shapes a constraint cannot take, and a layer whose sparsity would decrease
    from one stage to the next.

    Args:
        recipe: a `Recipe`.
        model: the model to check against; built from the recipe if None.

    Returns:
        The model.

    Raises:
        RecipeError: every problem, each with the file, line and path.
    """
    model = model if model is not None else _model_for(recipe)
    reader = Reader(recipe.source, recipe.lines)
    check_sparsity_grows(reader, (
        (stage.name, _resolved_targets(reader, model, index, stage))
        for index, stage in enumerate(recipe.stages)))
    if reader.errors:
        raise RecipeError("\n".join(reader.errors))
    return model


def _resolved_targets(reader, model, index, stage):
    """A stage's targets per layer, for `check_sparsity_grows`; problems go to `reader`."""
    if stage.allocate is not None:
        _check_allocated_layers(reader, model, index, stage.allocate)
        return []
    valid = True
    for pattern, constraint in stage.targets:
        path = ("stages", index, "targets", pattern)
        try:
            resolve_targets(model, {pattern: constraint})
        except ValueError as error:
            message = str(error).split(": ", 1)[-1]
            reader.errors.append(f"{reader.where(path)}: {format_path(path)}: {message}")
            valid = False
    if not valid:
        return []
    patterns = stage.target_dict
    return [
        (layer, ("stages", index, "targets", winning_pattern(layer, patterns), "sparsity"),
         constraint, f" for layer '{layer}'")
        for (layer, _), (constraint, _) in resolve_targets(model, patterns).items()
    ]


def _check_allocated_layers(reader, model, index, spec):
    """Each of `allocate.layers` matches a compressible layer."""
    layers = find_compressible_layers(model)
    for number, pattern in enumerate(spec.layers or ()):
        if not match_layers(model, [pattern]):
            path = ("stages", index, "allocate", "layers", number)
            reader.errors.append(
                f"{reader.where(path)}: {format_path(path)}: the pattern {pattern!r} matches no "
                f"compressible layer. Compressible layers: {', '.join(layers) or '(none)'}"
            )
    if not layers:
        path = ("stages", index, "allocate")
        reader.errors.append(f"{reader.where(path)}: {format_path(path)}: the model has no "
                             "compressible layer to allocate to")


def planned_rates(recipe, model):
    """The pruning rate each stage aims at: weights of the pruned kernels / those kept.

    Kernels keep their sparsity from earlier stages; a stage with no pruning
    target repeats the rate before it (None when nothing is pruned yet). A
    stage that allocates counts its layers as pruned by its rate (the per-layer
    split is made at run time).
    """
    kept = {}
    rates = []
    for stage in recipe.stages:
        if stage.allocate is not None:
            chosen = match_layers(model, stage.allocate.layers or ["*"])
            for layer, kernels in find_compressible_layers(model).items():
                for kernel, variable in kernels.items() if layer in chosen else ():
                    size = math.prod(variable.shape)
                    kept[(layer, kernel)] = (size, size / stage.allocate.rate)
            total = sum(size for size, _ in kept.values())
            rates.append(total / sum(k for _, k in kept.values()))
            continue
        for (layer, kernel), (constraint, variable) in resolve_targets(
            model, stage.target_dict
        ).items():
            sparsity = sparsity_of(constraint)
            if sparsity is not None:
                size = math.prod(variable.shape)
                kept[(layer, kernel)] = (size, size - math.floor(sparsity * size))
        total = sum(size for size, _ in kept.values())
        remaining = sum(k for _, k in kept.values())
        rates.append(total / remaining if remaining else None)
    return rates


def dry_run(recipe):
    """Builds the model and the data pipeline, runs one batch; returns a summary line."""
    splits = load_data(recipe)
    model = build_model(recipe, splits.input_shape, splits.num_classes)
    check_against_model(recipe, model)
    x, _ = next(iter(splits.train))
    outputs = model(x, training=False)
    return (
        f"{recipe.source}: ok: model '{model.name}' ({model.count_params():,} parameters) on "
        f"'{splits.name}' {tuple(splits.input_shape)} -> {tuple(outputs.shape[1:])}, "
        f"{batch_count(splits.train)} training batches, {len(recipe.stages)} stages"
    )
