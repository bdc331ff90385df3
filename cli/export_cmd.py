"""`tfadmm export PATH`: write a compressed model in a format whose size drops."""

from __future__ import annotations

import pathlib

import click

from tfadmm.exporting import FORMATS
from tfadmm_cli.errors import friendly_errors


@click.command("export")
@click.argument("path", type=click.Path(exists=True, path_type=pathlib.Path))
@click.option(
    "--format", "format_", type=click.Choice(FORMATS), default="savedmodel",
    show_default=True, help="What to write.",
)
@click.option(
    "--output", "-o", required=True, type=click.Path(path_type=pathlib.Path),
    help="The folder (savedmodel) or file (keras, tflite) to write.",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option(
    "--recipe", "recipe_path", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    help="The recipe whose data section tells the input normalisation.  [default: a run "
         "directory's own recipe.yaml]",
)
@click.option(
    "--include-preprocessing", is_flag=True,
    help="Bake the data pipeline's normalisation into serving_default (savedmodel): it then "
         "takes raw pixel values in [0, 255].",
)
@click.option(
    "--shrink", is_flag=True,
    help="Remove the filters and channels that structured pruning (filters:, channels:) "
         "made unnecessary: a smaller, faster model with the same outputs.",
)
@friendly_errors
def export(path, format_, output, force, recipe_path, include_preprocessing, shrink):
    """Export the model at PATH (a .keras file or a run directory).

    The SavedModel stores pruned and quantized kernels compactly and serves
    `serving_default` with TensorFlow alone; its input contract is printed.
    """
    from tfadmm.errors import UsageError
    from tfadmm.exporting import export as export_model
    from tfadmm.recipes.run_directory import RECIPE as RECIPE_FILE
    from tfadmm.recipes.run_directory import input_normalization, load_model

    if output.exists() and not force:
        raise click.BadParameter(
            f"'{output}' already exists; pass --force to replace it.", param_hint="--output"
        )
    dataset, normalization = input_normalization(path, recipe_path)
    if include_preprocessing and normalization is None:
        raise UsageError(
            f"export: --include-preprocessing needs the data's normalisation: expected "
            f"--recipe, or a run directory with its {RECIPE_FILE}. Received: {path}"
        )
    result = export_model(
        load_model(path), output, format_, overwrite=force,
        preprocessing=normalization if include_preprocessing else None, shrink=shrink,
    )
    click.echo(f"Wrote {result.format} to {result.path}: {result.bytes:,} bytes")
    if result.dense_savedmodel_bytes:
        click.echo(
            f"dense SavedModel: {result.dense_savedmodel_bytes:,} bytes "
            f"({result.ratio_to_dense:.2f}x this export)"
        )
    click.echo(f"theoretical minimum: {result.theoretical_bytes:,} bytes")
    for serving in result.inputs:
        click.echo(f"serving_default input '{serving.name}': {serving.dtype} {serving.shape}")
    if result.preprocessing is not None:
        click.echo(f"expects: raw pixel values in [0, 255]; serving_default applies the "
                   f"{dataset} pipeline's {result.preprocessing.describe()}")
    elif result.inputs and normalization is not None:
        click.echo(f"expects: the {dataset} pipeline's {normalization.describe()} "
                   "(--include-preprocessing bakes it in)")
    elif result.inputs:
        click.echo("expects: inputs prepared as for training (pass --recipe to print the "
                   "normalisation, or to bake it in with --include-preprocessing)")
