"""The peer: tfmot gradual magnitude pruning of a shared baseline, LeNet-5 or ResNet-20 (JSON).

Runs in its own virtualenv (`tensorflow`, `tf-keras`, `tensorflow-model-optimization`,
`TF_USE_LEGACY_KERAS=1`), made by `benchmarks/pruning.py`; it never imports tfadmm.
It builds the same architecture in tf_keras, with the same layer names (`--model lenet5`
or `resnet20`, the zoo's CIFAR ResNet-20 with option-A shortcuts), loads the same
baseline weights by layer and variable name (`baseline.npz`, batch norms' gamma, beta
and moving statistics included) and reads the same data as
`tfadmm.data.load("fashion_mnist", validation_split=0.1)`: the IDX files, pixels
`(x / 255 - 0.2860) / 0.3530`, the last 10 % of the training images held out for
validation.

`prune_low_magnitude` with one `PolynomialDecay` per layer (0 -> the layer's
sparsity, cubic, over the first `--prune-fraction` of the budget, masks every 100
steps), Adam with the learning rate cosine-decayed over the whole budget; after
the schedule ends, the epoch with the best validation accuracy is kept. Only the
layers named in `--sparsities` are pruned. The record also gives the loaded
baseline's test accuracy and its logits on the first 8 test images (`baseline_test_accuracy`,
`baseline_logits`), to check them against Keras 3's. With
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
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5  # tfadmm.models.layers
CHECKED = 8  # test images whose baseline logits the record carries


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


def load_data(directory=IDX_DIR, take=None, validation_split=VALIDATION_SPLIT, full_test=False):
    """`(train, validation, test)` as `(x, y)` arrays, normalised like tfadmm.data.

    With `take`, validation and test shrink in proportion as `tfadmm.data.load`'s
    do; `full_test` keeps all the test images (`benchmarks/common.load_splits`).
    """
    def images(stem):
        x = read_idx(_find(directory, stem)).astype("float32")
        return ((x / 255.0 - MEAN) / STD)[..., None]

    x_train, y_train = images("train-images-idx3-ubyte"), read_idx(
        _find(directory, "train-labels-idx1-ubyte")).astype("int64")
    x_test, y_test = images("t10k-images-idx3-ubyte"), read_idx(
        _find(directory, "t10k-labels-idx1-ubyte")).astype("int64")
    n = len(x_train)
    if take is None:
        n_val = round(n * validation_split)
        n_train, n_test = n - n_val, len(x_test)
    else:
        n_val = int(np.ceil(take * validation_split / (1 - validation_split)))
        n_train, n_test = take, min(len(x_test), max(1, int(np.ceil(take * len(x_test) / n))))
    if full_test:
        n_test = len(x_test)
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


def _conv_bn(x, filters, name, strides=1, activation=True):
    x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                            name=name)(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                        name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x) if activation else x


def resnet20(input_shape=(28, 28, 1), num_classes=10):
    """`tfadmm.models.resnet20` layer for layer (names, option-A shortcuts), in tf_keras."""
    inputs = keras.Input(input_shape, name="input")
    x = _conv_bn(inputs, 16, "conv1")
    for stage, filters in enumerate((16, 32, 64), start=2):
        for block in range(1, 4):
            name = f"conv{stage}_block{block}"
            strides = 2 if block == 1 and stage > 2 else 1
            shortcut = x
            if strides != 1:
                shortcut = keras.layers.MaxPooling2D(1, strides=2, name=f"{name}_0_pool")(x)
                extra = filters - shortcut.shape[-1]
                shortcut = keras.layers.Permute((1, 3, 2), name=f"{name}_0_to_channels")(
                    shortcut)
                shortcut = keras.layers.ZeroPadding2D(
                    ((0, 0), (extra // 2, extra - extra // 2)), name=f"{name}_0_pad")(shortcut)
                shortcut = keras.layers.Permute((1, 3, 2), name=f"{name}_0_from_channels")(
                    shortcut)
            x = _conv_bn(x, filters, f"{name}_1_conv", strides=strides)
            x = _conv_bn(x, filters, f"{name}_2_conv", activation=False)
            x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
            x = keras.layers.Activation("relu", name=f"{name}_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, outputs, name="resnet20")


MODELS = {"lenet5": lenet5, "resnet20": resnet20}


def baseline_model(path, model="lenet5"):
    """Zoo `model` built in tf_keras, every variable loaded from `path` by `<layer>/<name>`."""
    built = MODELS[model]()
    weights = np.load(path)
    for layer in built.layers:
        if layer.weights:
            layer.set_weights([weights[f"{layer.name}/{w.name.split('/')[-1].split(':')[0]}"]
                               for w in layer.weights])
    return built


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


def rate_of(model, layers):
    kernels = [model.get_layer(n).get_weights()[0] for n in layers]
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
    dense = baseline_model(args.baseline, args.model)
    baseline_test = accuracy(dense, test)
    baseline_logits = dense.predict(test[0][:CHECKED], verbose=0).tolist()
    student = pruned_model(dense, sparsities, end_epoch * steps)
    model = Distiller(student, baseline_model(args.baseline, args.model)) if args.distill \
        else student
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
        "baseline_test_accuracy": baseline_test, "baseline_logits": baseline_logits,
        "rate": rate_of(stripped, list(sparsities)), "seconds": seconds, "val_history": history,
        "gzipped_bytes": gzipped_bytes(stripped),
    }


def timing(args, sparsities, train):
    """Seconds per epoch: plain tf_keras fit vs tfmot pruning, interleaved."""
    steps = int(np.ceil(len(train[0]) / BATCH_SIZE))
    plain = compile_model(baseline_model(args.baseline, args.model), 1e-3)
    pruning = compile_model(pruned_model(baseline_model(args.baseline, args.model), sparsities,
                                         (args.timing + 1) * steps), 1e-3)
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
    parser.add_argument("--model", choices=list(MODELS), default="lenet5")
    parser.add_argument("--budget", type=int, default=30, help="epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--take", type=int, default=None)
    parser.add_argument("--validation-split", type=float, default=VALIDATION_SPLIT)
    parser.add_argument("--full-test", action="store_true",
                        help="all the test images, however many --take keeps")
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
    train, validation, test = load_data(args.data, args.take, args.validation_split,
                                        args.full_test)
    if args.timing:
        result = timing(args, sparsities, train)
    else:
        result = prune(args, sparsities, train, validation, test)
    result["versions"] = {"tensorflow": tf.__version__, "tf_keras": keras.__version__}
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
