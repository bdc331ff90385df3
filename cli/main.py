"""`tfadmm`: compress Keras models with progressive ADMM from the command line."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402

from tfadmm.version import __version__  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tfadmm")
def main():
    """Compress Keras 3 models with progressive ADMM pruning and quantization.

    \b
    Examples:
      tfadmm run recipes/quickstart.yaml
      tfadmm validate recipes/*.yaml
    """


# Subcommands live in their own modules and register here.
from .export_cmd import export  # noqa: E402
from .report_cmd import report  # noqa: E402

main.add_command(report)
main.add_command(export)
