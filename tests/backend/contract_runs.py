"""Training runs of one tiny model that every Keras backend must agree on.

`test_jax_step.py` runs `main()` in a subprocess on the JAX backend with TensorFlow
blocked (Keras' backend is fixed once it is imported), and runs `sgd_run` and
`distill_run` in its own, TensorFlow, process to compare the weights. The data and the
initial weights come from numpy, so both backends start from the same numbers.
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile

import keras
import numpy as np

import tfadmm

ROWS = 64
BATCH = 16


def tiny_model():
    """Dense 6 -> 16 -> 3, its weights drawn by numpy (the same under every backend)."""
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu", name="fc1"),
            keras.layers.Dense(3, name="fc2"),
        ],
        name="tiny",
    )
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


def data(rows=ROWS):
    rng = np.random.default_rng(1)
    return rng.normal(size=(rows, 6)).astype("float32"), rng.integers(0, 3, rows)


def _compile(model, optimizer):
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _fit(model, rows=ROWS, epochs=1):
    x, y = data(rows)
    return model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)


def _weights(model):
    return [w.tolist() for w in model.get_weights()]


def _masks_exact(model):
    """Whether every held weight equals its held value Z exactly."""
    return all(
        np.array_equal(np.asarray(keras.ops.convert_to_numpy(w))[mask == 0],
                       np.asarray(keras.ops.convert_to_numpy(state.z))[mask == 0])
        for state, w in model.pairs()
        for mask in [np.asarray(keras.ops.convert_to_numpy(state.mask))]
    )


def sgd_run():
    """ADMM with SGD + momentum (Z/U every 2 steps), then project and retrain."""
    model = tfadmm.wrap(tiny_model(), {"fc*": tfadmm.Sparsity(0.75)}, update_every_steps=2)
    _compile(model, keras.optimizers.SGD(0.05, momentum=0.9))
    _fit(model, epochs=2)
    admm = _weights(model)
    rho = float(keras.ops.convert_to_numpy(model.rho))
    tfadmm.project(model)
    _compile(model, keras.optimizers.SGD(0.05, momentum=0.9))
    _fit(model)
    return {"admm": admm, "rho": rho, "retrain": _weights(model)}


def distill_run():
    """ADMM with a distillation teacher (the model as wrapped), SGD."""
    model = tfadmm.wrap(tiny_model(), {"fc*": tfadmm.Sparsity(0.5)}, update_every_steps=2,
                        distill=tfadmm.Distill(temperature=2.0, alpha=0.5))
    _compile(model, keras.optimizers.SGD(0.05))
    history = _fit(model)
    return {"weights": _weights(model), "loss": history.history["loss"][-1]}


def quantize_run():
    """ADMM towards 3-bit per-channel levels, then mapping and retraining with Adam."""
    model = tfadmm.wrap(tiny_model(), {"fc*": tfadmm.Quantize(bits=3)}, update_every_steps=2)
    _compile(model, keras.optimizers.Adam(0.01))
    _fit(model)
    tfadmm.project(model)
    _fit(model)
    return {"weights": _weights(model), "masks_exact": _masks_exact(model)}


def lifecycle_run():
    """wrap / compile / fit / project / fit / strip with Adam and weight decay."""
    model = tfadmm.wrap(tiny_model(), {"fc*": tfadmm.Sparsity(0.75)})
    _compile(model, keras.optimizers.Adam(0.01, weight_decay=0.01))
    admm_logs = _fit(model).history
    tfadmm.project(model)
    _compile(model, keras.optimizers.Adam(0.01, weight_decay=0.01))
    retrain_logs = _fit(model, epochs=2).history
    exact = _masks_exact(model)
    zeros = float(np.mean(keras.ops.convert_to_numpy(model.model.get_layer("fc1").kernel) == 0))
    x, y = data()
    evaluated = model.evaluate(x, y, verbose=0)
    plain = tfadmm.strip(model)
    return {
        "admm_logs": {k: v[-1] for k, v in admm_logs.items()},
        "retrain_logs": sorted(retrain_logs),
        "masks_exact": exact,
        "fc1_zeros": zeros,
        "evaluate_loss": float(evaluated),
        "stripped": [type(plain).__name__, list(plain.predict(x[:2], verbose=0).shape)],
    }


class _Batches(keras.utils.PyDataset):
    """The data as 4 batches (a backend-neutral dataset, for `run_stage`)."""

    def __init__(self):
        super().__init__()
        self.x, self.y = data()

    def __len__(self):
        return ROWS // BATCH

    def __getitem__(self, index):
        rows = slice(index * BATCH, (index + 1) * BATCH)
        return self.x[rows], self.y[rows]


def stage_run():
    """`tfadmm.run_stage` with batch norm recalibration (evaluates before any fit)."""
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(16, name="fc1"),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.Dense(3, name="fc2"),
    ])
    result = tfadmm.run_stage(
        model, {"fc*": tfadmm.Sparsity(0.5)}, _Batches(), validation=_Batches(),
        admm=tfadmm.ADMMPhase(epochs=1), retrain=tfadmm.RetrainPhase(epochs=1,
                                                                     recalibrate_bn=True),
    )
    return {"chosen": result.chosen, "masks_exact": _masks_exact(result.model)}


def update_count_run():
    """`(admm_step, rho)` after each of 7 one-step fits, Z/U every 3 steps."""
    model = tfadmm.wrap(tiny_model(), {"fc*": tfadmm.Sparsity(0.75)}, update_every_steps=3)
    _compile(model, "sgd")
    after = []
    for _ in range(7):
        _fit(model, rows=BATCH)
        after.append([int(keras.ops.convert_to_numpy(model.admm_step)),
                      float(keras.ops.convert_to_numpy(model.rho))])
    return after


def resume_run():
    """Weights after 1 epoch, save, load, 1 more epoch; and after 2 epochs uninterrupted."""
    def fresh():
        model = tfadmm.wrap(tiny_model(), {"fc*": tfadmm.Sparsity(0.75)}, update_every_steps=3)
        return _compile(model, keras.optimizers.Adam(0.01))

    straight = fresh()
    _fit(straight, epochs=2)
    resumed = fresh()
    _fit(resumed)
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "mid.keras"
        resumed.save(path)
        resumed = keras.models.load_model(path)
    _fit(resumed)
    return {"straight": _weights(straight), "resumed": _weights(resumed),
            "steps": int(keras.ops.convert_to_numpy(resumed.admm_step))}


def main():
    results = {
        "backend": keras.backend.backend(),
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
        "sgd": sgd_run(),
        "distill": distill_run(),
        "quantize": quantize_run(),
        "lifecycle": lifecycle_run(),
        "update_count": update_count_run(),
        "stage": stage_run(),
        "resume": resume_run(),
    }
    print(json.dumps(results, allow_nan=True))


if __name__ == "__main__":
    main()
