"""The ADMM updates for one compressed tensor, as pure functions.

For a weight W constrained to a set S (projection `constraint`), ADMM splits
W = Z with Z in S and a scaled dual U:

- W-step: train on `loss + penalty(w, state, rho)`;
- Z-step: `Z <- project(W + U)`;
- U-step: `U <- U + W - Z`;
- rho grows: `U <- U * rho / rho_new` (`rescale_dual`), so the multiplier `rho * U`
  stays what the updates made it.

Nothing here knows about Keras layers or training loops: every function takes
tensors and returns tensors, so it is tested on small arrays.
"""

from __future__ import annotations

from typing import NamedTuple

from keras import ops

_EPS = 1e-12


class ADMMState(NamedTuple):
    """The ADMM variables of one weight tensor.

    Attributes:
        z: the auxiliary variable, always inside the constraint set.
        u: the scaled dual variable (the running sum of W - Z).
    """

    z: object
    u: object


def init(w, constraint, support=None):
    """The initial state: `Z = project(W)`, `U = 0`."""
    return ADMMState(z=constraint(w, support), u=ops.zeros_like(w))


def update(w, state, constraint, support=None):
    """One Z-step and U-step: `Z <- project(W + U)`, `U <- U + W - Z`."""
    z = constraint(w + state.u, support)
    return ADMMState(z=z, u=state.u + w - z)


def penalty(w, state, rho):
    """The augmented-Lagrangian term `rho / 2 * ||W - Z + U||^2`."""
    return 0.5 * rho * ops.sum(ops.square(w - state.z + state.u))


def primal_residual(w, z):
    """`||W - Z|| / ||W||`: how far W still is from the constraint set (0 = inside)."""
    return ops.sqrt(ops.sum(ops.square(w - z))) / ops.maximum(
        ops.sqrt(ops.sum(ops.square(w))), _EPS
    )


def dual_residual(z_new, z_old, rho):
    """`rho * ||Z_k - Z_{k-1}||`: how much the last Z-step moved Z."""
    return rho * ops.sqrt(ops.sum(ops.square(z_new - z_old)))


def rescale_dual(state, rho, new_rho):
    """The state under a new penalty weight: `U * rho / new_rho`, Z unchanged.

    U is the scaled dual `Y / rho` of the Lagrange multiplier Y. When rho changes,
    U is rescaled so that Y stays the same (Boyd et al. 2011, "Distributed
    Optimization and Statistical Learning via ADMM", section 3.4.1). Left as it is,
    a growing rho grows Y with it, and the penalty pulls W towards `Z - U`, away
    from its set, by the sum of the residuals of all earlier updates.
    """
    return ADMMState(z=state.z, u=state.u * (rho / new_rho))


def next_rho(rho, multiplier, rho_max=None):
    """The penalty weight after one Z/U update: `min(rho * multiplier, rho_max)`."""
    rho = rho * multiplier
    if rho_max is not None:
        rho = ops.minimum(rho, rho_max)
    return rho


def growth_to_reach(rho, rho_final, updates):
    """The multiplier that takes `rho` to `rho_final` in `updates` Z/U updates.

    `(rho_final / rho) ** (1 / updates)`, so that `rho * multiplier ** updates ==
    rho_final`; 1.0 when there is no update (nothing to grow).
    """
    if updates <= 0:
        return 1.0
    return float((rho_final / rho) ** (1.0 / updates))
