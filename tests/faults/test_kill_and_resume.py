"""`kill -9` at any moment, then `--resume`: the same result as an uninterrupted run.

Also when the latest checkpoint was damaged afterwards: the run falls back to the previous one.
"""

import json
import random
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from tests import _cli
from tfadmm.recipes import parse_recipe, run_recipe

KILL_IN_CHECKPOINT_WRITE = """\
import os, signal, sys, cli
sys.modules.setdefault("tfadmm_cli", cli)
real, seen = os.replace, []
def replace(src, dst):
    if "checkpoints" in str(dst) and str(dst).endswith(".keras"):  # written, not yet renamed
        seen.append(dst)
        if len(seen) == int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst)
os.replace = replace
from cli.main import main
main()
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's final weights."""
    out = tmp_path_factory.mktemp("reference") / "run"
    result = run_recipe(parse_recipe(_cli.TINY, "tiny.yaml"), out, verbose=0)
    return _cli.weights(result.model_path)


def _recipe(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(_cli.TINY)
    return path


def _same(reference, model_path):
    for expected, got in zip(reference, _cli.weights(model_path), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_killed_during_a_checkpoint_write_resumes_to_the_same_result(reference, tmp_path):
    recipe, out = _recipe(tmp_path), tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_CHECKPOINT_WRITE, "run", str(recipe), "-o", str(out),
         "-q"], cwd=_cli.ROOT, env=_cli.env(KILL_AT="2"), capture_output=True, text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # The new checkpoint never reached its name; the last good one is intact.
    named = [p.name for p in (out / "checkpoints").iterdir()
             if not p.name.startswith(".") and p.suffix == ".keras"]
    assert named == ["0-admm-1.keras"]
    result = run_recipe(parse_recipe(_cli.TINY, "tiny.yaml"), out, resume=True, verbose=0)
    assert not any((out / "checkpoints").glob(".*"))  # stale temporary files removed
    _same(reference, result.model_path)


DROPOUT = _cli.TINY.replace("{zoo: lenet5}", "{function: 'tests._tiny_models:dropout_mlp'}") \
    .replace("{conv*: 0.5, fc*: 0.9}", "{fc*: 0.9}")


class _Crash(Exception):
    pass


class _CrashAtEpochEnd(keras.callbacks.Callback):
    """Stops the run at the end of its `at`-th epoch, before that epoch's checkpoint."""

    def __init__(self, at):
        super().__init__()
        self.at, self.seen = at, 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            raise _Crash()


def test_resume_is_exact_for_a_model_with_dropout(tmp_path):
    recipe = parse_recipe(DROPOUT, "dropout.yaml")
    uninterrupted = run_recipe(recipe, tmp_path / "reference", verbose=0)
    with pytest.raises(_Crash):
        run_recipe(recipe, tmp_path / "run", verbose=0, callbacks=[_CrashAtEpochEnd(2)])
    resumed = run_recipe(recipe, tmp_path / "run", resume=True, verbose=0)
    _same(_cli.weights(uninterrupted.model_path), resumed.model_path)


@pytest.mark.slow
def test_random_kills_resume_to_the_same_result(reference, tmp_path):
    recipe, out = _recipe(tmp_path), tmp_path / "run"
    rng = random.Random(8)
    for attempt in range(12):
        started = (out / "state.json").exists()
        process = _cli.popen("run", recipe, "-o", out, "-q", "--resume" if started else "--force")
        if attempt < 5:
            time.sleep(rng.uniform(4.0, 25.0))
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=600)
        if process.returncode == 0:
            break
        assert process.returncode == -signal.SIGKILL, stderr[-2000:]
    else:
        pytest.fail("the run never finished")
    _same(reference, out / "model.keras")


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A run killed while writing its third checkpoint: it keeps 0-admm-1 and 0-admm-2."""
    tmp_path = tmp_path_factory.mktemp("killed")
    recipe, out = _recipe(tmp_path), tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_CHECKPOINT_WRITE, "run", str(recipe), "-o", str(out),
         "-q"], cwd=_cli.ROOT, env=_cli.env(KILL_AT="3"), capture_output=True, text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    state = json.loads((out / "state.json").read_text())
    assert [c["path"] for c in state["checkpoints"]] == [
        "checkpoints/0-admm-1.keras", "checkpoints/0-admm-2.keras"]
    return out


def _copy(killed, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(killed, out)
    return out


def _truncate(path, size=2000):
    path.write_bytes(path.read_bytes()[:size])


def _files(out):
    """Every file of a run directory but the temporary files of interrupted writes."""
    return {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and
            not p.name.startswith(".")}


def _resume_cli(tmp_path, out):
    return CliRunner().invoke(main, ["run", str(_recipe(tmp_path)), "-o", str(out), "--resume",
                                     "-q"])


def test_a_damaged_latest_checkpoint_costs_one_epoch_not_the_run(reference, killed, tmp_path):
    out = _copy(killed, tmp_path)
    recorded = json.loads((out / "state.json").read_text())["checkpoints"][-1]["size"]
    _truncate(out / "checkpoints" / "0-admm-2.keras")
    events = []
    result = run_recipe(parse_recipe(_cli.TINY, "tiny.yaml"), out, resume=True, verbose=0,
                        on_event=events.append)
    assert events[1:4] == [
        f"checkpoints/0-admm-2.keras: damaged: 2000 bytes, state.json recorded {recorded}; "
        "falling back to the previous checkpoint",
        "resuming from checkpoints/0-admm-1.keras",
        "stage 1/1 prune: ADMM epoch 2/2",  # the epoch after it is rerun
    ]
    _same(reference, result.model_path)
    assert not list((out / "checkpoints").iterdir())


def test_no_usable_checkpoint_exits_1_with_one_line_and_deletes_nothing(killed, tmp_path):
    out = _copy(killed, tmp_path)
    state = json.loads((out / "state.json").read_text())
    sizes = [c["size"] for c in state["checkpoints"]]
    _truncate(out / "checkpoints" / "0-admm-1.keras")
    _truncate(out / "checkpoints" / "0-admm-2.keras")
    before = _files(out)
    result = _resume_cli(tmp_path, out)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out}: cannot resume: no kept checkpoint is usable (checkpoints/0-admm-2.keras: "
        f"damaged: 2000 bytes, state.json recorded {sizes[1]}; checkpoints/0-admm-1.keras: "
        f"damaged: 2000 bytes, state.json recorded {sizes[0]}). Nothing was deleted: restore a "
        "checkpoint from a copy, or start the run over with --force.\n"
    )
    after = _files(out)
    assert all(after.get(path) == data for path, data in before.items())


def test_a_damaged_state_file_exits_1_with_one_line_and_deletes_nothing(killed, tmp_path):
    out = _copy(killed, tmp_path)
    _truncate(out / "state.json", 100)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = _resume_cli(tmp_path, out)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {out / 'state.json'}: the run state is damaged "
                                    "(not JSON: ")
    assert result.stderr.endswith("); expected the JSON object tfadmm writes. Nothing was "
                                  "deleted: restore the file from a copy, or start the run over "
                                  "with --force.\n")
    assert result.stderr.count("\n") == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_run_directory_of_an_earlier_tfadmm_resumes(reference, killed, tmp_path):
    out = _copy(killed, tmp_path)
    state = json.loads((out / "state.json").read_text())
    del state["checkpoints"]  # the earlier format named only the latest checkpoint
    (out / "state.json").write_text(json.dumps(state))
    (out / "checkpoints" / "0-admm-1.keras").unlink()
    events = []
    result = run_recipe(parse_recipe(_cli.TINY, "tiny.yaml"), out, resume=True, verbose=0,
                        on_event=events.append)
    assert "resuming from checkpoints/0-admm-2.keras" in events
    _same(reference, result.model_path)
