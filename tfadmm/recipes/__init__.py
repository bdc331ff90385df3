"""Recipes: a whole progressive compression plan in one YAML file, and its runner."""

from tfadmm.recipes.building import build_model, load_data
from tfadmm.recipes.loader import apply_overrides, load_recipe, parse_recipe
from tfadmm.recipes.runner import RunResult, run_recipe
from tfadmm.recipes.schema import (
    ADMMSpec,
    DataSpec,
    ModelSpec,
    OptimizerSpec,
    Recipe,
    RetrainSpec,
    Stage,
    TrainSpec,
)
from tfadmm.stage import evaluate_accuracy as evaluate  # the recipes' name for it

__all__ = [
    "ADMMSpec",
    "DataSpec",
    "ModelSpec",
    "OptimizerSpec",
    "Recipe",
    "RetrainSpec",
    "RunResult",
    "Stage",
    "TrainSpec",
    "apply_overrides",
    "build_model",
    "evaluate",
    "load_data",
    "load_recipe",
    "parse_recipe",
    "run_recipe",
]
