"""Structured pruning: accuracy against FLOPs, and measured CPU latency of the shrunk model.

For LeNet-5 and ResNet-20 on Fashion-MNIST, at 2x and 4x fewer FLOPs:

- tfadmm: a recipe with `filters: s` on the targeted layers, run by
  `tfadmm.recipes.run_recipe` (as `tfadmm run`) with the shipped defaults,
  then `tfadmm.surgery.shrink` (what `tfadmm.strip(model, shrink=True)` does);
- L1-norm filter pruning (Li et al. 2017): the same layers lose the same
  number of filters, those of smallest L1 norm, at once; the shrunk model is
  then fine-tuned for the same number of epochs as the recipe's stages, with
  the recipe's default optimizer (Adam 1e-3), keeping the epoch of best
  validation accuracy (the recipe's keep-best rule).

`s` is the one filter sparsity of every targeted layer that brings the shrunk
model's FLOPs (multiply-adds counted from the layer shapes) down to the goal.
ResNet-20 prunes the first conv of each basic block (as Li et al. do): its
filters are followed by BatchNormalization and a same-padded 3x3 conv, where
the constant a pruned filter leaves is folded with `exact=False` (exact in the
interior, approximate at the borders); every accuracy reported is the shrunk
model's own, measured on the test set.

Latency: the dense baseline and each shrunk model, side by side in one
process: Keras `predict_on_batch` and a float32 TFLite interpreter, batch 1 and 64,
the median of `--repeats` timed runs after warm-up.

    nice -n 10 python benchmarks/structured.py             # the table (hours on 2 cores)
    nice -n 10 python benchmarks/structured.py --quick     # a smoke run on a subset
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfadmm  # noqa: E402
from tfadmm.surgery import shrink  # noqa: E402

MODELS = ("lenet5", "resnet20")
TARGETS = {
    "lenet5": ("conv1", "conv2", "fc1"),
    # The first conv of each basic block: its filters feed only the block's second conv.
    "resnet20": tuple(f"conv{s}_block{b}_1_conv" for s in (2, 3, 4) for b in (1, 2, 3)),
}


#: `tfadmm.models.get` arguments of each zoo model, for Fashion-MNIST's 28x28x1 images.
MODEL_ARGS = {"lenet5": None, "resnet20": {"input_shape": (28, 28, 1)}}


# -- FLOPs and parameters -------------------------------------------------------


def flops(model):
    """Multiply-adds of the Conv, DepthwiseConv and Dense layers, from their shapes."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = layer.depthwise_kernel.shape
            total += int(np.prod(layer.output.shape[1:-1])) * int(np.prod(kernel))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            positions = int(np.prod(layer.output.shape[1:-1]))
            total += positions * int(np.prod(layer.kernel.shape))
    return total


def parameters(model):
    return int(model.count_params())


# -- L1-norm filter pruning (the peer) --------------------------------------------


def zero_smallest_filters(model, layers, sparsity, norm=1):
    """Zeroes the `floor(sparsity * filters)` filters of smallest L`norm` in each layer."""
    for name in layers:
        layer = model.get_layer(name)
        weights = layer.get_weights()
        kernel = weights[0]
        count = kernel.shape[-1]
        scores = np.linalg.norm(kernel.reshape(-1, count), ord=norm, axis=0)
        drop = np.argsort(scores, kind="stable")[: int(np.floor(sparsity * count))]
        kernel[..., drop] = 0
        if len(weights) > 1:
            weights[1][drop] = 0
        layer.set_weights(weights)
    return model


def sparsity_for(baseline, layers, goal, exact):
    """The smallest grid sparsity whose shrunk model has at most `goal` FLOPs."""
    dense = flops(baseline)
    for sparsity in np.arange(0.05, 0.96, 0.01):
        pruned = zero_smallest_filters(common.clone(baseline), layers, sparsity)
        if flops(shrink(pruned, exact=exact)) <= dense / goal:
            return round(float(sparsity), 2)
    raise RuntimeError(f"No filter sparsity reaches {goal}x fewer FLOPs on {layers}")


def fine_tune(model, splits, epochs, log):
    steps = int(splits.train.cardinality())
    common.compile_classifier(model, tfadmm.OptimizerSpec().build(epochs, steps))
    return common.fit_keeping_best(model, splits, epochs, first_seed=2000,
                                   label="  l1 fine-tune", log=log)


# -- latency ------------------------------------------------------------------------


def _tflite_runner(model, batch):
    import tensorflow as tf

    from tfadmm.exporting import tflite_interpreter

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path = common.CACHE / f"latency_{model.name}_{id(model)}.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its signature
        path.write_bytes(converter.convert())
    interpreter = tflite_interpreter(path)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], (batch, *model.input.shape[1:]))
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).normal(size=(batch, *model.input.shape[1:])).astype("float32")

    def run():
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()

    return run


def _keras_runner(model, batch):
    x = np.random.default_rng(0).normal(size=(batch, *model.input.shape[1:])).astype("float32")
    return lambda: model.predict_on_batch(x)


def latencies(models, *, repeats, warmup=5):
    """`{name: {"keras_b1": ms, ...}}`: medians, the models timed in turn (interleaved)."""
    runners = {
        name: {f"{kind}_b{batch}": make(model, batch)
               for kind, make in (("keras", _keras_runner), ("tflite", _tflite_runner))
               for batch in (1, 64)}
        for name, model in models.items()
    }
    times = {name: {key: [] for key in r} for name, r in runners.items()}
    for r in runners.values():
        for run in r.values():
            for _ in range(warmup):
                run()
    for _ in range(repeats):
        for name, r in runners.items():
            for key, run in r.items():
                start = time.perf_counter()
                run()
                times[name][key].append((time.perf_counter() - start) * 1000)
    return {name: {key: statistics.median(v) for key, v in t.items()}
            for name, t in times.items()}


# -- the cells ------------------------------------------------------------------------


def baseline(model_name, splits, *, epochs, tag, log):
    """The dense model, trained once and cached (`common.dense_baseline`, the cache
    `resnet.py` shares for the same `--take`): `(model, path, record)`."""
    model, record = common.dense_baseline(splits, epochs=epochs, tag=tag, model=model_name,
                                          model_args=MODEL_ARGS[model_name], log=log)
    if record["epochs"] != epochs:  # the cache is named by --take only
        raise SystemExit(
            f"{common.baseline_paths(tag, model_name)[2]} was trained for {record['epochs']} "
            f"epochs, not --baseline-epochs {epochs}: delete it or pass "
            f"--baseline-epochs {record['epochs']}")
    return model, common.baseline_paths(tag, model_name)[0], record


def run_cells(model_name, splits, args, log):
    dense, path, dense_record = baseline(model_name, splits, epochs=args.baseline_epochs,
                                         tag=args.tag, log=log)
    exact = model_name == "lenet5"
    layers = TARGETS[model_name]
    rows = [{"model": model_name, "method": "dense", "goal": 1.0,
             "test_accuracy": dense_record["test_accuracy"], "flops": flops(dense),
             "params": parameters(dense)}]
    shrunk_models = {"dense": dense}
    for goal in args.goals:
        sparsity = sparsity_for(dense, layers, goal, exact)
        log(f"{model_name} {goal}x fewer FLOPs: filter sparsity {sparsity} on {len(layers)} layers")
        document = common.recipe_document(
            f"structured_{model_name}_{goal:g}x", [("filters", {n: {"filters": sparsity}
                                                               for n in layers})],
            budget=args.budget, seed=args.seed, baseline=path, take=args.take)
        model_path, record = common.run_recipe_document(document, tag=args.tag, log=log)
        admm = shrink(keras.models.load_model(model_path), exact=exact)
        rows.append({"model": model_name, "method": "tfadmm", "goal": goal,
                     "sparsity": sparsity, "test_accuracy": common.accuracy(admm, splits.test),
                     "masked_test_accuracy": record["test_accuracy"], "flops": flops(admm),
                     "params": parameters(admm), "seconds": record["seconds"],
                     "recipe": record["recipe"]})
        start = time.perf_counter()
        l1 = shrink(zero_smallest_filters(common.clone(dense), layers, sparsity), exact=exact)
        fine_tune(l1, splits, args.budget, log)
        rows.append({"model": model_name, "method": "l1-norm", "goal": goal,
                     "sparsity": sparsity, "test_accuracy": common.accuracy(l1, splits.test),
                     "flops": flops(l1), "params": parameters(l1),
                     "seconds": time.perf_counter() - start})
        shrunk_models[f"tfadmm {goal:g}x"] = admm
        shrunk_models[f"l1-norm {goal:g}x"] = l1
    timing = latencies(shrunk_models, repeats=args.repeats)
    dense_flops, dense_params = rows[0]["flops"], rows[0]["params"]
    for row in rows:
        key = "dense" if row["method"] == "dense" else f"{row['method']} {row['goal']:g}x"
        row["latency_ms"] = timing[key]
        row["flops_reduction"] = dense_flops / row["flops"]
        row["params_reduction"] = dense_params / row["params"]
    return rows


def table(rows):
    lines = [
        "| model | method | FLOPs goal | test acc. | FLOPs | FLOPs red. | params | params red. "
        "| Keras b1 ms | Keras b64 ms | TFLite b1 ms | TFLite b64 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["latency_ms"]
        lines.append(
            f"| {r['model']} | {r['method']} | {r['goal']:g}x | {r['test_accuracy']:.4f} "
            f"| {r['flops']:,} | {r['flops_reduction']:.2f}x | {r['params']:,} "
            f"| {r['params_reduction']:.2f}x | {t['keras_b1']:.2f} | {t['keras_b64']:.2f} "
            f"| {t['tflite_b1']:.3f} | {t['tflite_b64']:.2f} |")
    return "\n".join(lines)


def command(args):
    """The command line that reruns `args`' cells."""
    parts = ["python benchmarks/structured.py", "--models", *args.models]
    if args.quick:
        return " ".join([*parts, "--quick"])
    parts += ["--goals", *(f"{g:g}" for g in args.goals), "--budget", str(args.budget),
              "--baseline-epochs", str(args.baseline_epochs), "--seed", str(args.seed),
              "--repeats", str(args.repeats)]
    if args.take is not None:
        parts += ["--take", str(args.take)]
    return " ".join(parts)


def render(result):
    """RESULTS.md's structured-pruning text: the methods, per model its settings and command,
    then one table."""
    lines = [
        "tfadmm: a recipe with `filters: s` on the layers listed below, run by `run_recipe` "
        "with the shipped defaults, then `tfadmm.surgery.shrink`; l1-norm: the same number of "
        "filters removed at once by L1 norm (Li et al. 2017), then the same epochs of Adam 1e-3 "
        "with the best validation epoch kept. `s` is the one filter sparsity that brings the "
        "shrunk model's multiply-adds down to the goal. Accuracies are the shrunk models' own, "
        "on the test set. Latency: the dense and shrunk models timed in turn in one process, "
        "Keras `predict_on_batch` and a float32 TFLite interpreter, batch 1 and 64.",
        "",
    ]
    for model_name, entry in result.items():
        s = entry["settings"]
        images = "full Fashion-MNIST" if s["take"] is None else \
            f"the first {s['take']:,} Fashion-MNIST training images"
        dense = entry["rows"][0]
        lines.append(
            f"- **{model_name}** (`{entry['command']}`, {entry['date']}): {images}, "
            f"seed {s['seed']}, filters pruned in {', '.join(TARGETS[model_name])}; dense baseline "
            f"{dense['test_accuracy']:.2%} test ({s['baseline_epochs']} epochs); "
            f"{s['budget']} epochs after it for each method; latency medians of "
            f"{s['repeats']} runs.")
    rows = [row for entry in result.values() for row in entry["rows"]]
    return "\n".join([*lines, "", table(rows)])


def read_result(path):
    """The cells kept in `path` (`{model: {...}}`); empty if there is none."""
    return json.loads(path.read_text()) if path.exists() else {}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--goals", type=float, nargs="+", default=[2.0, 4.0],
                        help="FLOPs reduction goals")
    parser.add_argument("--budget", type=int, default=20, help="epochs after the baseline")
    parser.add_argument("--baseline-epochs", type=int, default=common.BASELINE_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--take", type=int, default=None, help="training images")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per latency")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2048 images, 2 epochs, 5 timed runs")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="default: results/structured.json "
                        "(--quick: cache/structured-quick.json)")
    args = parser.parse_args(argv)
    args.tag = "" if args.take is None else f"-take{args.take}"
    if args.quick:
        args.take, args.budget, args.baseline_epochs, args.repeats = 2048, 2, 1, 5
        args.tag = "_quick"
    if args.out is None:
        args.out = common.records(
            "structured-quick.json" if args.quick else "structured.json", quick=args.quick)
    return args


def main(argv=None):
    """Runs the cells of `--models` and keeps them in `--out` beside the other models' cells."""
    args = parse_args(argv)
    splits = common.load_splits(args.seed, take=args.take)
    for model_name in args.models:
        rows = run_cells(model_name, splits, args, print)
        result = read_result(args.out)
        result[model_name] = {
            "settings": {"take": args.take, "budget": args.budget, "seed": args.seed,
                         "baseline_epochs": args.baseline_epochs, "goals": args.goals,
                         "repeats": args.repeats},
            "command": command(args), "date": str(datetime.date.today()), "rows": rows,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_suffix(".json.partial")
        partial.write_text(json.dumps(result, indent=2))
        partial.replace(args.out)
    print(render(read_result(args.out)))


if __name__ == "__main__":
    main()
