import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests._interrupts import InterruptAtFit, Interrupted
from tfadmm.errors import TfadmmError
from tfadmm.recipes import parse_recipe, run_recipe

TINY = """\
version: 1
name: tiny
model: {zoo: lenet5}
data: {name: fashion_mnist, batch_size: 64, take: 256, validation_split: 0.1}
baseline: {epochs: 1}
defaults:
  admm: {epochs: 2, update_every_steps: 2}
  retrain: {epochs: 1}
stages:
  - name: half
    targets: {"*": {sparsity: 0.5}}
  - name: more
    targets: {"conv*": {sparsity: 0.6}, "fc*": {sparsity: 0.9}}
"""


def _recipe(tmp_path, text=TINY):
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path, parse_recipe(text, str(path))


def _weights(path):
    return keras.models.load_model(path).get_weights()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("run")
    _, recipe = _recipe(tmp_path)
    events = []
    result = run_recipe(recipe, tmp_path / "out", on_event=events.append, verbose=0)
    return tmp_path / "out", result, events


def test_run_directory_holds_everything(finished):
    out, result, events = finished
    assert result.model_path == out / "model.keras"
    for name in ("recipe.yaml", "state.json", "baseline.keras", "history.json", "report.md",
                 "report.json", "stages/01-half/model.keras", "stages/02-more/metrics.json"):
        assert (out / name).exists(), name
    assert os.listdir(out / "logs")
    assert not os.listdir(out / "checkpoints")  # the last one goes once the run is done
    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "done" and state["completed_stages"] == 2
    assert "stage 2/2 more: ADMM epoch 2/2" in events
    history = result.history
    assert [s["name"] for s in history["stages"]] == ["half", "more"]
    assert 0 <= history["baseline"]["test_accuracy"] <= 1


def test_final_model_is_plain_and_exactly_sparse(finished):
    out, _, _ = finished
    model = keras.models.load_model(out / "model.keras")
    zeros = {layer.name: float(np.mean(layer.kernel.numpy() == 0))
             for layer in model.layers if hasattr(layer, "kernel")}
    assert zeros == pytest.approx({"conv1": 0.6, "conv2": 0.6, "fc1": 0.9, "fc2": 0.9})


def test_existing_run_directory_is_never_overwritten(finished, tmp_path):
    out, _, _ = finished
    _, recipe = _recipe(tmp_path)
    before = (out / "model.keras").read_bytes()
    with pytest.raises(TfadmmError) as info:
        run_recipe(recipe, out, verbose=0)
    assert str(info.value) == (
        f"{out}: the run directory already exists and is not empty; pass --resume to continue "
        "that run or --force to start over."
    )
    assert (out / "model.keras").read_bytes() == before


def test_resume_refuses_another_recipe_and_an_empty_directory(finished, tmp_path):
    out, _, _ = finished
    _, other = _recipe(tmp_path, TINY.replace("sparsity: 0.9", "sparsity: 0.95"))
    with pytest.raises(TfadmmError) as info:
        run_recipe(other, out, resume=True, verbose=0)
    assert str(info.value).startswith(f"{out}: this run was made from another recipe")
    with pytest.raises(TfadmmError) as info:
        run_recipe(other, tmp_path / "empty", resume=True, verbose=0)
    assert str(info.value) == (
        f"{tmp_path / 'empty'}: no run to resume here (no state.json). Start it without --resume."
    )


def test_killed_run_resumes_to_the_same_result(finished, tmp_path):
    reference, _, _ = finished
    path, _ = _recipe(tmp_path)
    out = tmp_path / "killed"
    command = [sys.executable, "-c", "from tfadmm_cli.main import main; main()", "run",
               str(path), "--output", str(out), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # kill -9 in the middle of stage 2's ADMM phase
            state = out / "state.json"
            if state.exists():
                position = json.loads(state.read_text()).get("position")
                if position and position[:2] == [1, "admm"]:
                    break
            if process.poll() is not None:
                pytest.fail("the run ended before it could be killed")
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert not (out / "model.keras").exists()
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoints/1-admm-" in resumed.stdout
    for a, b in zip(_weights(reference / "model.keras"), _weights(out / "model.keras"),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_damaged_first_checkpoint_of_a_stage_restarts_the_stage(finished, tmp_path):
    reference, _, _ = finished
    _, recipe = _recipe(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(Interrupted):  # baseline 1, stage 1: 2 + 1, stage 2: 1 ADMM epoch
        run_recipe(recipe, out, verbose=0, callbacks=[InterruptAtFit(6)])
    state = json.loads((out / "state.json").read_text())
    assert [c["path"] for c in state["checkpoints"]] == [
        "checkpoints/0-retrain-1.keras", "checkpoints/1-admm-1.keras"]
    latest = out / "checkpoints" / "1-admm-1.keras"
    latest.write_bytes(latest.read_bytes()[:2000])
    events = []
    run_recipe(recipe, out, resume=True, verbose=0, on_event=events.append)
    assert events[1:5] == [
        "checkpoints/1-admm-1.keras: damaged: 2000 bytes, state.json recorded "
        f"{state['checkpoints'][-1]['size']}; falling back to the previous checkpoint",
        "resuming from the start of stage 2/2 more",  # stage 1's model holds the previous one
        "stage 2/2 more: distillation on (distill: auto)",
        "stage 2/2 more: ADMM epoch 1/2",
    ]
    for a, b in zip(_weights(reference / "model.keras"), _weights(out / "model.keras"),
                    strict=True):
        np.testing.assert_array_equal(a, b)
