"""The runner's stages through `tfadmm.run_stage`: best candidate, distillation, resume."""

import json

import keras
import numpy as np
import pytest

from tfadmm.recipes import parse_recipe, run_recipe

RECIPE = """\
version: 1
name: best
seed: 0
model: {zoo: lenet5}
data: {name: fashion_mnist, batch_size: 64, take: 256, validation_split: 0.25, augment: false}
defaults: {distill: true}
stages:
  - name: prune
    targets: {conv*: 0.5, fc*: 0.95}
    admm: {epochs: 1, rho: 0.01, optimizer: {name: sgd, learning_rate: 0.05}}
    retrain: {epochs: 3, optimizer: {name: sgd, learning_rate: 0.05}}
"""


class _Crash(keras.callbacks.Callback):
    """Raises at the start of the `at`-th retraining epoch (counting every fit)."""

    def __init__(self, at):
        super().__init__()
        self.fits, self.at = 0, at

    def on_train_begin(self, logs=None):
        self.fits += 1
        if self.fits == self.at:
            raise RuntimeError("crash")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("best") / "run"
    return run_recipe(parse_recipe(RECIPE, "best.yaml"), out, verbose=0)


def test_the_stage_records_its_candidates_and_never_ends_below_its_start(finished):
    record = finished.history["stages"][0]
    assert record["chosen"] in {"start", "mapped", "retrain epoch 1", "retrain epoch 2",
                                "retrain epoch 3"}
    assert record["val_accuracy"] >= record["start_val_accuracy"]
    assert record["val_accuracy"] >= record["mapped_val_accuracy"]
    metrics = json.loads((finished.directory / "stages" / "01-prune" / "metrics.json").read_text())
    assert metrics["chosen"] == record["chosen"]
    assert not list((finished.directory / "checkpoints").glob("best-*"))  # gone when done


def test_a_run_that_crashed_in_retraining_resumes_to_the_same_best_result(finished, tmp_path):
    recipe, out = parse_recipe(RECIPE, "best.yaml"), tmp_path / "run"
    with pytest.raises(RuntimeError, match="crash"):
        run_recipe(recipe, out, verbose=0, callbacks=[_Crash(at=3)])  # admm, retrain 1, crash
    state = json.loads((out / "state.json").read_text())
    assert state["position"] == [0, "retrain", 1] and state["best"]["file"].startswith(
        "checkpoints/best-0-")
    resumed = run_recipe(recipe, out, resume=True, verbose=0)
    assert resumed.history["stages"][0]["chosen"] == finished.history["stages"][0]["chosen"]
    expected = keras.models.load_model(finished.model_path).get_weights()
    for got, want in zip(keras.models.load_model(resumed.model_path).get_weights(), expected,
                         strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_the_baseline_teaches_every_stage_when_asked(tmp_path):
    text = RECIPE.replace("defaults: {distill: true}", "defaults: {distill: {teacher: baseline}}")
    text = text.replace("admm: {epochs: 1,", "admm: {epochs: 0,").replace(
        "retrain: {epochs: 3,", "retrain: {epochs: 1,")
    text += "  - name: more\n    targets: {conv*: 0.6, fc*: 0.97}\n    admm: {epochs: 0}\n" \
            "    retrain: {epochs: 1}\n"
    result = run_recipe(parse_recipe(text, "teach.yaml"), tmp_path / "run", verbose=0)
    baseline = keras.models.load_model(result.directory / "baseline.keras").get_weights()
    stage = keras.models.load_model(result.directory / "stages" / "02-more" / "model.keras")
    assert stage.distill.get_config()["temperature"] == 4.0
    for got, want in zip(stage.teacher.get_weights(), baseline, strict=True):
        np.testing.assert_array_equal(got, want)
