"""The peer: tfmot gradual magnitude pruning of the shared LeNet-5 baseline (prints JSON).

Runs in its own virtualenv (`tensorflow`, `tf-keras`, `tensorflow-model-optimization`,
`TF_USE_LEGACY_KERAS=1`), made by `benchmarks/pruning.py`; it never imports tfadmm.
It reads the same baseline weights (`baseline.npz`) and the same data as
`tfadmm.data.load("fashion_mnist", validation_split=0.1)`: the IDX files, pixels
`(x / 255 - 0.2860) / 0.3530`, the last 10 % of the training images held out for
validation.

`prune_low_magnitude` with one `PolynomialDecay` per layer (0 -> the layer's
sparsity, cubic, over the first `--prune-fraction` of the budget, masks every 100
steps), Adam with the learning rate cosine-decayed over the whole budget; after
the schedule ends, the epoch with the best validation accuracy is kept. With
`--distill`, the loss is tfadmm's distillation loss with the dense baseline as
the teacher: `(1 - alpha) * CE + alpha * T^2 * KL(softmax(t / T) || softmax(s / T))`,
with tfadmm's default T = 4, alpha = 0.5.

    TF_USE_LEGACY_KERAS=1 python peer_tfmot.py --sparsities '{"conv1": 0.9, ...}' \
        --budget 30 --seed 0 --baseline cache/baseline.npz
    TF_USE_LEGACY_KERAS=1 python peer_tfmot.py --timing 3 --sparsities '...'
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402

IDX_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860, 0.3530
VALIDATION_SPLIT = 0.1
BATCH_SIZE = 128
LAYERS = ("conv1", "conv2", "fc1", "fc2")


def read_idx(path):
    with gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(directory, stem):
    for suffix in (".gz", ""):
        path = directory / f"{stem}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"{directory}/{stem}[.gz] not found")


def load_data(directory=IDX_DIR, take=None):
    """`(train, validation, test)` as `(x, y)` arrays, normalised like tfadmm.data."""
    def images(stem):
        x = read_idx(_find(directory, stem)).astype("float32")
        return ((x / 255.0 - MEAN) / STD)[..., None]

    x_train, y_train = images("train-images-idx3-ubyte"), read_idx(
        _find(directory, "train-labels-idx1-ubyte")).astype("int64")
    x_test, y_test = images("t10k-images-idx3-ubyte"), read_idx(
        _find(directory, "t10k-labels-idx1-ubyte")).astype("int64")
    n = len(x_train)
    if take is None:
        n_val = round(n * VALIDATION_SPLIT)
        n_train, n_test = n - n_val, len(x_test)
    else:
        n_val = int(np.ceil(take * VALIDATION_SPLIT / (1 - VALIDATION_SPLIT)))
        n_train, n_test = take, min(len(x_test), max(1, int(np.ceil(take * len(x_test) / n))))
    return ((x_train[:n_train], y_train[:n_train]), (x_train[n - n_val:], y_train[n - n_val:]),
            (x_test[:n_test], y_test[:n_test]))


def lenet5():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(20, 5, name="conv1"),
        keras.layers.MaxPooling2D(2, name="pool1"),
        keras.layers.Conv2D(50, 5, name="conv2"),
        keras.layers.MaxPooling2D(2, name="pool2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(500, activation="relu", name="fc1"),
        keras.layers.Dense(10, name="fc2"),
    ], name="lenet5")


def baseline_model(path):
    model = lenet5()
    weights = np.load(path)
    for name in LAYERS:
        model.get_layer(name).set_weights([weights[f"{name}/kernel"], weights[f"{name}/bias"]])
    return model


def pruned_model(dense, sparsities, end_step):
    # Masks update every 100 steps, or 10 times over a short schedule; the last
    # update falls on `end_step`, so every layer reaches its final sparsity.
    frequency = max(1, min(100, end_step // 10))
    end_step = max(frequency, end_step // frequency * frequency)

    def clone_fn(layer):
        if layer.name in sparsities and sparsities[layer.name] > 0:
            schedule = tfmot.sparsity.keras.PolynomialDecay(
                initial_sparsity=0.0, final_sparsity=sparsities[layer.name],
                begin_step=0, end_step=end_step, frequency=frequency,
            )
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    return keras.models.clone_model(dense, clone_function=clone_fn)


class Distiller(keras.Model):
    """Trains `student` on the labels and on a frozen `teacher`'s softened outputs."""

    def __init__(self, student, teacher, temperature=4.0, alpha=0.5):
        super().__init__()
        self.student, self.teacher = student, teacher
        self.teacher.trainable = False
        self.temperature, self.alpha = temperature, alpha
        self.divergence = keras.losses.KLDivergence()

    def call(self, x, training=False):
        return self.student(x, training=training)

    def train_step(self, data):
        x, y = data
        soft_targets = tf.nn.softmax(self.teacher(x, training=False) / self.temperature)
        with tf.GradientTape() as tape:
            logits = self.student(x, training=True)
            hard = self.compiled_loss(y, logits, regularization_losses=self.student.losses)
            soft = self.divergence(soft_targets, tf.nn.softmax(logits / self.temperature))
            loss = (1 - self.alpha) * hard + self.alpha * self.temperature**2 * soft
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        self.compiled_metrics.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}


def compile_model(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def batches(data, seed):
    x, y = data
    order = np.random.default_rng(seed).permutation(len(x))
    return tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(BATCH_SIZE)


def accuracy(model, data):
    logits = model.predict(data[0], batch_size=1000, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == data[1]))


def rate_of(model):
    kernels = [model.get_layer(n).get_weights()[0] for n in LAYERS]
    return sum(k.size for k in kernels) / max(1, sum(int(np.count_nonzero(k)) for k in kernels))


def gzipped_bytes(model):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "model.h5"
        model.save(path, include_optimizer=False)
        return len(gzip.compress(path.read_bytes(), compresslevel=9))


def prune(args, sparsities, train, validation, test):
    tf.keras.utils.set_random_seed(args.seed)
    keras.utils.set_random_seed(args.seed)
    steps = int(np.ceil(len(train[0]) / BATCH_SIZE))
    total = args.budget * steps
    end_epoch = max(1, round(args.prune_fraction * args.budget))
    student = pruned_model(baseline_model(args.baseline), sparsities, end_epoch * steps)
    model = Distiller(student, baseline_model(args.baseline)) if args.distill else student
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, total)
    compile_model(model, schedule)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    best, best_weights, history = -1.0, None, []
    start = time.perf_counter()
    for epoch in range(args.budget):
        model.fit(batches(train, args.seed * 1000 + epoch), epochs=1, verbose=0,
                  callbacks=callbacks)
        if epoch + 1 < end_epoch:
            continue
        val = accuracy(model, validation)
        history.append(round(val, 4))
        if val > best:
            best, best_weights = val, model.get_weights()
    seconds = time.perf_counter() - start
    model.set_weights(best_weights)
    stripped = tfmot.sparsity.keras.strip_pruning(student)
    return {
        "method": "tfmot-distill" if args.distill else "tfmot", "seed": args.seed,
        "budget": args.budget,
        "val_accuracy": best, "test_accuracy": accuracy(stripped, test),
        "rate": rate_of(stripped), "seconds": seconds, "val_history": history,
        "gzipped_bytes": gzipped_bytes(stripped),
    }


def timing(args, sparsities, train):
    """Seconds per epoch: plain tf_keras fit vs tfmot pruning, interleaved."""
    steps = int(np.ceil(len(train[0]) / BATCH_SIZE))
    plain = compile_model(baseline_model(args.baseline), 1e-3)
    pruning = compile_model(
        pruned_model(baseline_model(args.baseline), sparsities, (args.timing + 1) * steps), 1e-3)
    runs = {"plain_seconds": (plain, [], []),
            "tfmot_seconds": (pruning, [tfmot.sparsity.keras.UpdatePruningStep()], [])}
    for repeat in range(args.timing + 1):
        for model, callbacks, times in runs.values():
            data = batches(train, repeat)
            start = time.perf_counter()
            model.fit(data, epochs=1, verbose=0, callbacks=callbacks)
            if repeat:  # the first pass traces and warms up
                times.append(time.perf_counter() - start)
    return {name: float(np.median(times)) for name, (_, _, times) in runs.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sparsities", required=True, help="JSON {layer: sparsity}")
    parser.add_argument("--baseline", type=pathlib.Path, required=True)
    parser.add_argument("--budget", type=int, default=30, help="epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--take", type=int, default=None)
    parser.add_argument("--prune-fraction", type=float, default=2 / 3,
                        help="share of the budget over which sparsity ramps up")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--data", type=pathlib.Path, default=IDX_DIR)
    parser.add_argument("--distill", action="store_true",
                        help="distill from the dense baseline (T 4, alpha 0.5)")
    parser.add_argument("--timing", type=int, default=0,
                        help="only time N interleaved epochs of plain fit and pruning")
    args = parser.parse_args(argv)
    sparsities = json.loads(args.sparsities)
    train, validation, test = load_data(args.data, args.take)
    if args.timing:
        result = timing(args, sparsities, train)
    else:
        result = prune(args, sparsities, train, validation, test)
    result["versions"] = {"tensorflow": tf.__version__, "tf_keras": keras.__version__}
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
