"""`kill -9` at any moment, then `--resume`: the same result as an uninterrupted run."""

import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests import _cli
from tfadmm.recipes import parse_recipe, run_recipe

KILL_IN_CHECKPOINT_WRITE = """\
import os, signal, sys, cli
sys.modules.setdefault("tfadmm_cli", cli)
real, seen = os.replace, []
def replace(src, dst):
    if "checkpoints" in str(dst):  # the checkpoint is written, not yet renamed into place
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
    named = [p.name for p in (out / "checkpoints").iterdir() if not p.name.startswith(".")]
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
