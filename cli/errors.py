"""Turning library errors into one clear line and an exit code, at the boundary."""

from __future__ import annotations

import functools

import click

from tfadmm.errors import RecipeError, TfadmmError, UsageError


class RecipeProblem(click.ClickException):
    """A recipe or usage problem: exit code 2, one line (no usage text)."""

    exit_code = 2


def friendly_errors(command):
    """Decorates a command: bad input -> `Error: ...` on stderr, no traceback.

    `RecipeError` and `UsageError` exit with 2 (bad recipe or usage), other
    tfadmm errors with 1 (a run that failed). With the root `--debug` flag the
    original exception and its traceback come through.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        debug = (click.get_current_context().find_root().obj or {}).get("debug", False)
        try:
            return command(*args, **kwargs)
        except (RecipeError, UsageError) as error:
            if debug:
                raise
            raise RecipeProblem(str(error)) from None
        except (TfadmmError, OSError) as error:
            if debug:
                raise
            raise click.ClickException(str(error)) from None
        except click.ClickException:
            raise
        except Exception as error:  # noqa: BLE001 - the boundary: one line, not a traceback
            if debug:
                raise
            raise click.ClickException(
                f"unexpected {type(error).__name__}: {error} (rerun with --debug for the "
                "traceback, and please report it)"
            ) from None
        except KeyboardInterrupt:
            if debug:
                raise
            raise click.ClickException(
                "interrupted; every completed epoch is saved: continue with --resume"
            ) from None

    return wrapper
