"""What every benchmark shares: the data, the dense baselines (LeNet-5, ResNet-20), per-layer rates.

The dense baseline is trained once and cached in `benchmarks/cache/` (git-ignored):
`baseline.keras`, `baseline.npz` (the weights by layer name, for the tfmot side,
which runs in its own virtualenv) and `baseline.json` (its accuracies). The records
that RESULTS.md is rendered from (small JSON files, one per finished cell) go to
`benchmarks/results/` instead, which git keeps: a fresh clone renders RESULTS.md again
without rerunning a cell (`records`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if os.environ.get("BENCH_THREADS"):  # several benchmark processes side by side
    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["BENCH_THREADS"]))
    tf.config.threading.set_inter_op_parallelism_threads(2)

HERE = pathlib.Path(__file__).resolve().parent
CACHE = HERE / "cache"
RESULTS_DIR = HERE / "results"
LAYERS = ("conv1", "conv2", "fc1", "fc2")
LAYER_SIZES = {"conv1": 500, "conv2": 25_000, "fc1": 400_000, "fc2": 5_000}
# ECCV 2018 (Zhang et al.), LeNet-5 at 71.2x: the share of each layer's weights kept.
ECCV_KEPT = {"conv1": 0.20, "conv2": 0.08, "fc1": 0.009, "fc2": 0.07}
BATCH_SIZE = 128
VALIDATION_SPLIT = 0.1
BASELINE_EPOCHS = 15


def records(name, quick=False):
    """Where a benchmark's records named `name` go: `results/` (kept in git), or `cache/` for
    `--quick` smoke runs, whose figures nothing renders into RESULTS.md."""
    return (CACHE if quick else RESULTS_DIR) / name


def layer_sparsities(rate, kept=ECCV_KEPT, sizes=LAYER_SIZES):
    """Per-layer sparsities for an overall pruning `rate`, in the proportions of `kept`.

    Every layer keeps `min(1, c * kept[layer])` of its weights, with one factor
    `c` for all layers chosen (by bisection) so that the total kept is
    `sum(sizes) / rate`: a layer that would keep more than all its weights keeps
    them all and the others make up for it. Counts are rounded the way
    `tfadmm.Sparsity` rounds them (`keep = size - floor(sparsity * size)`).

    Args:
        rate: total weights / non-zero weights, > 1 (e.g. 246 for 246x).
        kept: `{layer: share kept}` giving the proportions (ECCV 2018's by default).
        sizes: `{layer: number of weights}`.

    Returns:
        `{layer: sparsity}`, each in [0, 1).

    Example:
        >>> layer_sparsities(71.2)  # about the ECCV 2018 figures
        {'conv1': 0.8, 'conv2': 0.92, 'fc1': 0.991, 'fc2': 0.93}
    """
    if not rate > 1:
        raise ValueError(f"Invalid `rate`: expected a number > 1. Received: rate={rate!r}")
    total = sum(sizes.values())
    goal = total / rate

    def kept_with(c):
        return sum(min(1.0, c * kept[n]) * sizes[n] for n in sizes)

    low, high = 0.0, 1.0
    while kept_with(high) < goal:
        high *= 2
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if kept_with(mid) < goal else (low, mid)
    c = (low + high) / 2
    out = {}
    for name, size in sizes.items():
        keep = max(1, round(min(1.0, c * kept[name]) * size))
        out[name] = (size - keep) / size if keep < size else 0.0
    return out


def kept_shares(model, layers=LAYERS):
    """`{layer: share of its kernel weights that are non-zero}`."""
    kernels = {n: keras.ops.convert_to_numpy(model.get_layer(n).kernel) for n in layers}
    return {n: int(np.count_nonzero(k)) / k.size for n, k in kernels.items()}


def achieved_rate(model, layers=LAYERS):
    """Total kernel weights / non-zero kernel weights of `layers`."""
    kernels = [keras.ops.convert_to_numpy(model.get_layer(n).kernel) for n in layers]
    return sum(k.size for k in kernels) / max(1, sum(int(np.count_nonzero(k)) for k in kernels))


def load_splits(seed=0, take=None, in_memory=True, validation_split=VALIDATION_SPLIT,
                full_test=False):
    """Fashion-MNIST as `tfadmm.data.load` makes it (batch 128, the last
    `validation_split` of train held out).

    With `in_memory`, the examples the pipelines yield are kept as arrays and each
    epoch is a fresh permutation of them (`ArraySplits`): the same examples and
    normalisation (Fashion-MNIST has no augmentation), without re-running the
    per-example pipeline every epoch, which costs a shared 2-core machine dearly.
    With `full_test`, the test split is all the test images however many `take`
    keeps: the test split of the same data without `take`, as `tfadmm evaluate`
    reads it from a recipe without `take`.
    """
    from tfadmm import data

    def load(take):
        return data.load("fashion_mnist", batch_size=BATCH_SIZE,
                         validation_split=validation_split, take=take, seed=seed)

    splits = load(take)
    if full_test and take is not None:
        whole = load(None)
        splits = dataclasses.replace(splits, test=whole.test, num_examples={
            **splits.num_examples, "test": whole.num_examples["test"]})
    return ArraySplits(splits) if in_memory else splits


def _arrays(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def _batched(x, y):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH_SIZE).prefetch(2)


class ArraySplits:
    """`tfadmm.data.Splits` held in memory: `train_for_seed(seed)` permutes the arrays."""

    def __init__(self, splits):
        self.train_x, self.train_y = _arrays(splits.train)
        self.validation = _batched(*_arrays(splits.validation))
        self.test = _batched(*_arrays(splits.test))
        self.num_examples = splits.num_examples

    @property
    def train(self):
        return self.train_for_seed(0)

    def train_for_seed(self, seed):
        order = np.random.default_rng(seed).permutation(len(self.train_x))
        return _batched(self.train_x[order], self.train_y[order])


def compile_classifier(model, optimizer):
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def accuracy(model, dataset):
    """Top-1 accuracy of a logits model on a batched dataset."""
    correct = total = 0
    for x, y in dataset:
        logits = model(x, training=False)
        correct += int(np.sum(np.argmax(keras.ops.convert_to_numpy(logits), -1) == y.numpy()))
        total += int(y.shape[0])
    return correct / max(1, total)


def baseline_paths(tag="", model="lenet5"):
    """The cached dense baseline of zoo `model`: `(.keras, .npz, .json)` paths.

    LeNet-5's files are `baseline<tag>.*`; any other model's `<model>-baseline<tag>.*`.
    """
    stem = f"baseline{tag}" if model == "lenet5" else f"{model}-baseline{tag}"
    return CACHE / f"{stem}.keras", CACHE / f"{stem}.npz", CACHE / f"{stem}.json"


def fit_keeping_best(model, splits, epochs, *, first_seed, label, log=print):
    """Fits `model` (compiled) one epoch at a time and restores its best validation epoch.

    Epoch `k` shuffles the training data with seed `first_seed + k`; only the
    validation split is read. Returns the best validation accuracy.
    """
    best, best_weights = -1.0, None
    for epoch in range(epochs):
        model.fit(splits.train_for_seed(first_seed + epoch), epochs=1, verbose=0)
        val = accuracy(model, splits.validation)
        log(f"{label} epoch {epoch + 1}/{epochs}: validation {val:.4f}")
        if val > best:
            best, best_weights = val, model.get_weights()
    model.set_weights(best_weights)
    return best


def dense_baseline(splits, *, epochs=BASELINE_EPOCHS, tag="", model="lenet5", model_args=None,
                   log=print):
    """The cached dense zoo `model` (trained here the first time): `(model, record)`.

    Adam 1e-3, cosine-decayed to 0 over `epochs`; the epoch with the best
    validation accuracy is kept (never the test set). `tag` names a separate
    cache entry (the quick mode's baseline on a subset); `model_args` go to
    `tfadmm.models.get` (e.g. `{"input_shape": (28, 28, 1)}`).
    """
    from tfadmm import models

    keras_path, npz_path, json_path = baseline_paths(tag, model)
    if keras_path.exists() and json_path.exists() and npz_path.exists():
        return keras.models.load_model(keras_path), json.loads(json_path.read_text())
    CACHE.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    name, model = model, models.get(model, **(model_args or {}))
    steps = int(splits.train.cardinality())
    compile_classifier(
        model, keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, epochs * steps))
    )
    start = time.perf_counter()
    best = fit_keeping_best(model, splits, epochs, first_seed=1000, label="baseline", log=log)
    record = {
        "model": name,
        "epochs": epochs,
        "val_accuracy": best,
        "test_accuracy": accuracy(model, splits.test),
        "seconds": time.perf_counter() - start,
    }
    model.save(keras_path)
    np.savez(npz_path, **export_weights(model))
    json_path.write_text(json.dumps(record, indent=2))
    return model, record


def export_weights(model):
    """`{"<layer>/<variable>": array}` for every variable of every layer.

    E.g. `conv1/kernel`, `conv1/bias`, and for a batch norm `conv1_bn/gamma`,
    `/beta`, `/moving_mean`, `/moving_variance`: what `peer_tfmot.py` loads by name.
    """
    return {f"{layer.name}/{variable.name}": keras.ops.convert_to_numpy(variable)
            for layer in model.layers for variable in layer.weights}


def clone(model):
    """A fresh copy of a plain Keras model with the same weights."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def stage_epochs(budget, stages):
    """Splits `budget` epochs over `stages` stages (earlier stages get the remainder last)."""
    base, extra = divmod(budget, stages)
    return [base + (1 if i >= stages - extra else 0) for i in range(stages)]


def recipe_document(name, stages, *, budget, seed, baseline, take=None, defaults=None,
                    validation_split=VALIDATION_SPLIT):
    """A recipe as a user writes it: the model file, the data, each stage's targets and epochs.

    Args:
        name: the recipe's name.
        stages: `[(stage name, {layer: target spec as in a recipe}), ...]`; instead
            of the targets, `{"allocate": {...}}` as a recipe stage gives it.
        budget: epochs for the whole recipe, split evenly over the stages, each
            stage half ADMM and half masked retraining.
        seed: the recipe's seed.
        baseline: the dense model's `.keras` file.
        take: optional number of training images.
        defaults: optional recipe `defaults:` section.
        validation_split: the recipe's `data.validation_split`.
    """
    document = {
        "version": 1, "name": name, "seed": seed, "model": {"file": str(baseline)},
        "data": {"name": "fashion_mnist", "batch_size": BATCH_SIZE,
                 "validation_split": validation_split},
        "stages": [],
    }
    if take:
        document["data"]["take"] = take
    if defaults:
        document["defaults"] = defaults
    for (stage, targets), epochs in zip(stages, stage_epochs(budget, len(stages)), strict=True):
        admm_epochs = min(epochs - 1, max(1, round(epochs / 2 + 0.01)))
        # A stage gives its per-layer targets, or `{"allocate": {...}}` for tfadmm to derive them.
        body = targets if set(targets) == {"allocate"} else {"targets": targets}
        document["stages"].append({"name": stage, **body,
                                   "admm": {"epochs": admm_epochs},
                                   "retrain": {"epochs": epochs - admm_epochs}})
    return document


def run_recipe_document(document, *, tag="", overrides=(), log=print):
    """Writes `document` to `cache/recipes/` and runs it with `run_recipe` (as `tfadmm run`).

    Returns:
        `(final model path, record)`: the record has the seconds, the last
        stage's validation and test accuracy, the recipe's path and, per stage,
        the candidate it kept and its starting point's validation accuracy.
    """
    import yaml

    from tfadmm.recipes import load_recipe, run_recipe

    name = document["name"] + tag
    path = CACHE / "recipes" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    start = time.perf_counter()
    result = run_recipe(load_recipe(path, overrides), CACHE / "runs" / name, force=True,
                        verbose=0, on_event=lambda line: log(f"  {line}")
                        if "test accuracy" in line else None)
    last = result.history["stages"][-1]
    return result.model_path, {
        "seconds": time.perf_counter() - start,
        "val_accuracy": last["val_accuracy"], "test_accuracy": last["test_accuracy"],
        "recipe": str(path.relative_to(HERE.parent)),
        "stages": [{k: s.get(k) for k in ("name", "chosen", "start_val_accuracy",
                                          "mapped_val_accuracy", "val_accuracy",
                                          "test_accuracy")} for s in result.history["stages"]],
    }


def fmt_rate(rate):
    return f"{rate:.0f}x" if rate >= 10 or math.isclose(rate, round(rate)) else f"{rate:.1f}x"
