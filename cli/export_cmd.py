"""`tfadmm export PATH`: write a compressed model in a format whose size drops."""

from __future__ import annotations

import pathlib

import click

from tfadmm_cli.errors import friendly_errors

_FORMATS = ("savedmodel", "keras", "tflite")


@click.command("export")
@click.argument("path", type=click.Path(exists=True, path_type=pathlib.Path))
@click.option(
    "--format", "format_", type=click.Choice(_FORMATS), default="savedmodel",
    show_default=True, help="What to write.",
)
@click.option(
    "--output", "-o", required=True, type=click.Path(path_type=pathlib.Path),
    help="The folder (savedmodel) or file (keras, tflite) to write.",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@friendly_errors
def export(path, format_, output, force):
    """Export the model at PATH (a .keras file or a run directory).

    The SavedModel stores pruned and quantized kernels compactly and serves
    `serving_default` with TensorFlow alone.
    """
    from tfadmm.export import export as export_model
    from tfadmm.model_io import load_model

    if output.exists() and not force:
        raise click.BadParameter(
            f"'{output}' already exists; pass --force to replace it.", param_hint="--output"
        )
    result = export_model(load_model(path), output, format_, overwrite=force)
    click.echo(f"Wrote {result.format} to {result.path}: {result.bytes:,} bytes")
    if result.dense_savedmodel_bytes:
        click.echo(
            f"dense SavedModel: {result.dense_savedmodel_bytes:,} bytes "
            f"({result.ratio_to_dense:.2f}x this export)"
        )
    click.echo(f"theoretical minimum: {result.theoretical_bytes:,} bytes")
