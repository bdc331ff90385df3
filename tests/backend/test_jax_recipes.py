"""`tfadmm run` on Keras' JAX backend without TensorFlow: data, stages, resume, TensorBoard.

Keras' backend is fixed once it is imported (TensorFlow in this process), so the runs
happen once, in a subprocess with `KERAS_BACKEND=jax` and `import tensorflow` failing:
`recipe_runs.main()` prints what they did as JSON and leaves the run directories here.
"""

from __future__ import annotations

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from tests._without_tensorflow import HAS_JAX, NO_JAX, run_without_tensorflow

pytestmark = pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("jax-recipes")
    done = run_without_tensorflow(
        "import runpy\n"
        f"sys.argv = ['recipe_runs', {str(directory)!r}]\n"
        "runpy.run_module('tests.backend.recipe_runs', run_name='__main__')",
        blocked=("tensorflow",),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return directory, json.loads(done.stdout.strip().splitlines()[-1])


def test_the_run_used_the_jax_backend_without_tensorflow(runs):
    _, result = runs
    assert result["backend"] == "jax"
    assert result["tensorflow_imported"] is False


def test_tfadmm_run_finishes_both_stages(runs):
    directory, result = runs
    run = result["straight"]
    assert run["exit_code"] == 0, run
    assert run["output"].endswith(f"final model: {directory / 'straight' / 'model.keras'}\n")
    assert "[tfadmm] stage 2/2 quantize: ADMM epoch 2/2" in run["output"]
    assert [stage["name"] for stage in result["history"]["stages"]] == ["prune", "quantize"]
    for stage in result["history"]["stages"]:
        assert 0 <= stage["test_accuracy"] <= 1


def test_pruned_kernels_stay_pruned_and_quantized_ones_on_their_levels(runs):
    _, result = runs
    assert result["zeros"]["fc1"] == result["zeros"]["fc2"] == 0.75  # stage 1, held in stage 2
    assert result["levels"]["conv1"] <= 4 and result["levels"]["conv2"] <= 4  # 2 bits a channel


def test_an_interrupted_run_resumes_with_tfadmm_run_resume(runs):
    directory, result = runs
    assert result["interrupted"] is True
    assert result["interrupted_at"] == [1, "admm", 1]
    resumed = result["resumed"]
    assert resumed["exit_code"] == 0, resumed
    assert "[tfadmm] resuming from checkpoints/1-admm-1.keras" in resumed["output"]
    assert (directory / "resumed" / "model.keras").exists()


@pytest.mark.xfail(strict=True, reason=(
    "On the JAX backend, a second-stage ADMM model saved mid-phase and loaded does not "
    "continue bit for bit (max |dW| ~ 4e-3 after one epoch; also with tf.data, also outside "
    "the runner); on TensorFlow it does. Unsolved."))
def test_the_resumed_run_ends_with_the_uninterrupted_runs_weights(runs):
    _, result = runs
    assert result["resumed_equal"] is True


def test_tensorboard_event_files_hold_the_runs_scalars_and_reports(runs):
    directory, _ = runs
    accumulator = EventAccumulator(str(directory / "straight" / "logs"),
                                   size_guidance={"tensors": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["tensors"])
    assert {"conv1/sparsity", "fc1/primal_residual", "admm/rho", "epoch/loss",
            "stages/test_accuracy", "report/prune", "report/quantize"} <= tags
    # prune (fc*): ADMM 1 + retrain 1; quantize (conv*, fc* held): ADMM 2 + retrain 1.
    assert [event.step for event in accumulator.Tensors("fc1/sparsity")] == [0, 1, 2, 3, 4]
    assert [event.step for event in accumulator.Tensors("conv1/sparsity")] == [2, 3, 4]
    fc1 = [float(tensor_util.make_ndarray(e.tensor_proto))
           for e in accumulator.Tensors("fc1/sparsity")]
    assert fc1[1:] == [0.75] * 4  # exactly pruned from the first retraining epoch on
    report = accumulator.Tensors("report/quantize")[0].tensor_proto.string_val[0].decode()
    assert report.startswith("### Compression report: tiny_cnn")


def test_evaluate_and_keras_export_work_and_savedmodel_says_it_needs_tensorflow(runs):
    directory, result = runs
    assert result["evaluate"]["exit_code"] == 0
    assert result["evaluate"]["output"].startswith("test accuracy: ")
    assert result["export_keras"]["exit_code"] == 0, result["export_keras"]
    assert (directory / "exported.keras").exists()
    export = result["export_savedmodel"]
    assert export["exit_code"] == 1 and export["exception"] is None
    assert export["output"] == (
        "Error: tfadmm.export (SavedModel and TFLite) needs TensorFlow. Expected an importable "
        "`tensorflow` package (pip install tensorflow); the rest of tfadmm (wrap, fit, "
        "project, strip, `.keras` files, recipes on IDX or .npz data) runs without it. "
        "Received: import of tensorflow halted; None in sys.modules (Keras backend: jax)\n"
    )


def test_a_tf_distribute_strategy_is_one_clear_error(runs):
    directory, result = runs
    mirrored = result["mirrored"]
    assert mirrored["exit_code"] == 1 and mirrored["exception"] is None
    assert mirrored["output"].splitlines()[-1] == (
        "Error: distribute: mirrored (a tf.distribute strategy) needs Keras' TensorFlow "
        "backend: expected KERAS_BACKEND=tensorflow with TensorFlow installed, or distribute: "
        "none. Received: Keras backend jax"
    )
