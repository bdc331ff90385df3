"""`tfadmm run`, `tfadmm validate`, `tfadmm evaluate`: recipes from the command line."""

from __future__ import annotations

import pathlib
import sys

import click

from tfadmm.recipes.run_directory import (
    KEEP_CHECKPOINTS,
    LOGS,
    REPORT_MD,
    keep_checkpoints_problem,
)
from tfadmm_cli.errors import friendly_errors

RECIPE = click.Path(exists=True, dir_okay=False, path_type=pathlib.Path)


def _keep_checkpoints(ctx, param, value):
    problem = keep_checkpoints_problem(value)
    if problem:
        raise click.BadParameter(problem)
    return value


@click.command()
@click.argument("recipe", type=RECIPE)
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Run directory.  [default: runs/<recipe name>]")
@click.option("--resume", is_flag=True, help="Continue the run in the output directory.")
@click.option("--force", is_flag=True, help="Clear a non-empty output directory first.")
@click.option("--allow-changes", is_flag=True,
              help="With --resume: accept a changed recipe (e.g. --set a lower learning rate or "
                   "rho) for the work not yet done.")
@click.option("--keep-checkpoints", type=int, default=KEEP_CHECKPOINTS, show_default=True,
              metavar="N", callback=_keep_checkpoints,
              help="Keep the last N checkpoints (each verified by its sha256 on --resume; a "
                   "damaged one falls back to the previous).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe value, e.g. --set stages.0.admm.epochs=3 "
                   "(a stage may be named: stages.prune.admm.epochs=3). Repeatable.")
@click.option("--quiet", "-q", is_flag=True,
              help="One log line per epoch, no progress bar (the default when stdout is not a "
                   "terminal).")
@click.option("--dry-run", is_flag=True,
              help="Validate, build the model and the data pipeline, then stop.")
@friendly_errors
def run(recipe, output, resume, force, allow_changes, keep_checkpoints, overrides, quiet,
        dry_run):
    """Run a compression RECIPE: baseline, then every stage, into a run directory.

    \b
    Examples:
      tfadmm run recipes/quickstart.yaml
      tfadmm run recipes/lenet5_mnist_246x.yaml --set stages.0.admm.epochs=2
      tfadmm run recipes/quickstart.yaml --output runs/q --resume
    """
    from tfadmm.recipes import load_recipe, run_recipe
    from tfadmm.recipes.checks import dry_run as check_dry_run
    from tfadmm.recipes.run_directory import RunDirectory
    from tfadmm.recipes.stability import stability_warnings

    if resume and force:
        raise click.UsageError("--resume and --force exclude each other.")
    if allow_changes and not resume:
        raise click.UsageError("--allow-changes goes with --resume.")
    parsed = load_recipe(recipe, overrides)
    for warning in stability_warnings(parsed):
        click.echo(f"Warning: {warning}", err=True)
    output = output or pathlib.Path("runs") / parsed.name
    if dry_run:
        click.echo(check_dry_run(parsed))
        return
    RunDirectory(output).check_can_start(resume=resume, force=force)
    click.echo(f"run directory: {output}")
    click.echo(f"watch it with: tensorboard --logdir {output / LOGS}")
    result = run_recipe(parsed, output, resume=resume, force=force,
                        on_event=lambda line: click.echo(f"[tfadmm] {line}"),
                        verbose=2 if quiet or not sys.stdout.isatty() else 1,
                        allow_changes=allow_changes, keep_checkpoints=keep_checkpoints)
    report = result.directory / REPORT_MD
    if report.exists():
        click.echo(report.read_text(encoding="utf-8"))
    click.echo(f"final model: {result.model_path}")


@click.command()
@click.argument("recipes", nargs=-1, required=True, type=RECIPE)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe value before validating. Repeatable.")
@click.option("--no-model", is_flag=True,
              help="Skip building each recipe's model to check its layer patterns.")
@friendly_errors
def validate(recipes, overrides, no_model):
    """Check RECIPES without running them: every problem, with file and line.

    Builds each recipe's model (not its data) so that layer patterns that match
    nothing are caught too.
    """
    from tfadmm.errors import RecipeError
    from tfadmm.recipes import load_recipe
    from tfadmm.recipes.checks import check_against_model, planned_rates
    from tfadmm.recipes.stability import stability_warnings

    problems = []
    for path in recipes:
        try:
            recipe = load_recipe(path, overrides)
            for warning in stability_warnings(recipe):
                click.echo(f"Warning: {warning}", err=True)
            plan = ""
            if not no_model:
                rates = planned_rates(recipe, check_against_model(recipe))
                plan = "; pruning rate by stage: " + ", ".join(
                    (f"{stage.name} {rate:.1f}x" if rate else f"{stage.name} -")
                    + (" (allocated at run time)" if stage.allocate else "")
                    for stage, rate in zip(recipe.stages, rates, strict=True)
                )
        except RecipeError as error:
            problems.append(str(error))
            continue
        click.echo(f"{path}: ok ({len(recipe.stages)} stages{plan})")
    if problems:
        raise RecipeError("\n".join(problems))


@click.command()
@click.argument("model", type=click.Path(exists=True, path_type=pathlib.Path))
@click.option("--recipe", "recipe_path", type=RECIPE,
              help="The recipe whose data section names the evaluation set.  [default: a run "
                   "directory's own recipe.yaml]")
@click.option("--unsafe", is_flag=True,
              help="Load the model with safe_mode=False (runs code stored in the file).")
@friendly_errors
def evaluate(model, recipe_path, unsafe):
    """Evaluate MODEL (a .keras file or a run directory) on a recipe's test set."""
    from tfadmm.errors import UsageError
    from tfadmm.models import load
    from tfadmm.recipes import evaluate as evaluate_model
    from tfadmm.recipes import load_data, load_recipe
    from tfadmm.recipes.run_directory import RECIPE as RECIPE_FILE
    from tfadmm.recipes.run_directory import model_file

    if recipe_path is None:
        recipe_path = model / RECIPE_FILE
        if not model.is_dir() or not recipe_path.is_file():
            raise UsageError(
                f"evaluate: expected --recipe, or a run directory with its {RECIPE_FILE}. "
                f"Received: {model}"
            )
    recipe = load_recipe(recipe_path)
    keras_model = load(model_file(model), safe_mode=not unsafe)
    splits = load_data(recipe)
    click.echo(f"test accuracy: {evaluate_model(keras_model, splits.test):.4f}")
