"""`tfadmm`: compress Keras models with progressive ADMM from the command line."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_tensorflow_quietly():
    """TensorFlow's C++ start-up lines bypass its log level; hide them from users."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    except ImportError:
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)  # TFDS warnings are not the user's errors


_import_tensorflow_quietly()

import click  # noqa: E402

from tfadmm.version import __version__  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tfadmm")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx, debug):
    """Compress Keras 3 models with progressive ADMM pruning and quantization.

    \b
    Examples:
      tfadmm run recipes/quickstart.yaml
      tfadmm validate recipes/*.yaml
      tfadmm plan recipes/quickstart.yaml
      tfadmm report runs/quickstart
    """
    ctx.obj = {"debug": debug}


# Subcommands live in their own modules and register here.
from tfadmm_cli.export_cmd import export  # noqa: E402
from tfadmm_cli.plan_cmd import plan  # noqa: E402
from tfadmm_cli.report_cmd import report  # noqa: E402
from tfadmm_cli.run_cmd import evaluate, run, validate  # noqa: E402

main.add_command(run)
main.add_command(validate)
main.add_command(report)
main.add_command(evaluate)
main.add_command(export)
main.add_command(plan)
