"""ADMM training cost against plain Keras, measured side by side in one run.

1. LeNet-5 on Fashion-MNIST: seconds per epoch of plain `fit`, of the ADMM
   phase and of masked retraining, interleaved (plain, ADMM, retrain, plain,
   ...) so that machine noise hits all three alike; ratios to plain `fit`.
2. One Z/U update (projection of every kernel) for LeNet-5 and for a
   ResNet-50-sized set of kernels (25M weights), in seconds.

Usage:
    python benchmarks/overhead.py [--repeats 3] [--take N] [--out benchmarks/results/overhead.md]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfadmm  # noqa: E402
from tfadmm import data, models  # noqa: E402

PRUNE_10X = {"conv1": 0.5, "conv2": 0.8, "fc1": 0.912, "fc2": 0.6}


def _compiled(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _epoch_seconds(model, dataset):
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    return time.perf_counter() - start


def epoch_costs(train, repeats, build=None, targets=None):
    """Median seconds per epoch of plain fit, the ADMM phase and masked retraining.

    Args:
        train: the batched training dataset.
        repeats: interleaved epochs of each, after one warm-up epoch each.
        build: makes a fresh model (default: the zoo's LeNet-5).
        targets: `{layer: sparsity}` (default: `PRUNE_10X`, LeNet-5 at 10x).
    """
    build = build or (lambda: models.get("lenet5"))
    targets = PRUNE_10X if targets is None else targets

    def constraints():
        return {k: tfadmm.Sparsity(v) for k, v in targets.items()}

    plain = _compiled(build())
    admm = _compiled(tfadmm.wrap(build(), constraints()))
    retrain = _compiled(tfadmm.project(tfadmm.wrap(build(), constraints())))
    runs = {"plain fit": (plain, []), "ADMM phase": (admm, []), "masked retraining": (retrain, [])}
    for model, _ in runs.values():  # warm-up: tracing and the first pass over the data
        _epoch_seconds(model, train)
    order = list(runs.values())
    for repeat in range(repeats):  # rotate the order, so that no phase always runs first
        for model, times in order[repeat % len(order):] + order[: repeat % len(order)]:
            times.append(_epoch_seconds(model, train))
    return {name: statistics.median(times) for name, (_, times) in runs.items()}


def update_seconds(model, repeats=3):
    """Median seconds of one Z/U update over every kernel of `model` (compiled as a graph)."""
    wrapped = tfadmm.wrap(model, {"*": tfadmm.Sparsity(0.875)})
    update = tf.function(wrapped.admm_update)
    update()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        update()
        times.append(time.perf_counter() - start)
    weights = sum(int(w.shape.num_elements()) for _, w in wrapped.pairs())
    return weights, statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--take", type=int, default=None, help="training examples (default: all)")
    parser.add_argument("--out", default="benchmarks/results/overhead.md")
    args = parser.parse_args()

    splits = data.load("fashion_mnist", batch_size=128, take=args.take, augment=False)
    costs = epoch_costs(splits.train, args.repeats)
    lenet_weights, lenet_update = update_seconds(models.get("lenet5"))
    resnet = keras.applications.ResNet50(weights=None)
    resnet_weights, resnet_update = update_seconds(resnet, repeats=2)

    plain = costs["plain fit"]
    lines = [
        "| phase | seconds / epoch | ratio to plain fit |",
        "|---|---|---|",
        *[f"| {name} | {sec:.2f} | {sec / plain:.3f}x |" for name, sec in costs.items()],
        "",
        "| Z/U update | weights | seconds |",
        "|---|---|---|",
        f"| LeNet-5 | {lenet_weights:,} | {lenet_update:.4f} |",
        f"| ResNet-50 kernels | {resnet_weights:,} | {resnet_update:.2f} |",
    ]
    table = "\n".join(lines)
    print(table)
    print(f"\nADMM epoch / plain epoch: {costs['ADMM phase'] / plain:.3f}x (target <= 1.10x)")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# ADMM overhead\n\nMade by `python benchmarks/overhead.py"
        f"{f' --take {args.take}' if args.take else ''}` (medians of {args.repeats} "
        f"interleaved epochs, LeNet-5, Fashion-MNIST, batch 128).\n\n{table}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
