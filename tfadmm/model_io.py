"""Reading what a compression run leaves behind: `model.keras` and `history.json`.

A run directory holds `model.keras` (the final, stripped model) and optionally
`history.json`:

    {"baseline_accuracy": 0.991,
     "stages": [{"name": "prune", "accuracy_before": 0.991, "accuracy_after": 0.990}]}
"""

from __future__ import annotations

import json
import os

from tfadmm.data.specs import Normalization
from tfadmm.errors import ModelError
from tfadmm.recipes.loader import load_recipe
from tfadmm.recipes.run_directory import RECIPE, STATE

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"


def model_file(path):
    """The `.keras` file of `path`: the file itself, or a run directory's `model.keras`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        folder, path = path, os.path.join(path, MODEL_FILE)
        if os.path.isfile(path):
            return path
        if os.path.isfile(os.path.join(folder, STATE)):
            raise ModelError(
                f"{folder}: the run has not finished (no {MODEL_FILE} yet): continue it with "
                "`tfadmm run RECIPE --output DIR --resume`, or pass a .keras file"
            )
        raise ModelError(
            f"{folder}: not a run directory (no {MODEL_FILE}, no {STATE}): expected a .keras "
            "file or the directory of a finished `tfadmm run`"
        )
    if not path.endswith(".keras"):
        raise ModelError(
            f"Expected a .keras file or a run directory. Received: {path}"
        )
    if not os.path.isfile(path):
        raise ModelError(f"Model file not found. Received: {path}")
    return path


def load_model(path):
    """Loads the model at `path` (a `.keras` file or a run directory), in safe mode.

    Raises:
        ModelError: no model there, or a file Keras cannot load.
    """
    import tfadmm  # noqa: F401  (registers tfadmm's classes for wrapped models)
    from tfadmm.models.loading import load_file

    return load_file(model_file(path), safe_mode=True, compile=False)


def input_normalization(path, recipe=None):
    """`(dataset, Normalization)`: what the inputs of the model at `path` went through.

    Read from `recipe` (a recipe file's path), else from the run directory's
    own `recipe.yaml`; `(None, None)` for a `.keras` file without a recipe.

    Raises:
        RecipeError: a recipe that does not validate.
    """
    if recipe is None and os.path.isfile(os.path.join(os.fspath(path), RECIPE)):
        recipe = os.path.join(os.fspath(path), RECIPE)
    if recipe is None:
        return None, None
    data = load_recipe(recipe).data
    return data.name, Normalization.of_dataset(data.name, data.normalize)


def load_history(path):
    """`(baseline_accuracy, stages)` from a run directory's `history.json`.

    The baseline is `baseline_accuracy`, or else `baseline.test_accuracy` (as
    the recipe runner writes it). Returns `(None, [])` for a `.keras` file or a
    run without history; the stages come as
    `{"stage", "accuracy_before", "accuracy_after"}` dicts for `tfadmm.build_report`.

    Raises:
        ModelError: a `history.json` that is not valid JSON of that shape.
    """
    path = os.fspath(path)
    file = os.path.join(path, HISTORY_FILE)
    if not os.path.isdir(path) or not os.path.isfile(file):
        return None, []
    try:
        with open(file, encoding="utf-8") as f:
            data = json.load(f)
        stages = [
            {
                "stage": stage["name"],
                "accuracy_before": stage.get("accuracy_before"),
                "accuracy_after": stage.get("accuracy_after"),
            }
            for stage in data.get("stages", [])
        ]
        baseline = data.get("baseline_accuracy")
        if baseline is None and isinstance(data.get("baseline"), dict):
            # The recipe runner writes {"baseline": {"test_accuracy": ...}}.
            baseline = data["baseline"].get("test_accuracy")
        return baseline, stages
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ModelError(f"Invalid {file}: {type(error).__name__}: {error}") from error
