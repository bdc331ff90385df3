"""The ADMM training step on Keras' JAX backend keeps the TensorFlow step's contract.

Keras' backend is fixed once it is imported (TensorFlow in this process), so the JAX
runs happen once, in a subprocess with `KERAS_BACKEND=jax` and TensorFlow blocked:
`contract_runs.main()` prints their results as JSON, checked here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests._without_tensorflow import HAS_JAX, NO_JAX, run_without_tensorflow
from tests.backend import contract_runs

pytestmark = pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)


@pytest.fixture(scope="module")
def jax_runs():
    done = run_without_tensorflow(
        "import runpy; runpy.run_module('tests.backend.contract_runs', run_name='__main__')"
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _max_difference(a, b):
    assert len(a) == len(b)
    return max(float(np.max(np.abs(np.array(x) - np.array(y)))) for x, y in zip(a, b, strict=True))


def test_the_runs_used_the_jax_backend_without_tensorflow(jax_runs):
    assert jax_runs["backend"] == "jax"
    assert jax_runs["tensorflow_imported"] is False


def test_the_penalty_rho_and_residuals_are_in_the_fit_logs(jax_runs):
    logs = jax_runs["lifecycle"]["admm_logs"]
    assert set(logs) == {"loss", "admm_penalty", "admm_rho", "fc1_residual", "fc2_residual"}
    assert logs["admm_penalty"] > 0
    # 4 steps an epoch, 4 Z/U updates an epoch by default: rho grew 4 times.
    assert logs["admm_rho"] == pytest.approx(1e-3 * 1.07**4, rel=1e-5)
    assert jax_runs["lifecycle"]["retrain_logs"] == ["loss"]  # no penalty after project


def test_z_and_u_update_every_update_interval_steps(jax_runs):
    expected = [[step, 1e-3 * 1.07 ** (step // 3)] for step in range(1, 8)]
    got = jax_runs["update_count"]
    assert [step for step, _ in got] == [step for step, _ in expected]
    np.testing.assert_allclose([rho for _, rho in got], [rho for _, rho in expected], rtol=1e-5)


def test_wrap_fit_project_fit_strip(jax_runs):
    run = jax_runs["lifecycle"]
    assert run["fc1_zeros"] == 0.75
    assert np.isfinite(run["evaluate_loss"])
    assert run["stripped"] == ["Sequential", [2, 3]]


def test_run_stage_with_batch_norm_recalibration(jax_runs):
    assert jax_runs["stage"]["masks_exact"] is True
    assert jax_runs["stage"]["chosen"]


def test_held_weights_stay_exactly_at_their_values_under_adam_with_weight_decay(jax_runs):
    assert jax_runs["lifecycle"]["masks_exact"] is True


def test_a_model_saved_mid_admm_continues_exactly_as_an_uninterrupted_run(jax_runs):
    run = jax_runs["resume"]
    assert run["steps"] == 8
    assert _max_difference(run["straight"], run["resumed"]) == 0


def test_jax_and_tensorflow_train_to_the_same_weights(jax_runs):
    tf_sgd, jax_sgd = contract_runs.sgd_run(), jax_runs["sgd"]
    assert jax_sgd["rho"] == pytest.approx(tf_sgd["rho"], rel=1e-6)
    assert _max_difference(tf_sgd["admm"], jax_sgd["admm"]) < 1e-5
    assert _max_difference(tf_sgd["retrain"], jax_sgd["retrain"]) < 1e-5


def test_jax_and_tensorflow_distill_to_the_same_weights(jax_runs):
    tf_run, jax_run = contract_runs.distill_run(), jax_runs["distill"]
    assert jax_run["loss"] == pytest.approx(tf_run["loss"], rel=1e-5)
    assert _max_difference(tf_run["weights"], jax_run["weights"]) < 1e-5


def test_jax_and_tensorflow_quantize_to_the_same_weights(jax_runs):
    tf_run, jax_run = contract_runs.quantize_run(), jax_runs["quantize"]
    assert jax_run["masks_exact"] is True
    assert _max_difference(tf_run["weights"], jax_run["weights"]) < 1e-5
