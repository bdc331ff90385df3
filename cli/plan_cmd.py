"""`tfadmm plan RECIPE`: every stage's per-layer sparsities, before anything trains."""

from __future__ import annotations

import pathlib

import click

from tfadmm_cli.errors import friendly_errors
from tfadmm_cli.run_cmd import RECIPE


@click.command("plan")
@click.argument("recipe", type=RECIPE)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe value before planning. Repeatable.")
@click.option("--logdir", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Also write the sensitivity curves to TensorBoard in this directory.")
@click.option("--png", type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Also draw each stage's sensitivity curves to a PNG in this directory "
                   "(NN-STAGE-sensitivity.png; needs matplotlib: pip install 'tfadmm[plot]').")
@friendly_errors
def plan(recipe, overrides, logdir, png):
    """Print each stage's sparsity and kept weights per layer, and the overall rate.

    Loads the recipe's model and data (as `tfadmm run --dry-run` does); a stage
    with `allocate:` runs its analysis and prints the sensitivity curves.

    \b
    Examples:
      tfadmm plan recipes/lenet5_fashion_mnist_allocate.yaml
      tfadmm plan my.yaml --set stages.0.allocate.rate=100 --logdir runs/plan
      tfadmm plan my.yaml --png plots
    """
    from tfadmm.recipes import load_recipe
    from tfadmm.recipes.plan import plan_recipe, render_plan

    parsed = load_recipe(recipe, overrides)
    result = plan_recipe(parsed, on_event=lambda line: click.echo(f"[tfadmm] {line}"),
                         logdir=logdir, png=png)
    click.echo(render_plan(result).rstrip("\n"))
