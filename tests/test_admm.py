import keras
import numpy as np
import pytest

from tfadmm import admm
from tfadmm.constraints import Sparsity


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_init_projects_w_and_zeroes_u():
    w = np.array([3.0, -1.0, 0.5, 2.0], "float32")
    state = admm.init(w, Sparsity(0.5))
    np.testing.assert_array_equal(_np(state.z), [3, 0, 0, 2])
    np.testing.assert_array_equal(_np(state.u), [0, 0, 0, 0])


def test_update_is_z_then_u_step():
    w = np.array([3.0, -1.0, 0.5, 2.0], "float32")
    state = admm.ADMMState(z=np.zeros(4, "float32"), u=np.array([0, -3.0, 0, 0], "float32"))
    new = admm.update(w, state, Sparsity(0.5))
    np.testing.assert_array_equal(_np(new.z), [3, -4, 0, 0])
    np.testing.assert_array_equal(_np(new.u), [0, 0, 0.5, 2])


def test_penalty_and_residuals():
    w = np.array([1.0, 2.0], "float32")
    state = admm.ADMMState(z=np.array([1.0, 0.0], "float32"), u=np.array([0.0, 1.0], "float32"))
    assert np.isclose(_np(admm.penalty(w, state, 0.5)), 0.25 * 9)
    assert np.isclose(_np(admm.primal_residual(w, state.z)), 2 / np.sqrt(5))
    assert np.isclose(_np(admm.primal_residual(np.zeros(2, "float32"), np.zeros(2, "float32"))), 0)
    assert np.isclose(_np(admm.dual_residual(w, state.z, 2.0)), 4.0)


def test_rescale_dual_keeps_the_multiplier_rho_times_u():
    state = admm.ADMMState(z=np.array([1.0, 0.0], "float32"), u=np.array([0.5, -2.0], "float32"))
    new = admm.rescale_dual(state, 0.1, 0.4)
    np.testing.assert_array_equal(_np(new.z), [1.0, 0.0])
    np.testing.assert_allclose(0.4 * _np(new.u), 0.1 * state.u, rtol=1e-6)
    np.testing.assert_array_equal(_np(admm.rescale_dual(state, 2.0, 2.0).u), state.u)


def test_next_rho_grows_and_caps():
    assert np.isclose(admm.next_rho(1e-3, 1.3), 1.3e-3)
    assert np.isclose(_np(admm.next_rho(1.0, 2.0, rho_max=1.5)), 1.5)


def test_growth_to_reach_takes_rho_to_its_final_value_in_the_updates_given():
    multiplier = admm.growth_to_reach(1e-3, 5e-2, 12)
    assert 1e-3 * multiplier ** 12 == pytest.approx(5e-2, rel=1e-12)
    assert admm.growth_to_reach(1e-3, 5e-2, 0) == 1.0
    assert admm.growth_to_reach(1e-3, 1e-3, 7) == 1.0
