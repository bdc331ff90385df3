"""Quantization quality through the product path, against post-training quantization (PTQ).

Every cell starts from the shared dense LeNet-5 (`common.dense_baseline`) and runs
a recipe that names only the model file, the data, each stage's targets and its
epochs (written to `benchmarks/cache/recipes/`), with `tfadmm.recipes.run_recipe`,
the code behind `tfadmm run`: every other setting is tfadmm's shipped default.
Scales are one per output channel (`per_channel: true` in the targets). Beside
each level set, the PTQ baselines need no training:

- round-to-nearest: `tfadmm.wrap` then `tfadmm.project` at once (the levels'
  scale fitted per output channel, the best of the mean-based, max-based and
  MSE-optimal starts), the starting point every ADMM stage is measured from;
- Keras' own `model.quantize("int8")` and `("int4")` (the layers Keras quantizes).

    python benchmarks/quantization.py                    # budget 12 epochs per cell
    python benchmarks/quantization.py --budget 30 --only 4-bit ternary
    python benchmarks/quantization.py --quick            # 6,000 images, 2 epochs

`benchmark(...)` returns the Markdown section of RESULTS.md (run_all.py).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

import tfadmm  # noqa: E402
from tfadmm.recipes.loader import parse_recipe  # noqa: E402

LAYERS = common.LAYERS
MIDDLE, ENDS = ("conv2", "fc1"), ("conv1", "fc2")


def _levels(spec):
    return {**spec, "per_channel": True}


def variants():
    """`{name: (description, [stage targets as in a recipe, ...])}`."""
    every = lambda spec: {n: _levels(spec) for n in LAYERS}  # noqa: E731
    return {
        "4-bit": ("a * {-7..7}, all layers", [every({"bits": 4})]),
        "3-bit": ("a * {-3..3}, all layers", [every({"bits": 3})]),
        "ternary": ("{-a, 0, +a}, all layers", [every({"ternary": True})]),
        "binary, 8-bit ends": (
            "{-a, +a} for conv2, fc1; 8-bit conv1, fc2",
            [{**{n: _levels({"binary": True}) for n in MIDDLE},
              **{n: _levels({"bits": 8}) for n in ENDS}}],
        ),
        "binary": (
            "{-a, +a}; conv2+fc1, then conv1+fc2",
            [{n: _levels({"binary": True}) for n in MIDDLE},
             {n: _levels({"binary": True}) for n in ENDS}],
        ),
    }


def round_to_nearest(dense, stages):
    """PTQ with tfadmm's projections: every stage's targets mapped at once, no training."""
    model = common.clone(dense)
    for targets in stages:
        document = {"version": 1, "name": "ptq", "model": {"zoo": "lenet5"},
                    "data": {"name": "fashion_mnist"},
                    "stages": [{"name": "s", "targets": targets}]}
        recipe = parse_recipe(yaml.safe_dump(document), "ptq.yaml")
        wrapped = tfadmm.wrap(model, recipe.stages[0].target_dict)
        model = tfadmm.strip(tfadmm.project(wrapped))
    return model


def keras_quantized(dense, mode):
    """Keras' own post-training quantization of a copy of `dense`."""
    model = common.clone(dense)
    model.quantize(mode)
    return model


def distinct_values(model):
    return "/".join(
        str(len(np.unique(keras.ops.convert_to_numpy(model.get_layer(n).kernel))))
        for n in LAYERS
    )


def run_cell(name, stages, *, budget, seed, take, tag, overrides=(), log=print):
    """Runs one variant's recipe with `run_recipe`; returns `(model path, record)`."""
    keras_path, _, _ = common.baseline_paths(tag)
    slug = name.replace(" ", "").replace(",", "-")
    document = common.recipe_document(
        f"quantization-{slug}-seed{seed}",
        [(f"stage{i + 1}", targets) for i, targets in enumerate(stages)],
        budget=budget, seed=seed, baseline=keras_path, take=take)
    path, record = common.run_recipe_document(document, tag=tag, overrides=overrides, log=log)
    record.update(name=name, seed=seed, budget=budget)
    return path, record


def benchmark(dense, splits, *, budget=12, seed=0, take=None, only=None, overrides=(),
              log=print):
    """Runs every variant and its PTQ baselines; returns `(markdown, records)`."""
    tag = f"-take{take}" if take else ""
    base = common.accuracy(dense, splits.test)
    records, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        dense_bytes = tfadmm.export(dense, pathlib.Path(tmp) / "dense").dense_savedmodel_bytes
        for mode in ("int8", "int4"):
            try:
                acc = common.accuracy(keras_quantized(dense, mode), splits.test)
                rows.append((f"Keras `quantize(\"{mode}\")`", "Keras' PTQ, its layers", acc,
                             "-", "-", "-"))
            except Exception as error:  # a Keras without this mode: say so in the table
                rows.append((f"Keras `quantize(\"{mode}\")`", f"not available: {error}", None,
                             "-", "-", "-"))
        for name, (description, stages) in variants().items():
            if only and name not in only:
                continue
            ptq = round_to_nearest(dense, stages)
            rows.append((f"{name}: round-to-nearest PTQ", description,
                         common.accuracy(ptq, splits.test), distinct_values(ptq), "-", "-"))
            model_path, record = run_cell(name, stages, budget=budget, seed=seed, take=take,
                                          tag=tag, overrides=overrides, log=log)
            model = keras.models.load_model(model_path)
            exported = tfadmm.export(model, pathlib.Path(tmp) / name.replace(" ", "-"))
            record.update(ptq_test_accuracy=rows[-1][2], bytes=exported.bytes)
            records.append(record)
            rows.append((f"{name}: tfadmm", description, record["test_accuracy"],
                         distinct_values(model), f"{exported.bytes:,}",
                         f"{dense_bytes / exported.bytes:.1f}x"))
            log(f"{name}: PTQ {rows[-2][2]:.2%}, tfadmm {record['test_accuracy']:.2%} "
                f"(start {record['stages'][0]['start_val_accuracy']}, kept "
                f"{[s['chosen'] for s in record['stages']]})")
    lines = [
        f"From the shared dense baseline ({base:.2%} test). tfadmm: `run_recipe` on recipes "
        f"that give only targets (per-channel scales) and epochs: {budget} epochs per cell, "
        "split evenly over its stages, each half ADMM and half masked retraining; every other "
        f"setting is the shipped default{_overridden(overrides)}. Seed "
        f"{seed}{f', {take} training images' if take else ''}. Bytes: `tfadmm.export` "
        f"compressed SavedModel (dense SavedModel: {dense_bytes:,} bytes).",
        "",
        "| model | levels | test accuracy | drop (pp) | distinct values conv1/conv2/fc1/fc2 "
        "| SavedModel bytes | vs dense |",
        "|---|---|--:|--:|---|--:|--:|",
    ]
    for label, description, acc, distinct, size, ratio in rows:
        shown = "-" if acc is None else f"{acc:.2%}"
        drop = "-" if acc is None else f"{100 * (base - acc):.2f}"
        lines.append(f"| {label} | {description} | {shown} | {drop} | {distinct} | {size} | "
                     f"{ratio} |")
    return "\n".join(lines), records


def _overridden(overrides):
    return f" but for `{'`, `'.join(overrides)}`" if overrides else ""


def save(path, budget, take, table, records, overrides=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"budget": budget, "take": take, "variants": list(variants()),
                                "overrides": list(overrides), "table": table,
                                "records": records}, indent=1))


def finished(path, budget, take, overrides=()):
    """The table of a finished full run at `path` with these settings, else None."""
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = (done.get("budget"), done.get("take"), done.get("overrides", [])) == (
        budget, take, list(overrides))
    complete = {r["name"] for r in done.get("records", [])} == set(variants())
    return done.get("table") if same and complete else None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=12, help="epochs per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--take", type=int, default=None, help="training images")
    parser.add_argument("--only", nargs="*", default=None, choices=list(variants()))
    parser.add_argument("--quick", action="store_true", help="6,000 images, budget 2")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a recipe override, as `tfadmm run --set`")
    parser.add_argument("--out", type=pathlib.Path, default=common.records("quantization.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.take, args.budget = args.take or 6000, 2
    return args


def main(argv=None):
    args = parse_args(argv)
    tag = f"-take{args.take}" if args.take else ""
    splits = common.load_splits(0, take=args.take)
    dense, _ = common.dense_baseline(splits, epochs=2 if args.take else common.BASELINE_EPOCHS,
                                     tag=tag, log=lambda line: print(line, flush=True))
    table, records = benchmark(dense, splits, budget=args.budget, seed=args.seed, take=args.take,
                               only=args.only, overrides=args.overrides,
                               log=lambda line: print(line, flush=True))
    save(args.out, args.budget, args.take, table, records, args.overrides)
    print(table)


if __name__ == "__main__":
    main()
