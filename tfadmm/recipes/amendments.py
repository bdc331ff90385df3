"""`--resume --allow-changes`: which recipe changes a run in progress can take."""

from __future__ import annotations

from tfadmm.admm_model import RETRAIN
from tfadmm.errors import TfadmmError
from tfadmm.recipes.loader import parse_recipe
from tfadmm.recipes.run_directory import BASELINE, RECIPE


def check_changes(recipe, directory, old_text):
    """Raises unless `recipe` differs from the run's own only in work not yet done.

    Completed phases, the model, the data and the seed must stay the same; the
    phase in progress may change its epochs, optimizer and rho (not its
    targets), later stages anything.

    Args:
        recipe: the new `Recipe`.
        directory: the run's `RunDirectory`.
        old_text: the run's recipe file (`run_directory.RECIPE`).

    Raises:
        TfadmmError: naming what the new recipe would change of work already done.
    """
    old = parse_recipe(old_text, RECIPE)
    state = directory.read_state()
    position, done = state.get("position") or [], state.get("completed_stages", 0)
    changed = [k for k in ("model", "data", "seed") if getattr(old, k) != getattr(recipe, k)]
    baseline_done = done > 0 or (position and position[0] != "baseline") or (
        directory.path(BASELINE).exists())
    if baseline_done and old.baseline != recipe.baseline:
        changed.append("baseline")
    if len(recipe.stages) < done:
        changed.append("stages (fewer than the completed ones)")
    for index, (before, after) in enumerate(zip(old.stages, recipe.stages, strict=False)):
        if index < done and before != after:
            changed.append(f"stages[{index}] (completed)")
        elif index == done and position[:1] == [index]:
            same = before.targets == after.targets and before.allocate == after.allocate
            same = same and before.keep_previous == after.keep_previous
            if position[1] == RETRAIN:
                same = same and before.admm == after.admm
            if not same:
                changed.append(f"stages[{index}] (its targets or finished ADMM phase)")
    if changed:
        raise TfadmmError(
            f"{directory.root}: --allow-changes accepts changes to work not yet done; this "
            f"recipe changes what the run already did: {', '.join(changed)}"
        )
