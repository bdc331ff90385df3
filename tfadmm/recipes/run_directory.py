"""The run directory: what a recipe run writes, always atomically.

    RUN/
      recipe.yaml          the resolved recipe (overrides applied)
      state.json           progress: the commit point of every checkpoint
      checkpoints/         the latest training checkpoint (.keras, with optimizer)
      baseline.keras       the dense model the stages start from
      stages/NN-NAME/      model.keras (ADMM model at the end of the stage), metrics.json
      history.json         baseline and per-stage accuracies
      model.keras          the final, stripped model (plain Keras)
      report.json, report.md
      logs/                TensorBoard event files

A file is first written beside its destination and then renamed over it, so
a crash or `kill -9` leaves either the old or the new file, never half of one.
`state.json` is renamed last: a checkpoint counts only once it names it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import pathlib
import shutil
import tempfile

from tfadmm.errors import TfadmmError, UsageError

STATE = "state.json"
RECIPE = "recipe.yaml"
_WRITES = contextvars.ContextVar("tfadmm_run_directory_writes", default=True)


@contextlib.contextmanager
def writing(enabled):
    """Within it, the writers below write only if `enabled` (False: a non-chief worker)."""
    token = _WRITES.set(bool(enabled))
    try:
        yield
    finally:
        _WRITES.reset(token)


def writes_enabled():
    return _WRITES.get()


def atomic_write(path, writer, *, suffix=""):
    """Calls `writer(tmp_path)`, then renames `tmp_path` over `path`.

    Args:
        path: the destination.
        writer: a function that writes a file at the path it is given.
        suffix: the temporary file's suffix (Keras wants `.keras`).
    """
    if not writes_enabled():
        return
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp = pathlib.Path(tmp)
    try:
        if suffix:  # some writers refuse an existing file or want their own suffix
            tmp.unlink()
            tmp = tmp.with_suffix("")  # drop ".tmp": `x.keras.tmp` -> `x.keras`
        writer(tmp)
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600: give it an ordinary file's mode
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError):  # disk full, unwritable: the old file stays intact
            raise TfadmmError(
                f"{path}: cannot write it ({error.strerror or error}); the previous version "
                "and the last good checkpoint are intact: free space or fix permissions, "
                "then continue with --resume."
            ) from error
        raise


def _file_mode():
    """The mode `open()` gives a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text(path, text):
    atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path, data):
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_model(model, path, include_optimizer=True):
    """Saves a Keras model as `.keras` atomically.

    Args:
        model: a Keras model.
        path: the destination.
        include_optimizer: False saves the architecture and weights only, as
            for a finished model: no optimizer state, no compile settings.
    """
    if include_optimizer:
        atomic_write(path, model.save, suffix=".keras")
        return
    optimizer, compiled = getattr(model, "optimizer", None), getattr(model, "compiled", False)
    model.optimizer, model.compiled = None, False
    try:
        atomic_write(path, model.save, suffix=".keras")
    finally:
        model.optimizer, model.compiled = optimizer, compiled


def recipe_digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RunDirectory:
    """Paths and progress of one run."""

    def __init__(self, root):
        self.root = pathlib.Path(root)

    def path(self, *parts):
        return self.root.joinpath(*parts)

    @property
    def started(self):
        return self.path(STATE).exists()

    def prepare(self, recipe_text, *, resume, force, changes=None):
        """Creates, reuses or (with `force`) clears the directory.

        Raises:
            TfadmmError: the directory holds a run and neither `resume` nor
                `force` was given; `resume` of a run made from another recipe;
                `resume` with nothing to resume.

        With `resume` and `changes`, a different recipe is accepted when
        `changes(old_recipe_text)` does not raise: the new text replaces
        `recipe.yaml` and the returned state has `amended=True`.
        """
        digest = recipe_digest(recipe_text)
        if resume:
            if not self.started:
                raise TfadmmError(
                    f"{self.root}: no run to resume here (no {STATE}). "
                    "Start it without --resume."
                )
            state = self.read_state()
            if writes_enabled():  # temporary files of writes a crash interrupted
                for stale in self.path("checkpoints").glob(".*"):
                    with contextlib.suppress(OSError):
                        stale.unlink()
            if state.get("recipe_sha256") != digest and changes is not None:
                changes(self.path(RECIPE).read_text(encoding="utf-8"))
                write_text(self.path(RECIPE), recipe_text)
                state["recipe_sha256"] = digest
                self.write_state(state)
                return {**state, "amended": True}
            if state.get("recipe_sha256") != digest:
                raise TfadmmError(
                    f"{self.root}: this run was made from another recipe (its recipe.yaml "
                    "differs); resume it with the same recipe and --set options, add "
                    "--allow-changes to change work not yet done, or start a new run with "
                    "--output or --force."
                )
            return state
        state = {"recipe_sha256": digest, "status": "running", "position": None,
                 "checkpoint": None, "completed_stages": 0}
        if not writes_enabled():  # a non-chief worker: the chief prepares the directory
            return state
        self.check_can_start(resume=resume, force=force)
        if force and self.root.exists() and any(self.root.iterdir()):
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        write_text(self.path(RECIPE), recipe_text)
        self.write_state(state)
        return state

    def check_can_start(self, *, resume, force):
        """A new run (neither `resume` nor `force`) needs an absent or empty directory.

        Raises:
            UsageError: the directory exists and is not empty.
        """
        if not resume and not force and self.root.exists() and any(self.root.iterdir()):
            raise UsageError(
                f"{self.root}: the run directory already exists and is not empty; pass "
                "--resume to continue that run or --force to start over."
            )

    def read_state(self):
        try:
            return json.loads(self.path(STATE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise TfadmmError(f"{self.path(STATE)}: unreadable run state: {error}") from None

    def write_state(self, state):
        write_json(self.path(STATE), state)

    def commit_checkpoint(self, model, state, position):
        """Saves `model` as the checkpoint of `position`, then records it in the state."""
        name = "-".join(str(p) for p in position) + ".keras"
        save_model(model, self.path("checkpoints", name))
        previous = state.get("checkpoint")
        state.update(position=list(position), checkpoint=f"checkpoints/{name}")
        self.write_state(state)
        if previous and previous != state["checkpoint"] and writes_enabled():
            with contextlib.suppress(OSError):
                self.path(previous).unlink()

    def stage_dir(self, index, name):
        return self.path("stages", f"{index + 1:02d}-{name}")
