"""The run directory: what a recipe run writes, always atomically.

    RUN/
      recipe.yaml          the resolved recipe (overrides applied)
      state.json           progress: the commit point of every checkpoint, and the
                           position, size and sha256 of each checkpoint kept
      checkpoints/         the latest training checkpoints (.keras, with optimizer);
                           the last `keep_checkpoints` (default 2) are kept
      baseline.keras       the dense model the stages start from
      stages/NN-NAME/      model.keras (ADMM model at the end of the stage), metrics.json;
                           allocation.json for a stage that allocates (`allocate:`),
                           written before it trains and reused on resume, and with
                           `method: sensitivity` its curves as sensitivity.png (with
                           matplotlib installed: `tfadmm[plot]`)
      history.json         baseline and per-stage accuracies
      model.keras          the final, stripped model (plain Keras)
      report.json, report.md
      logs/                TensorBoard event files

The functions at the end read what a finished run leaves (`model.keras`,
`history.json`, the recipe's data section) for `tfadmm report`, `export` and
`evaluate`.

A file is first written beside its destination and then renamed over it, so
a crash or `kill -9` leaves either the old or the new file, never half of one.
`state.json` is renamed last: a checkpoint counts only once it names it.
A checkpoint damaged later (a failing disk, a copy cut short) is caught by
its size and sha256 on resume, and the run falls back to an older one.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import tempfile

import numpy as np
import yaml

from tfadmm.data.specs import Normalization
from tfadmm.errors import ModelError, TfadmmError, UsageError
from tfadmm.models.loading import load_file
from tfadmm.recipes.loader import load_recipe

# The run directory's files (see above), each named once.
STATE = "state.json"
CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2  # how many of the latest checkpoints a run keeps (`--keep-checkpoints`)
RECIPE = "recipe.yaml"
BASELINE = "baseline.keras"
STAGES = "stages"
MODEL = "model.keras"  # the final model, and each stage's model in its stage directory
METRICS = "metrics.json"  # a stage's record, in its stage directory
ALLOCATION = "allocation.json"  # a stage's `tfadmm.Allocation`, in its stage directory
SENSITIVITY_PNG = "sensitivity.png"  # its sensitivity curves drawn, beside it
HISTORY = "history.json"
REPORT_MD = "report.md"
REPORT_JSON = "report.json"
LOGS = "logs"
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


def save_weights(weights, path):
    """Saves a list of arrays (`model.get_weights()`) as `.npz` atomically."""
    atomic_write(path, lambda tmp: np.savez(tmp, *weights), suffix=".npz")


def load_weights(path):
    """The list of arrays `save_weights` wrote, in order."""
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def recipe_text(recipe):
    """The resolved recipe as YAML (what `recipe.yaml` in the run directory holds)."""
    return yaml.safe_dump(recipe.document, sort_keys=False)


def recipe_digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digest(path):
    """The sha256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def keep_checkpoints_problem(value):
    """Why `value` cannot be a run's `keep_checkpoints` (one phrase), or None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"expected an integer >= 1. Received: {value!r}"
    return None


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One kept checkpoint, as `state.json` records it.

    Attributes:
        path: the file, relative to the run directory (`checkpoints/0-admm-2.keras`).
        position: where the run continues from it: `["baseline", epochs_done]` or
            `[stage_index, "admm" | "retrain", epochs_done]`.
        size: its size in bytes when it was written; None in a run directory of an
            earlier tfadmm (only one checkpoint, not fingerprinted).
        sha256: the hex sha256 of its bytes; None likewise.
    """

    path: str
    position: list | None
    size: int | None = None
    sha256: str | None = None

    def record(self):
        return dataclasses.asdict(self)


class RunDirectory:
    """Paths and progress of one run.

    Args:
        root: the run directory.
        keep_checkpoints: how many of the latest checkpoints to keep (>= 1).
    """

    def __init__(self, root, *, keep_checkpoints=KEEP_CHECKPOINTS):
        problem = keep_checkpoints_problem(keep_checkpoints)
        if problem:
            raise TfadmmError(f"keep_checkpoints: {problem}")
        self.root = pathlib.Path(root)
        self.keep_checkpoints = keep_checkpoints

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
                for stale in self.path(CHECKPOINTS).glob(".*"):
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
                 "checkpoint": None, "checkpoints": [], "completed_stages": 0}
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
        """The run state; a damaged `state.json` is one `TfadmmError` line naming it."""
        path = self.path(STATE)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise TfadmmError(f"{path}: cannot read the run state: "
                              f"{error.strerror or error}") from None
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
            problem = f"not JSON: {error}"
        else:
            problem = _state_problem(state)
        if problem:
            raise TfadmmError(
                f"{path}: the run state is damaged ({problem}); expected the JSON object "
                "tfadmm writes. Nothing was deleted: restore the file from a copy, or start "
                "the run over with --force."
            )
        return state

    def write_state(self, state):
        write_json(self.path(STATE), state)

    def kept_checkpoints(self, state):
        """The checkpoints `state` keeps, oldest first (a list of `Checkpoint`).

        A state written by an earlier tfadmm names only its latest checkpoint:
        that one is the only one kept.
        """
        records = state.get("checkpoints")
        if records is None:
            latest = state.get("checkpoint")
            return [Checkpoint(latest, state.get("position"))] if latest else []
        return [Checkpoint(**record) for record in records]

    def commit_checkpoint(self, model, state, position):
        """Saves `model` as the checkpoint of `position`, then records it in the state.

        The state keeps the newest `keep_checkpoints` checkpoints with their
        position, size and sha256; a file is deleted only after the state has
        stopped naming it.
        """
        name = "-".join(str(p) for p in position) + ".keras"
        path = f"{CHECKPOINTS}/{name}"
        save_model(model, self.path(path))
        size = digest = None
        if writes_enabled():
            size, digest = self.path(path).stat().st_size, file_digest(self.path(path))
        before = self.kept_checkpoints(state)
        kept = [c for c in before if c.path != path]  # a rerun epoch replaces its file
        kept = [*kept, Checkpoint(path, list(position), size, digest)][-self.keep_checkpoints:]
        state.update(position=list(position), checkpoint=path,
                     checkpoints=[c.record() for c in kept])
        self.write_state(state)
        self._delete_files({c.path for c in before} - {c.path for c in kept})

    def release_checkpoints(self, state):
        """For a finished run: the state stops naming checkpoints, then their files go."""
        kept = self.kept_checkpoints(state)
        state.update(position=None, checkpoint=None, checkpoints=[])
        self.write_state(state)
        self._delete_files({c.path for c in kept})

    def verify(self, checkpoint):
        """Why `checkpoint`'s file cannot be trusted (one phrase), or None.

        Checks that it exists and has the size and sha256 the state recorded.
        """
        file = self.path(checkpoint.path)
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            return "the file is missing"
        except OSError as error:
            return f"cannot read it ({error.strerror or error})"
        if checkpoint.size is not None and size != checkpoint.size:
            return f"damaged: {size} bytes, {STATE} recorded {checkpoint.size}"
        if checkpoint.sha256 is not None and file_digest(file) != checkpoint.sha256:
            return f"damaged: its sha256 differs from the one {STATE} recorded"
        return None

    def usable_checkpoint(self, state, load, *, part, on_fallback=None):
        """The newest kept checkpoint of the work in progress that verifies and loads.

        Kept checkpoints are tried newest first. One that is missing, whose size
        or sha256 differs from the state's record, or that `load` refuses is
        passed over for the previous one. A previous checkpoint of completed work
        (outside `part`) means: continue from the start of the work in progress,
        whose starting model (the last stage's, the baseline) holds everything it had.

        Args:
            state: the run state, as `prepare(..., resume=True)` returned it.
            load: reads a checkpoint file and returns the model; raises
                `TfadmmError` if it cannot.
            part: the position prefix of the work in progress: `("baseline",)`
                or `(stage_index,)`.
            on_fallback: called with one line for each checkpoint passed over,
                once a usable one is found.

        Returns:
            `(checkpoint, model)`: the `Checkpoint` and its loaded model, or
            `(None, None)` to continue from the start of the work in progress.

        Raises:
            TfadmmError: no kept checkpoint is usable; the line names each one and
                why. Nothing is deleted.
        """
        problems = []
        found = None, None
        for checkpoint in reversed(self.kept_checkpoints(state)):
            position = checkpoint.position or []
            if tuple(position[: len(part)]) != tuple(part):  # completed work
                break
            problem = self.verify(checkpoint)
            if problem is None:
                try:
                    found = checkpoint, load(self.path(checkpoint.path))
                    break
                except TfadmmError as error:
                    problem = str(error)
            problems.append(f"{checkpoint.path}: {problem}")
        else:
            raise TfadmmError(
                f"{self.root}: cannot resume: no kept checkpoint is usable "
                f"({'; '.join(problems) or f'{STATE} names none'}). Nothing was deleted: "
                "restore a checkpoint from a copy, or start the run over with --force."
            )
        for problem in problems if on_fallback is not None else ():
            on_fallback(f"{problem}; falling back to the previous checkpoint")
        return found

    def _delete_files(self, paths):
        if not writes_enabled():
            return
        for path in sorted(paths):
            with contextlib.suppress(OSError):
                self.path(path).unlink()

    def stage_dir(self, index, name):
        return self.path(STAGES, stage_dir_name(index, name))


def stage_dir_name(index, name):
    """`01-prune`: the directory of stage `index` (from 0) named `name`, under `stages/`."""
    return f"{index + 1:02d}-{name}"


def _state_problem(state):
    """What makes a parsed `state.json` unusable (one phrase), or None."""
    if not isinstance(state, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
            type(state), "number")
        return f"a JSON {kind}, not an object"
    done = state.get("completed_stages")
    if isinstance(done, bool) or not isinstance(done, int) or done < 0:
        return f"completed_stages: expected an integer >= 0. Received: {done!r}"
    if not isinstance(state.get("position"), list | None):
        return f"position: expected a list or null. Received: {state['position']!r}"
    records = state.get("checkpoints", [])
    fields = {field.name for field in dataclasses.fields(Checkpoint)}
    if not isinstance(records, list) or any(
        not isinstance(r, dict) or set(r) != fields or not isinstance(r["path"], str)
        for r in records
    ):
        return (f"checkpoints: expected a list of objects with the keys {sorted(fields)}. "
                f"Received: {records!r}")
    return None


# -- reading a run's results ----------------------------------------------------


def model_file(path):
    """The `.keras` file of `path`: the file itself, or a run directory's `model.keras`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        folder, path = path, os.path.join(path, MODEL)
        if os.path.isfile(path):
            return path
        if os.path.isfile(os.path.join(folder, STATE)):
            raise ModelError(
                f"{folder}: the run has not finished (no {MODEL} yet): continue it with "
                "`tfadmm run RECIPE --output DIR --resume`, or pass a .keras file"
            )
        raise ModelError(
            f"{folder}: not a run directory (no {MODEL}, no {STATE}): expected a .keras "
            "file or the directory of a finished `tfadmm run`"
        )
    if not path.endswith(".keras"):
        raise ModelError(
            f"Expected a .keras file or a run directory. Received: {path}"
        )
    if not os.path.isfile(path):
        raise ModelError(f"Model file not found. Received: {path}")
    return path


def load_model(path):
    """Loads the model at `path` (a `.keras` file or a run directory), in safe mode.

    Raises:
        ModelError: no model there, or a file Keras cannot load.
    """
    return load_file(model_file(path), safe_mode=True, compile=False)


def input_normalization(path, recipe=None):
    """`(dataset, Normalization)`: what the inputs of the model at `path` went through.

    Read from `recipe` (a recipe file's path), else from the run directory's
    own `recipe.yaml`; `(None, None)` for a `.keras` file without a recipe.

    Raises:
        RecipeError: a recipe that does not validate.
    """
    if recipe is None and os.path.isfile(os.path.join(os.fspath(path), RECIPE)):
        recipe = os.path.join(os.fspath(path), RECIPE)
    if recipe is None:
        return None, None
    data = load_recipe(recipe).data
    return data.name, Normalization.of_dataset(data.name, data.normalize)


def load_history(path):
    """`(baseline_accuracy, stages)` from a run directory's `history.json`.

    The baseline is `baseline_accuracy`, or else `baseline.test_accuracy` (as
    the recipe runner writes it). Returns `(None, [])` for a `.keras` file or a
    run without history; the stages come as
    `{"name", "accuracy_before", "accuracy_after"}` dicts for `tfadmm.build_report`.

    Raises:
        ModelError: a `history.json` that is not valid JSON of that shape.
    """
    path = os.fspath(path)
    file = os.path.join(path, HISTORY)
    if not os.path.isdir(path) or not os.path.isfile(file):
        return None, []
    try:
        with open(file, encoding="utf-8") as f:
            data = json.load(f)
        stages = [
            {
                "name": stage["name"],
                "accuracy_before": stage.get("accuracy_before"),
                "accuracy_after": stage.get("accuracy_after"),
            }
            for stage in data.get("stages", [])
        ]
        baseline = data.get("baseline_accuracy")
        if baseline is None and isinstance(data.get("baseline"), dict):
            # The recipe runner writes {"baseline": {"test_accuracy": ...}}.
            baseline = data["baseline"].get("test_accuracy")
        return baseline, stages
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ModelError(f"Invalid {file}: {type(error).__name__}: {error}") from error
