"""ADMM training on Keras' JAX backend, on whatever device JAX finds: one JSON line.

For a GPU machine with JAX and no TensorFlow (`scripts/gpu_check.sh` installs keras and
tfadmm there from wheels built beforehand). A zoo model on random data: plain `fit`
epochs, then ADMM epochs (`tfadmm.wrap`, every kernel pruned), then `tfadmm.project` and
masked retraining epochs, all with Keras' own `fit`. Epoch times are medians over the
epochs after the first (which compiles). It checks that the held weights are exactly at
their values after retraining with Adam, and prints:

    {"backend": "jax", "devices": [...], "admm_over_plain": 1.4, "masks_exact": true, ...}

The exit status is 1 when the masks do not hold. It runs on a CPU too (a tiny config):

    KERAS_BACKEND=jax python benchmarks/gpu_check.py --rows 64 --batch 32 --epochs 2 \
        --input-shape 28 28 1

Usage:
    python benchmarks/gpu_check.py [--model resnet20] [--input-shape 32 32 3] [--rows 4096]
        [--batch 128] [--epochs 4] [--sparsity 0.8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfadmm  # noqa: E402

if keras.backend.backend() == "jax":
    import jax


class EpochTimes(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch of a `fit`."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _median_after_first(seconds):
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def _compile(model):
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _fit(model, x, y, args):
    times = EpochTimes()
    model.fit(x, y, batch_size=args.batch, epochs=args.epochs, callbacks=[times], verbose=0)
    return _median_after_first(times.seconds)


def _model(args):
    # Not seeded: keras.utils.set_random_seed imports TensorFlow where it is installed (to
    # seed it too), and TensorFlow would take GPU memory from JAX.
    kwargs = {"input_shape": tuple(args.input_shape), "num_classes": 10}
    return tfadmm.models.get(args.model, **kwargs)


def _masks(admm_model):
    """`(exact, kept)`: held weights equal their values Z exactly; the share of nonzeros."""
    exact, kept, total = True, 0, 0
    for state, w in admm_model.pairs():
        w, z, mask = (np.asarray(keras.ops.convert_to_numpy(v)) for v in (w, state.z, state.mask))
        exact = exact and np.array_equal(w[mask == 0], z[mask == 0])
        kept, total = kept + int(np.count_nonzero(w)), total + w.size
    return exact, kept / total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--input-shape", type=int, nargs=3, default=[32, 32, 3])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4, help="per phase; the first compiles")
    parser.add_argument("--sparsity", type=float, default=0.8)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, *args.input_shape)).astype("float32")
    y = rng.integers(0, 10, args.rows)

    plain = _fit(_compile(_model(args)), x, y, args)
    admm_model = _compile(tfadmm.wrap(_model(args), {"*": tfadmm.Sparsity(args.sparsity)}))
    admm = _fit(admm_model, x, y, args)
    tfadmm.project(admm_model)
    retrain = _fit(_compile(admm_model), x, y, args)
    exact, kept = _masks(admm_model)
    tfadmm.strip(admm_model).predict(x[:2], verbose=0)

    devices = [str(d) for d in jax.devices()] if keras.backend.backend() == "jax" else []
    result = {
        "backend": keras.backend.backend(),
        "devices": devices,
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
        "keras": keras.__version__,
        "tfadmm": tfadmm.__version__,
        "model": args.model,
        "input_shape": args.input_shape,
        "rows": args.rows,
        "batch": args.batch,
        "epochs_per_phase": args.epochs,
        "plain_epoch_s": round(plain, 4),
        "admm_epoch_s": round(admm, 4),
        "retrain_epoch_s": round(retrain, 4),
        "admm_over_plain": round(admm / plain, 3),
        "retrain_over_plain": round(retrain / plain, 3),
        "masks_exact": exact,
        "kept_weights": round(kept, 4),
    }
    print(json.dumps(result), flush=True)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
