"""Every private Keras API tfadmm relies on, in one place.

Keras 3 offers no public way to do these few things; if an upgrade removes one,
`check()` (run by the test suite) names it, instead of a failure deep inside a
training step. Nothing else in tfadmm reaches into `keras.src` or a private
attribute of a Keras object; `ADMMModel` overrides one private method,
`MAYBE_SYMBOLIC_BUILD`, listed here too.
"""

from __future__ import annotations

import keras
from keras.src.losses import loss as _loss

#: `keras.Model`'s method that builds the model from the first batch in `fit`;
#: `ADMMModel` overrides it for MultiWorkerMirroredStrategy.
MAYBE_SYMBOLIC_BUILD = "_maybe_symbolic_build"


def scale_loss_for_distribution(value):
    """Divides a loss by the replicas in sync, as Keras' own losses are (TF backend)."""
    return _loss.scale_loss_for_distribution(value)


def unscale_loss_for_distribution(value):
    """The inverse of `scale_loss_for_distribution`."""
    return _loss.unscale_loss_for_distribution(value)


def loss_tracker(model):
    """The model's `loss` metric tracker, which Keras' own train step updates."""
    return model._loss_tracker


def update_metrics_variables(model, metrics_variables, unscaled_loss, x, y, y_pred,
                             sample_weight):
    """`(logs, metrics_variables)`: the JAX train step's metrics update, stateless.

    Keras' JAX trainer updates the loss tracker and the compiled metrics from
    `metrics_variables` (the values in the step's state) and returns their new
    values; `tfadmm.backend.jax_step` does the same.
    """
    return model._update_metrics_variables(
        metrics_variables, unscaled_loss, x, y, y_pred, sample_weight
    )


def flatten_layers(layer, include_self=True):
    """Every layer inside `layer`, depth first (nested models included)."""
    return list(layer._flatten_layers(include_self=include_self, recursive=True))


def child_layers(layer):
    """The layers `layer` tracks directly (its sublayers, not theirs), in order."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def seed_generators_of(layer):
    """The `keras.random.SeedGenerator`s a layer tracks itself (not its sublayers')."""
    return list(getattr(layer, "_seed_generators", ()))


def producing_node(tensor):
    """`(layer, node)`: the call that produced a symbolic `KerasTensor` of a functional graph."""
    history = tensor._keras_history
    return history.operation, history.operation._inbound_nodes[history.node_index]


def functional_graph_of(model):
    """The functional model that runs `model` (a Sequential's inner one), or None."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if isinstance(model, keras.Model) and hasattr(model, "_operations"):
        return model
    return None


def check():
    """Raises `RuntimeError` naming every private Keras API above that this Keras lacks."""
    missing = [
        name for name, present in (
            ("keras.src.losses.loss.scale_loss_for_distribution",
             hasattr(_loss, "scale_loss_for_distribution")),
            ("keras.src.losses.loss.unscale_loss_for_distribution",
             hasattr(_loss, "unscale_loss_for_distribution")),
            (f"keras.Model.{MAYBE_SYMBOLIC_BUILD}", hasattr(keras.Model, MAYBE_SYMBOLIC_BUILD)),
            ("keras.Layer._flatten_layers", hasattr(keras.layers.Layer, "_flatten_layers")),
        ) if not present
    ]
    if not missing:  # the attributes of live objects (building one needs the above)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dropout(0.5)])
        model.compile(loss="mse")
        if not hasattr(model, "_loss_tracker"):
            missing.append("keras.Model._loss_tracker")
        if keras.backend.backend() == "jax" and not hasattr(model, "_update_metrics_variables"):
            missing.append("keras.Model._update_metrics_variables (JAX backend)")
        if not seed_generators_of(model.layers[0]):
            missing.append("keras.Layer._seed_generators")
    if missing:
        raise RuntimeError(
            f"This Keras ({keras.__version__}) lacks private APIs tfadmm relies on: "
            f"{', '.join(missing)}. Expected the Keras 3 versions tfadmm is tested with "
            "(pyproject.toml)."
        )
