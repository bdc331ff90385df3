"""`KernelState`: the ADMM variables that travel with one compressed kernel."""

from __future__ import annotations

import keras
from keras import ops

from tfadmm import admm, mapping
from tfadmm.constraints import get as get_constraint


@keras.saving.register_keras_serializable(package="tfadmm")
class KernelState(keras.layers.Layer):
    """Carries Z, U and the training mask of one compressed kernel.

    The variables are non-trainable, so `model.save()` checkpoints them with the
    model and the optimizer never touches them. The kernel itself stays in the
    user's layer; `layer_name` and `kernel_name` say where.

    Args:
        layer_name: name of the layer that owns the kernel.
        kernel_name: the kernel's name in that layer (`"kernel"`,
            `"depthwise_kernel"`, or a `compressible_kernels()` key).
        constraint: the `Constraint` the kernel is compressed into, or None for
            a kernel frozen by an earlier stage.
        shape: the kernel's shape.
        active: whether ADMM works on this kernel in the current stage (False:
            it only keeps the values an earlier stage fixed).

    Variables:
        z: the ADMM auxiliary variable; after hard mapping, the values that
            frozen entries are held at.
        u: the scaled dual variable.
        mask: 1 where the weight trains, 0 where it is held at `z`.
        dual_residual: `rho * ||Z_k - Z_{k-1}||` at the last Z-step.
        scale: a quantized kernel's scale per output channel, fixed by the
            first (progressive) mapping step.
        mapping_total: the weights that mapping started with; 0 before it.
    """

    def __init__(self, layer_name, kernel_name, constraint, shape, active=True, **kwargs):
        # Keras names hold no "/" (a layer inside a layer is named `owner/name`).
        kwargs.setdefault("name", f"admm_{layer_name.replace('/', '.')}_{kernel_name}")
        super().__init__(**kwargs)
        self.layer_name = layer_name
        self.kernel_name = kernel_name
        self.constraint = None if constraint is None else get_constraint(constraint)
        self.shape = tuple(int(d) for d in shape)
        self.active = bool(active) and self.constraint is not None
        state = dict(trainable=False, dtype="float32", aggregation="only_first_replica")
        self.z = self.add_weight(name="z", shape=self.shape, initializer="zeros", **state)
        self.u = self.add_weight(name="u", shape=self.shape, initializer="zeros", **state)
        self.mask = self.add_weight(name="mask", shape=self.shape, initializer="ones", **state)
        self.dual_residual = self.add_weight(
            name="dual_residual", shape=(), initializer="zeros", **state
        )
        # Progressive mapping: the scale fixed at the first step, one per output
        # channel, and the number of weights there were to map (0: not started).
        self.scale = self.add_weight(
            name="scale", shape=self.shape[-1:], initializer="ones", **state
        )
        self.mapping_total = self.add_weight(
            name="mapping_total", shape=(), initializer="zeros", **dict(state, dtype="int64")
        )
        self.built = True

    @property
    def label(self):
        """`layer` for a layer's `kernel`, `layer.other_kernel` otherwise."""
        if self.kernel_name == "kernel":
            return self.layer_name
        return f"{self.layer_name}.{self.kernel_name}"

    # The math below reads and writes this state's variables; `w` is the kernel.

    def start(self, w):
        """Begins a stage: mask = support of W (earlier zeros stay), Z = project(W), U = 0."""
        support = ops.cast(ops.not_equal(w, 0), "float32")
        self.mask.assign(support)
        self.z.assign(self.constraint(w, support))
        self.u.assign(ops.zeros_like(w))
        self.dual_residual.assign(0.0)
        self.mapping_total.assign(0)

    def freeze(self, w):
        """Holds every entry of the kernel at its current value."""
        self.z.assign(w)
        self.u.assign(ops.zeros_like(w))
        self.mask.assign(ops.zeros_like(w))

    def penalty(self, w, rho):
        return admm.penalty(w, admm.ADMMState(_read(self.z), _read(self.u)), rho)

    def update(self, w, rho, new_rho):
        """The Z-step and U-step, restricted to the entries that still train, then U
        rescaled for the penalty weight `new_rho` of the next W-steps (`admm.rescale_dual`)."""
        old_z = _read(self.z)
        new = admm.update(w, admm.ADMMState(old_z, _read(self.u)), self.constraint,
                          _read(self.mask))
        new = admm.rescale_dual(new, rho, new_rho)
        self.dual_residual.assign(admm.dual_residual(new.z, old_z, rho))
        self.z.assign(new.z)
        self.u.assign(new.u)

    def hard_map(self, w, fraction=None):
        """Projects W itself, fixes the mask, and returns the new kernel value.

        A quantized kernel (`freezes_values`) maps `fraction` of its weights
        per call, those closest to their levels (see `tfadmm.mapping`); None
        maps all that are left.
        """
        if self.constraint.freezes_values:
            return self._map_levels(w, fraction)
        projection = self.constraint.project(w, _read(self.mask))
        self.z.assign(projection.values)
        self.u.assign(ops.zeros_like(w))
        self.mask.assign(self.constraint.retrain_mask(projection))
        return projection.values

    def _map_levels(self, w, fraction):
        if int(ops.convert_to_numpy(self.mapping_total)) == 0:
            projection, scale = mapping.fit(self.constraint, w, _read(self.mask))
            self.z.assign(projection.values)
            self.u.assign(ops.zeros_like(w))
            self.mapping_total.assign(ops.cast(ops.sum(projection.support), "int64"))
            if scale is None:
                self.mask.assign(self.constraint.retrain_mask(projection))
                return projection.values
            self.scale.assign(mapping.channel_scale(scale, self.shape))
            self.mask.assign(projection.support)
        unmapped = _read(self.mask)
        if float(ops.convert_to_numpy(ops.sum(unmapped))) == 0:
            return self.masked(w)
        quantizer = mapping.split_quantizer(self.constraint)[1]
        scale = _read(self.scale)
        levels = quantizer.quantize(w, scale, unmapped)
        count = mapping.step_count(fraction, int(ops.convert_to_numpy(self.mapping_total)))
        chosen = mapping.closest(w, levels, scale, unmapped, count)
        self.z.assign(ops.where(chosen > 0, levels, _read(self.z)))
        self.mask.assign(unmapped * (1.0 - chosen))
        return self.masked(w)

    def masked(self, w):
        """W where the mask is 1, Z (the held values) where it is 0."""
        return self.mask * w + (1.0 - self.mask) * self.z

    def get_config(self):
        config = super().get_config()
        config.update(
            layer_name=self.layer_name,
            kernel_name=self.kernel_name,
            constraint=(
                None
                if self.constraint is None
                else keras.saving.serialize_keras_object(self.constraint)
            ),
            shape=list(self.shape),
            active=self.active,
        )
        return config


def _read(variable):
    """A variable's value as a tensor: some backends' ops (JAX's) take no `keras.Variable`."""
    return ops.convert_to_tensor(variable)
