"""ADMM quantization of LeNet-5 on Fashion-MNIST: dense vs binary, ternary, 4-bit, pruned + 4-bit.

Every compressed run starts from the same dense baseline. A stage is: ADMM
phase, then progressive mapping (the 30 % of each kernel's weights closest to
their levels at a time, with retraining after each step; `--fraction 0` maps
everything at once), one scale per output channel (`--per-layer`: one per
layer). Binary
runs the papers' two stages: the middle layers (conv2, fc1) first, then the
first and last (conv1, fc2). Prints the table and writes it to
`benchmarks/results/quantization.md`.

    python benchmarks/quantization.py            # full data, the default epochs
    python benchmarks/quantization.py --quick    # a subset, 1 epoch per phase (~2 min)
    python benchmarks/quantization.py --shared --only binary --rho-multiplier 1.07

`benchmark(dense, splits)` runs the same variants from the benchmarks' shared
dense baseline and data (`run_all.py`), and adds the export sizes.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _fmnist import load  # noqa: E402

import tfadmm  # noqa: E402

LAYERS = ("conv1", "conv2", "fc1", "fc2")
RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "quantization.md"


def variants(per_channel=False):
    """`{name: (description, [stage targets, ...])}`."""
    binary = tfadmm.Binary(per_channel)
    four_bit = tfadmm.Quantize(4, per_channel)
    return {
        "binary": (
            "{-a, +a}; conv2+fc1, then conv1+fc2",
            [{"conv2": binary, "fc1": binary}, {"conv1": binary, "fc2": binary}],
        ),
        "ternary": (
            "{-a, 0, +a}, all layers", [dict.fromkeys(LAYERS, tfadmm.Ternary(per_channel))]
        ),
        "4-bit": ("a * {-7..7}, all layers", [dict.fromkeys(LAYERS, four_bit)]),
        "8x pruned + 4-bit": (
            "Sparsity(0.875) & Quantize(4), all layers",
            [dict.fromkeys(LAYERS, tfadmm.Sparsity(0.875) & four_bit)],
        ),
    }


def _compile(model, learning_rate):
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def accuracy(model, data):
    x, y = data
    logits = model.predict(x, batch_size=1000, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def compress(dense, stages, fit, args):
    """Runs the stages from a copy of `dense`; returns the stripped model.

    `fit(model, epochs)` trains a compiled model for that many epochs.
    """
    model = keras.models.clone_model(dense)
    model.set_weights(dense.get_weights())
    for targets in stages:
        model = tfadmm.wrap(model, targets, rho=args.rho, rho_multiplier=args.rho_multiplier,
                            update_every_steps=args.update_every)
        fit(_compile(model, args.admm_learning_rate), args.admm_epochs)
        _compile(model, args.learning_rate / 10)
        if args.fraction is None:
            tfadmm.project(model)
            fit(model, args.retrain_epochs)
        else:
            tfadmm.map_progressively(
                model, lambda m: fit(m, args.retrain_epochs), fraction=args.fraction
            )
    return tfadmm.strip(model)


def compress_arrays(dense, stages, train, args):
    """`compress` on in-memory `(x, y)` training arrays."""
    def fit(model, epochs):
        model.fit(*train, epochs=epochs, batch_size=args.batch_size, verbose=args.verbose)

    return compress(dense, stages, fit, args)


def compress_splits(dense, stages, splits, args, seed=0):
    """`compress` on `tf.data` splits (the benchmarks' shared data), one seed per epoch."""
    keras.utils.set_random_seed(seed)
    epoch = [0]

    def fit(model, epochs):
        for _ in range(epochs):
            model.fit(splits.train_for_seed(seed * 10_000 + epoch[0]), epochs=1,
                      verbose=args.verbose)
            epoch[0] += 1

    return compress(dense, stages, fit, args)


def benchmark(dense, splits, *, quick=False, log=print):
    """The quantization table for `dense` on `splits` (the shared baseline and data of run_all)."""
    import tempfile

    import common

    args = parse_args(["--quick"] if quick else [])
    args.update_every = args.update_every if not quick else 15
    dense_accuracy = common.accuracy(dense, splits.test)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dense_bytes = None
        for name, (description, stages) in variants(args.per_channel).items():
            start = time.time()
            model = compress_splits(dense, stages, splits, args)
            saved = common.CACHE / "models" / f"quantization-{name.replace(' ', '-')}.keras"
            saved.parent.mkdir(parents=True, exist_ok=True)
            model.save(saved)
            acc = common.accuracy(model, splits.test)
            exported = tfadmm.export(model, pathlib.Path(tmp) / name)
            dense_bytes = exported.dense_savedmodel_bytes
            rows.append((name, description, acc, distinct_values(model), nonzero_rate(model),
                         (time.time() - start) / 60, exported.bytes, exported.theoretical_bytes))
            log(f"{name}: {acc:.2%} (drop {100 * (dense_accuracy - acc):+.2f} pp)")
    lines = [
        f"From the shared dense baseline ({dense_accuracy:.2%} test); per stage "
        f"{args.admm_epochs} ADMM + {args.retrain_epochs} retraining epochs; rho {args.rho} "
        f"(x{args.rho_multiplier:g} every {args.update_every} steps); "
        f"ADMM Adam {args.admm_learning_rate}, "
        f"retraining Adam {args.learning_rate / 10}"
        f"{' per mapping step' if args.fraction else ''}; {_mapping_text(args)}. Bytes: "
        f"`tfadmm.export` compressed SavedModel (dense SavedModel: {dense_bytes:,} bytes).",
        "",
        "| model | levels / stages | test accuracy | drop (pp) | distinct values "
        "conv1/conv2/fc1/fc2 | pruning rate | SavedModel bytes | vs dense | theoretical "
        "minimum | minutes |",
        "|---|---|--:|--:|---|--:|--:|--:|--:|--:|",
    ]
    for name, description, acc, distinct, rate, minutes, size, minimum in rows:
        lines.append(
            f"| {name} | {description} | {acc:.2%} | {100 * (dense_accuracy - acc):.2f} | "
            f"{distinct} | {rate:.1f}x | {size:,} | {dense_bytes / size:.1f}x smaller | "
            f"{minimum:,} | {minutes:.1f} |"
        )
    return "\n".join(lines)


def _mapping_text(args):
    scales = "scales per output channel" if args.per_channel else "scales per layer"
    if args.fraction is None:
        return f"{scales}; hard mapping, all at once"
    return (f"{scales}; progressive mapping, {args.fraction:.0%} of a kernel's weights per "
            f"step, {args.retrain_epochs} retraining epochs after each step")


def distinct_values(model):
    return "/".join(
        str(len(np.unique(keras.ops.convert_to_numpy(model.get_layer(n).kernel))))
        for n in LAYERS
    )


def nonzero_rate(model):
    kernels = [keras.ops.convert_to_numpy(model.get_layer(n).kernel) for n in LAYERS]
    total = sum(k.size for k in kernels)
    return total / max(1, sum(np.count_nonzero(k) for k in kernels))


def render(rows, args, dense_accuracy):
    lines = [
        "# ADMM quantization: LeNet-5 on Fashion-MNIST",
        "",
        f"Train {args.train_size or 60000}, test {args.test_size or 10000} images; dense "
        f"{args.epochs} epochs; per stage {args.admm_epochs} ADMM + {args.retrain_epochs} "
        f"retraining epochs; rho {args.rho} (x{args.rho_multiplier:g} per update, "
        f"{f'every {args.update_every} steps' if args.update_every else 'once per epoch'}); "
        f"{_mapping_text(args)}.",
        "",
        "| model | levels / stages | accuracy | drop (pp) | distinct kernel values "
        "conv1/conv2/fc1/fc2 | pruning rate | minutes |",
        "|---|---|---|---|---|---|---|",
        f"| dense | float32 | {dense_accuracy:.2%} | - | - | 1.0x | - |",
    ]
    for name, description, acc, distinct, rate, minutes in rows:
        lines.append(
            f"| {name} | {description} | {acc:.2%} | {100 * (dense_accuracy - acc):+.2f} | "
            f"{distinct} | {rate:.1f}x | {minutes:.1f} |"
        )
    lines += [
        "",
        "Every compressed model starts from the dense one and trains for its stages' epochs "
        "on top, so a negative drop can be extra training rather than compression.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="10k training images, 2k test images, 1 epoch per phase")
    parser.add_argument("--epochs", type=int, default=8, help="dense training epochs")
    parser.add_argument("--admm-epochs", type=int, default=4, help="ADMM epochs per stage")
    parser.add_argument("--retrain-epochs", type=int, default=2,
                        help="masked retraining epochs per stage (per step if progressive)")
    parser.add_argument("--fraction", type=float, default=0.3,
                        help="progressive mapping: share mapped per step (0: all at once)")
    parser.add_argument("--rho", type=float, default=1e-2, help="initial ADMM rho")
    parser.add_argument("--rho-multiplier", type=float, default=1.3,
                        help="rho's growth at each Z/U update")
    parser.add_argument("--update-every", type=int, default=100,
                        help="steps between Z/U updates (0: once per epoch)")
    parser.add_argument("--per-layer", dest="per_channel", action="store_false",
                        help="one scale per layer instead of per output channel")
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="dense training (retraining uses a tenth)")
    parser.add_argument("--admm-learning-rate", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="variants to run")
    parser.add_argument("--shared", action="store_true",
                        help="start from run_all's cached baseline and data; print accuracies")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    args.update_every = args.update_every or None
    args.fraction = args.fraction or None
    if args.quick:
        args.epochs = args.admm_epochs = args.retrain_epochs = 1
        args.train_size = args.train_size or 10000
        args.test_size = args.test_size or 2000
        # About 3 Z/U updates in the single ADMM epoch.
        args.update_every = max(1, args.train_size // args.batch_size // 3)
    return args


def shared(args):
    """`--shared`: the chosen variants from run_all's baseline and data; prints accuracies."""
    import common

    splits = common.load_splits(0)
    dense, baseline = common.dense_baseline(splits)
    for name, (_, stages) in variants(args.per_channel).items():
        if args.only and name not in args.only:
            continue
        model = compress_splits(dense, stages, splits, args)
        print(f"{name}: validation {common.accuracy(model, splits.validation):.2%}, test "
              f"{common.accuracy(model, splits.test):.2%} (baseline: validation "
              f"{baseline['val_accuracy']:.2%}, test {baseline['test_accuracy']:.2%})",
              flush=True)


def main(argv=None):
    args = parse_args(argv)
    if args.shared:
        return shared(args)
    keras.utils.set_random_seed(0)
    train, test = load(train_size=args.train_size, test_size=args.test_size)

    dense = _compile(tfadmm.models.get("lenet5"), args.learning_rate)
    dense.fit(*train, batch_size=args.batch_size, epochs=args.epochs, verbose=args.verbose)
    dense_accuracy = accuracy(dense, test)
    print(f"dense: {dense_accuracy:.2%}", flush=True)

    rows = []
    for name, (description, stages) in variants(args.per_channel).items():
        if args.only and name not in args.only:
            continue
        start = time.time()
        model = compress_arrays(dense, stages, train, args)
        acc = accuracy(model, test)
        minutes = (time.time() - start) / 60
        rows.append((name, description, acc, distinct_values(model), nonzero_rate(model), minutes))
        print(f"{name}: {acc:.2%} (drop {100 * (dense_accuracy - acc):+.2f} pp)", flush=True)

    table = render(rows, args, dense_accuracy)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
