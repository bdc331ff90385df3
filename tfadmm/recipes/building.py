"""What a recipe's `model` and `data` sections become: the runner's, the checks' and the
planner's one way to build the model and load the data."""

from __future__ import annotations

from tfadmm import data, models


def load_data(recipe):
    """The recipe's dataset splits (`tfadmm.data.load` with the `data` section)."""
    spec = recipe.data
    return data.load(
        spec.name, source=spec.source, path=spec.path, batch_size=spec.batch_size,
        validation_split=spec.validation_split, take=spec.take, seed=recipe.seed,
        augment=spec.augment, normalize=spec.normalize,
    )


def build_model(recipe, input_shape=None, num_classes=None):
    """The recipe's starting model: a zoo model, a `.keras` file or a function."""
    spec = recipe.model
    if spec.zoo is not None:
        args = dict(spec.args)
        if input_shape is not None:
            args.setdefault("input_shape", tuple(input_shape))
        if num_classes is not None:
            args.setdefault("num_classes", num_classes)
        return models.get(spec.zoo, **args)
    return models.load(spec.file or spec.function, safe_mode=spec.safe_mode)
