"""`tfadmm report PATH`: what compression did to a saved model."""

from __future__ import annotations

import pathlib

import click

from tfadmm_cli.errors import friendly_errors

_RENDERERS = ("table", "json", "markdown")


@click.command("report")
@click.argument("path", type=click.Path(exists=True, path_type=pathlib.Path))
@click.option(
    "--format", "format_", type=click.Choice(_RENDERERS), default="table", show_default=True,
    help="How to print the report.",
)
@friendly_errors
def report(path, format_):
    """Report the sparsity, bits and storage of every kernel of a model.

    PATH is a .keras file or a run directory (model.keras, and history.json
    for the accuracy of each stage).
    """
    from tfadmm import report as reporting
    from tfadmm.recipes.run_directory import load_history, load_model

    baseline, stages = load_history(path)
    record = reporting.build_report(load_model(path), stages=stages, baseline_accuracy=baseline)
    render = {
        "table": reporting.render_table,
        "json": reporting.to_json,
        "markdown": reporting.render_markdown,
    }[format_]
    click.echo(render(record).rstrip("\n"))
