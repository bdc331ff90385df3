"""ADMM training cost against plain Keras, measured side by side in one run.

1. LeNet-5 on Fashion-MNIST: seconds per epoch of plain `fit`, of the ADMM
   phase and of masked retraining, interleaved (plain, ADMM, retrain, plain,
   ...) so that machine noise hits all three alike; ratios to plain `fit`.
2. One Z/U update (projection of every kernel) for LeNet-5 and for a
   ResNet-50-sized set of kernels (25M weights), in seconds.

With `--backends tensorflow jax`, (1) on several Keras backends in one run: one
worker process per backend (Keras' backend is fixed per process; the JAX one has
TensorFlow blocked, so its data comes from `tfadmm.data.load`'s path without
TensorFlow), each with its three models warmed up; epochs are interleaved across
backends and phases, so that machine noise hits every ratio alike. The table goes
to `benchmarks/results/overhead_backends.json`, which `run_all.py` renders.

With `--model resnet20`, (1) on ResNet-20 with batch norm (28x28x1 inputs), every block conv
and `fc` at 87.5 % sparsity (8x), written to `benchmarks/results/overhead-resnet20.md`.

Usage:
    python benchmarks/overhead.py [--repeats 3] [--take N] [--out benchmarks/results/overhead.md]
    python benchmarks/overhead.py --model resnet20 --take 10000 --repeats 7
    python benchmarks/overhead.py --backends tensorflow jax [--repeats 5] [--take N]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if __name__ == "__main__" and "--block-tensorflow" in sys.argv:
    sys.modules["tensorflow"] = None  # a JAX-only install: before Keras is imported

import keras  # noqa: E402

import tfadmm  # noqa: E402
from tfadmm import data, models  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"  # common.RESULTS_DIR (common imports TensorFlow; the JAX worker can't)
BACKENDS_JSON = RESULTS / "overhead_backends.json"
PHASES = ("plain fit", "ADMM phase", "masked retraining")

PRUNE_10X = {"conv1": 0.5, "conv2": 0.8, "fc1": 0.912, "fc2": 0.6}
# ResNet-20's 18 block convs and its classifier at 8x (`conv1`, the stem, stays dense).
PRUNE_RESNET20_8X = {"conv*_block*_conv": 0.875, "fc": 0.875}
# `--model`: (builder, targets, what the output file's heading says).
MODELS = {
    "lenet5": (lambda: models.get("lenet5"), PRUNE_10X, "LeNet-5"),
    "resnet20": (lambda: models.get("resnet20", input_shape=(28, 28, 1)), PRUNE_RESNET20_8X,
                 "ResNet-20 (block convs and fc at 8x)"),
}


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


def phase_models(build=None, targets=None):
    """`{phase: compiled model}` for `PHASES`: plain, wrapped, wrapped and projected."""
    build = build or (lambda: models.get("lenet5"))
    targets = PRUNE_10X if targets is None else targets

    def constraints():
        return {k: tfadmm.Sparsity(v) for k, v in targets.items()}

    return {
        "plain fit": _compiled(build()),
        "ADMM phase": _compiled(tfadmm.wrap(build(), constraints())),
        "masked retraining": _compiled(tfadmm.project(tfadmm.wrap(build(), constraints()))),
    }


def epoch_costs(train, repeats, build=None, targets=None):
    """Median seconds per epoch of plain fit, the ADMM phase and masked retraining.

    Args:
        train: the batched training dataset.
        repeats: interleaved epochs of each, after one warm-up epoch each.
        build: makes a fresh model (default: the zoo's LeNet-5).
        targets: `{layer: sparsity}` (default: `PRUNE_10X`, LeNet-5 at 10x).
    """
    runs = {name: (model, []) for name, model in phase_models(build, targets).items()}
    for model, _ in runs.values():  # warm-up: tracing and the first pass over the data
        _epoch_seconds(model, train)
    order = list(runs.values())
    for repeat in range(repeats):  # rotate the order, so that no phase always runs first
        for model, times in order[repeat % len(order):] + order[: repeat % len(order)]:
            times.append(_epoch_seconds(model, train))
    return {name: statistics.median(times) for name, (_, times) in runs.items()}


def update_seconds(model, repeats=3):
    """Median seconds of one Z/U update over every kernel of `model` (compiled as a graph)."""
    import tensorflow as tf

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


# -- several backends side by side ---------------------------------------------------


def _load_train(take):
    return data.load("fashion_mnist", batch_size=128, take=take, augment=False).train


def worker(take):
    """One backend's side: warm up its three models, then run one epoch of the phase named
    on each stdin line and answer its seconds (one JSON line each)."""
    train = _load_train(take)
    runs = phase_models()
    for model in runs.values():
        _epoch_seconds(model, train)
    print(json.dumps({"ready": keras.backend.backend(), "data": type(train).__name__}),
          flush=True)
    for line in sys.stdin:
        print(json.dumps({"seconds": _epoch_seconds(runs[line.strip()], train)}), flush=True)


def _start_worker(backend, take):
    command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker"]
    command += ["--take", str(take)] if take else []
    command += ["--block-tensorflow"] if backend != "tensorflow" else []
    env = dict(os.environ, KERAS_BACKEND=backend)
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env, cwd=HERE.parent)


def _answer(process):
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"a worker ended early (exit code {process.wait()})")
    return json.loads(line)


def backend_costs(backends, repeats, take):
    """`{"backends": {backend: {phase: [seconds, ratio]}}, ...}`, every epoch interleaved."""
    workers = {backend: _start_worker(backend, take) for backend in backends}
    try:
        ready = {backend: _answer(process) for backend, process in workers.items()}
        times = {(backend, phase): [] for backend in backends for phase in PHASES}
        order = list(times)
        for repeat in range(repeats):  # rotate, so that no (backend, phase) always runs first
            shift = repeat % len(order)
            for backend, phase in order[shift:] + order[:shift]:
                workers[backend].stdin.write(phase + "\n")
                workers[backend].stdin.flush()
                times[backend, phase].append(_answer(workers[backend])["seconds"])
    finally:
        for process in workers.values():
            process.stdin.close()
            process.wait()
    result = {}
    for backend in backends:
        medians = {phase: statistics.median(times[backend, phase]) for phase in PHASES}
        result[backend] = {phase: [sec, sec / medians["plain fit"]]
                           for phase, sec in medians.items()}
    return {"backends": result, "data": {b: r["data"] for b, r in ready.items()},
            "repeats": repeats, "take": take, "keras": keras.__version__,
            "command": "python benchmarks/overhead.py " + " ".join(sys.argv[1:])}


def render_backends(result):
    """The Markdown table of `backend_costs`' result."""
    lines = ["| backend | data | phase | seconds / epoch | ratio to plain fit |",
             "|---|---|---|--:|--:|"]
    for backend, phases in result["backends"].items():
        for phase, (sec, ratio) in phases.items():
            lines.append(f"| {backend} | {result['data'][backend]} | {phase} | {sec:.2f} | "
                         f"{ratio:.3f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--take", type=int, default=None, help="training examples (default: all)")
    parser.add_argument("--model", choices=tuple(MODELS), default="lenet5")
    parser.add_argument("--out", default=None,
                        help="default: benchmarks/results/overhead.md (lenet5), "
                             "overhead-<model>.md otherwise")
    parser.add_argument("--backends", nargs="+", choices=("tensorflow", "jax"),
                        help="measure the epoch ratios on these Keras backends side by side")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--block-tensorflow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.take)
        return
    if args.backends:
        result = backend_costs(args.backends, args.repeats, args.take)
        print(render_backends(result))
        BACKENDS_JSON.parent.mkdir(parents=True, exist_ok=True)
        BACKENDS_JSON.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return

    splits = data.load("fashion_mnist", batch_size=128, take=args.take, augment=False)
    build, targets, described = MODELS[args.model]
    costs = epoch_costs(splits.train, args.repeats, build=build, targets=targets)
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
    default = "overhead.md" if args.model == "lenet5" else f"overhead-{args.model}.md"
    out = pathlib.Path(args.out) if args.out else RESULTS / default
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = "".join([f" --model {args.model}" if args.model != "lenet5" else "",
                     f" --take {args.take}" if args.take else "", f" --repeats {args.repeats}"])
    out.write_text(
        f"# ADMM overhead\n\nMade by `python benchmarks/overhead.py{flags}` (medians of "
        f"{args.repeats} interleaved epochs after a warm-up each, {described}, Fashion-MNIST"
        f"{f' (first {args.take:,} training images)' if args.take else ''}, batch 128, "
        f"on {os.cpu_count()} CPU cores).\n\n{table}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
