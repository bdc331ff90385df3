"""ResNet-20 on Fashion-MNIST: pruning against tfmot, quantization against PTQ, and cost.

Every cell starts from one cached dense ResNet-20 (`tfadmm.models.get("resnet20",
input_shape=(28, 28, 1))`, `common.dense_baseline`: Adam 1e-3 cosine-decayed over
`--baseline-epochs`, the best validation epoch kept) and gets `--budget` epochs after it.
The first conv `conv1` stays dense and `fc` is pruned lighter, as in
`recipes/resnet20_fmnist_8x.yaml`: `sparsities(rate)` gives the per-layer sparsities of the
18 block convs and `fc` for both tfadmm and tfmot, the rate counted over those 19 layers.

- pruning, `tfadmm`: a recipe (written to `benchmarks/cache/recipes/`) with two progressive
  stages (rate / 2, then rate), half the budget each, each stage half ADMM and half masked
  retraining (`common.recipe_document`), run by `tfadmm.recipes.run_recipe`; every other
  setting is tfadmm's shipped default (batch-norm recalibration off, `distill: auto`).
  `tfadmm-bn`: the same with `defaults: {retrain: {recalibrate_bn: true}}`;
  `tfadmm-plain`: the same with `defaults: {distill: false}` (the default's distillation off).
  `tfadmm-sensitivity` / `tfadmm-global`: the same with each stage's per-layer rates left to
  tfadmm, `allocate: {rate, method, layers}` over the same 19 layers (`tfadmm.allocate`).
  `tfmot`: `peer_tfmot.py --model resnet20` in its own virtualenv: the same architecture
  in tf_keras loaded from the same baseline (batch norms included), `prune_low_magnitude`
  on the same layers with `PolynomialDecay`, the best validation epoch after its schedule.
  `tfmot-distill`: the same with tfadmm's distillation loss, the dense baseline as teacher.
- quantization: 4-bit and ternary per-channel levels on the 18 block convs, `conv1` and `fc`
  at 8 bits, one recipe stage with the whole budget; beside each, round-to-nearest PTQ
  (`quantization.round_to_nearest`: wrap + project, no training).
- cost: seconds per epoch of plain fit, the ADMM phase and masked retraining at 8x
  (`overhead.epoch_costs`, interleaved), tfmot's pruning against its own plain fit, one
  Z/U update of every kernel (`overhead.update_seconds`); then the export sizes of the
  `tfadmm` 8x model (`export_size.measure_model`), with the served SavedModel's and the
  TFLite model's outputs checked against Keras'.

Splits: the first `--take` training images; validation the last `--validation-split`
share (`tfadmm.data.load`'s arithmetic: 4,286 images at the defaults), which every choice
reads (the baseline's epoch, the recipes' checkpoints, tfmot's epoch, `allocate:`); test
all 10,000 test images, which `take` would shrink in proportion: a tfadmm cell's model is
evaluated on them as `tfadmm evaluate MODEL --recipe <the recipe without take>` does
(`tfadmm.recipes.evaluate`), and its run's own figure on the shrunk split is kept as
`run_test_accuracy`. No choice reads the test set. Each cell runs in its own process
(`--jobs` at a time) and leaves its record in `results/<out stem>-parts/`; a rerun with the
same settings keeps the finished cells. `render(result)` gives the RESULTS.md section (run_all.py).

    # The full grid (20,000 images, budget 10, rates 4 8 16); the cost part alone, so that
    # no other cell shares the cores while it times epochs:
    python benchmarks/resnet.py --only pruning quantization --jobs 2
    python benchmarks/resnet.py --only cost
    python benchmarks/resnet.py --only pruning --rates 8 --methods tfadmm tfmot
    python benchmarks/resnet.py --quick           # 2,000 images, budget 2, rate 8
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfadmm.data.pipeline import split_sizes  # noqa: E402
from tfadmm.recipes import evaluate  # noqa: E402

MODEL = "resnet20"
MODEL_ARGS = {"input_shape": (28, 28, 1)}
BLOCK_CONVS = tuple(f"conv{stage}_block{block}_{i}_conv"
                    for stage in (2, 3, 4) for block in (1, 2, 3) for i in (1, 2))
PRUNED = (*BLOCK_CONVS, "fc")
# `fc` keeps (up to all of its weights) 4x the share the block convs keep; conv1 is dense.
FC_KEPT = 4.0
ENDS = ("conv1", "fc")  # 8 bits in the quantization cells
LEVELS = {"4-bit": {"bits": 4}, "ternary": {"ternary": True}}
# Per-layer rates derived by tfadmm (`allocate:`) instead of `sparsities(rate)`.
ALLOCATIONS = ("tfadmm-sensitivity", "tfadmm-global")
METHODS = ("tfadmm", "tfadmm-bn", "tfadmm-plain", *ALLOCATIONS, "tfmot", "tfmot-global",
           "tfmot-distill")
PARTS = ("pruning", "quantization", "cost")
BASELINE_EPOCHS = 15
# Held out of the training data for every choice; with --take 10000, 4,286 images (about
# 0.5 points of sampling error) where 0.1 left 1,112 (about 1 point).
VALIDATION_SPLIT = 0.3
EXPORT_RATE = 8


@functools.cache
def layer_sizes():
    """`{layer: kernel weights}` of the pruned layers."""
    model = build()
    return {n: int(np.prod(model.get_layer(n).kernel.shape)) for n in PRUNED}


def build():
    from tfadmm import models

    return models.get(MODEL, **MODEL_ARGS)


def sparsities(rate):
    """Per-layer sparsities of the block convs and `fc` for `rate` over those 19 layers."""
    kept = {**{n: 1.0 for n in BLOCK_CONVS}, "fc": FC_KEPT}
    return common.layer_sparsities(rate, kept=kept, sizes=layer_sizes())


def quantization_targets(level):
    """One stage's targets: `level` on the block convs, 8 bits on conv1 and fc, per channel."""
    return {**{n: {**LEVELS[level], "per_channel": True} for n in BLOCK_CONVS},
            **{n: {"bits": 8, "per_channel": True} for n in ENDS}}


def _tag(args):
    """The baseline cache's name: its training images, the validation it chose its epoch
    on, and its test figure on all the test images."""
    return f"-take{args.take}-val{args.validation_split:g}-alltest"


def load_splits(args):
    """`--take` training images, `--validation-split` held out, all the test images; loaded
    once per process (a cell needs them for the baseline, its peer check and its test)."""
    return _splits(args.take, args.validation_split)


@functools.cache
def _splits(take, validation_split):
    return common.load_splits(0, take=take, validation_split=validation_split, full_test=True)


def peer_splits(args):
    """`pruning.run_tfmot`'s arguments for the splits of `load_splits`."""
    return {"take": args.take, "validation_split": args.validation_split, "full_test": True}


def test_accuracy(model, args, record):
    """`record`'s `test_accuracy` made the figure on all the test images (`tfadmm evaluate`);
    the run's own figure on the split `take` shrank kept as `run_test_accuracy`."""
    record["run_test_accuracy"] = record["test_accuracy"]
    record["test_accuracy"] = evaluate(model, load_splits(args).test)
    return record


def baseline(args, splits, log=print):
    """The cached dense ResNet-20 for `--take` and `--validation-split` (trained the first
    time); `(model, record)`."""
    model, record = common.dense_baseline(splits, epochs=args.baseline_epochs, tag=_tag(args),
                                          model=MODEL, model_args=MODEL_ARGS, log=log)
    if record["epochs"] != args.baseline_epochs:  # the cache is not named by the epochs
        raise SystemExit(
            f"{common.baseline_paths(_tag(args), MODEL)[2]} was trained for {record['epochs']} "
            f"epochs, not --baseline-epochs {args.baseline_epochs}: delete it or pass "
            f"--baseline-epochs {record['epochs']}")
    return model, record


# -- cells -----------------------------------------------------------------------


STAGES = 2  # progressive stages of a tfadmm pruning cell (`--stages`)


def stage_rates(rate, stages=STAGES):
    """Each stage's rate: the rate halved from stage to stage, ending at `rate`
    (two stages: rate / 2, then rate)."""
    return [rate / 2 ** (stages - 1 - i) for i in range(stages)]


def pruning_stages(method, rate, stages=STAGES):
    """The recipe stages of a tfadmm pruning cell (`stage_rates`), as
    `common.recipe_document` takes them (`allocate:` for the `ALLOCATIONS` methods)."""
    rates = stage_rates(rate, stages)
    if method in ALLOCATIONS:
        # The same layers and rate, the per-layer rates computed on the validation split.
        allocate = {"method": method.removeprefix("tfadmm-"), "layers": list(PRUNED)}
        return [(f"prune-{r:g}x", {"allocate": {"rate": float(r), **allocate}}) for r in rates]
    return [(f"prune-{r:g}x", {n: {"sparsity": float(s)} for n, s in sparsities(r).items()})
            for r in rates]


def pruning_cell(method, rate, args, log=print):
    if method.startswith("tfmot"):
        import pruning

        targets = sparsities(rate)
        if method == "tfmot-global":  # the peer given tfadmm's global allocation at `rate`
            import tfadmm

            dense, _ = baseline(args, load_splits(args), log)
            allocation = tfadmm.allocate(dense, rate, method="global", layers=list(PRUNED))
            targets = {name: float(spec.sparsity) for name, spec in allocation.items()}
        record = pruning.run_tfmot(rate, budget=args.budget, seed=args.seed, tag=_tag(args),
                                   model=MODEL, sparsities=targets,
                                   prune_fraction=args.prune_fraction,
                                   distill=method == "tfmot-distill", log=log,
                                   **peer_splits(args))
        record["method"] = method
        # The peer's tf_keras copy of the baseline against Keras 3's, on the same images.
        peer_logits = np.asarray(record.pop("baseline_logits"))
        splits = load_splits(args)
        dense, _ = baseline(args, splits, log)
        images = np.concatenate([x.numpy() for x, _ in splits.test])[:len(peer_logits)]
        ours = keras.ops.convert_to_numpy(dense(images, training=False))
        record["baseline_logits_max_abs_diff"] = float(np.max(np.abs(ours - peer_logits)))
        return record
    keras_path, _, _ = common.baseline_paths(_tag(args), MODEL)
    stages = pruning_stages(method, rate, args.stages)
    defaults = {"tfadmm-bn": {"retrain": {"recalibrate_bn": True}},
                "tfadmm-plain": {"distill": False}}.get(method)
    document = common.recipe_document(
        f"resnet20-{method}-{rate:g}x-seed{args.seed}", stages, budget=args.budget,
        seed=args.seed, baseline=keras_path, take=args.take, defaults=defaults,
        validation_split=args.validation_split)
    path, record = common.run_recipe_document(document, tag=_tag(args),
                                                overrides=args.overrides, log=log)
    model = keras.models.load_model(path)
    test_accuracy(model, args, record)
    record.update(model=str(path), rate=common.achieved_rate(model, PRUNED),
                  kept=common.kept_shares(model, PRUNED))
    return record


def distinct_values(model, layers=BLOCK_CONVS):
    """The most distinct kernel values in any output channel of `layers` (per-channel scales)."""
    most = 0
    for name in layers:
        kernel = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
        channels = kernel.reshape(-1, kernel.shape[-1]).T
        most = max(most, *(len(np.unique(channel)) for channel in channels))
    return most


def quantization_cell(level, args, log=print):
    import quantization

    import tfadmm

    splits = load_splits(args)
    dense, _ = baseline(args, splits, log)
    targets = quantization_targets(level)
    ptq = quantization.round_to_nearest(dense, [targets])
    keras_path, _, _ = common.baseline_paths(_tag(args), MODEL)
    document = common.recipe_document(
        f"resnet20-{level}-seed{args.seed}", [(level, targets)], budget=args.budget,
        seed=args.seed, baseline=keras_path, take=args.take,
        validation_split=args.validation_split)
    path, record = common.run_recipe_document(document, tag=_tag(args),
                                                overrides=args.overrides, log=log)
    model = keras.models.load_model(path)
    test_accuracy(model, args, record)
    with tempfile.TemporaryDirectory() as tmp:
        exported = tfadmm.export(model, pathlib.Path(tmp) / "model")
    record.update(model=str(path), ptq_test_accuracy=common.accuracy(ptq, splits.test),
                  ptq_distinct=distinct_values(ptq), distinct=distinct_values(model),
                  bytes=exported.bytes, dense_bytes=exported.dense_savedmodel_bytes)
    return record


def cost_cell(args, log=print):
    import overhead
    import pruning

    splits = load_splits(args)
    targets = sparsities(EXPORT_RATE)
    costs = overhead.epoch_costs(splits.train, args.cost_repeats, build=build, targets=targets)
    plain = costs["plain fit"]
    epochs = {name: [sec, sec / plain] for name, sec in costs.items()}
    peer = pruning.run_tfmot(EXPORT_RATE, budget=1, seed=0, timing=args.cost_repeats,
                             tag=_tag(args), model=MODEL, sparsities=targets, log=log,
                             **peer_splits(args))
    epochs["plain fit (tf_keras, tfmot's process)"] = [peer["plain_seconds"], 1.0]
    epochs["tfmot pruning"] = [peer["tfmot_seconds"],
                               peer["tfmot_seconds"] / peer["plain_seconds"]]
    weights, seconds = overhead.update_seconds(build())
    return {"epochs": epochs, "update": [weights, seconds], "repeats": args.cost_repeats}


def export_record(pruned_record, args):
    """Export sizes of the `tfadmm` model at `EXPORT_RATE`, outputs checked against Keras."""
    import export_size

    from tfadmm.exporting import evaluate_tflite

    splits = load_splits(args)
    model = keras.models.load_model(pruned_record["model"])
    with tempfile.TemporaryDirectory() as tmp:
        row = export_size.measure_model(model, pathlib.Path(tmp), f"{EXPORT_RATE}x")
        row["TFLite test accuracy"] = evaluate_tflite(pathlib.Path(tmp) / f"m{EXPORT_RATE}x.tflite",
                                                      splits.test)
    row["Keras test accuracy"] = common.accuracy(model, splits.test)
    return row


# -- the grid --------------------------------------------------------------------


def cells(args):
    """`[(part name, argv of one cell)]` in the order they run."""
    out = []
    if "pruning" in args.only:
        out += [(f"pruning-{m}-{r:g}x", ["--cell", "pruning", m, f"{r:g}"])
                for r in args.rates for m in args.methods]
    if "quantization" in args.only:
        out += [(f"quantization-{q}", ["--cell", "quantization", q]) for q in args.levels]
    if "cost" in args.only:
        out.append(("cost", ["--cell", "cost"]))
    return out


def settings(args):
    """What every cell's result depends on (the cost cell's repeats are in its record)."""
    return {"take": args.take, "validation_split": args.validation_split, "test": "all",
            "budget": args.budget, "seed": args.seed,
            "baseline_epochs": args.baseline_epochs,
            **({"overrides": args.overrides} if args.overrides else {}),
            **({"stages": args.stages} if args.stages != STAGES else {}),
            **({"prune_fraction": args.prune_fraction} if args.prune_fraction is not None
               else {})}


def _same_settings(recorded, args):
    # Results written before `cost_repeats` left the settings still carry it.
    recorded = {k: v for k, v in (recorded or {}).items() if k != "cost_repeats"}
    return recorded == settings(args)


def run_one(cell, args, log=print):
    kind, *rest = cell
    if kind == "pruning":
        record = pruning_cell(rest[0], float(rest[1]), args, log)
        record.update(method=rest[0], target_rate=float(rest[1]))
    elif kind == "quantization":
        record = quantization_cell(rest[0], args, log)
        record.update(level=rest[0])
    else:
        record = cost_cell(args, log)
    return record


def _kept(path, args):
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):  # not there, or cut short by an interrupted write
        return None
    if not _same_settings(done.get("settings"), args):
        return None
    if path.stem == "cost" and done["record"].get("repeats") != args.cost_repeats:
        return None
    return done


def run_grid(args, command):
    """Each cell in its own process, `--jobs` at a time; finished cells are kept."""
    parts = args.out.parent / f"{args.out.stem}-parts"
    parts.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BENCH_THREADS=str(max(1, (os.cpu_count() or 2) // args.jobs)))
    shared = ["--take", str(args.take), "--validation-split", repr(args.validation_split),
              "--budget", str(args.budget), "--seed", str(args.seed),
              "--baseline-epochs", str(args.baseline_epochs),
              "--cost-repeats", str(args.cost_repeats), "--stages", str(args.stages)]
    if args.prune_fraction is not None:
        shared += ["--prune-fraction", repr(args.prune_fraction)]
    for override in args.overrides:
        shared += ["--set", override]

    def one(item):
        name, argv = item
        path = parts / f"{name}.json"
        done = _kept(path, args)
        if done is not None:
            print(f"{name}: kept from {path.name}", flush=True)
            return name, done
        if args.kept_only:
            print(f"{name}: not run (--kept-only)", flush=True)
            return name, None
        print(f"{name}: running", flush=True)
        finished = subprocess.run([sys.executable, __file__, *argv, *shared, "--out", str(path)],
                                  env=env, capture_output=True, text=True)
        for line in finished.stdout.splitlines():
            print(f"  {name}: {line}", flush=True)
        if finished.returncode:
            print(f"{name} failed:\n{finished.stderr[-3000:]}", flush=True)
            return name, None
        done = json.loads(path.read_text())
        done["command"] = command
        path.write_text(json.dumps(done, indent=1))
        return name, done

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        return dict(pool.map(one, cells(args)))


def collect(out, baseline_record, args, done):
    """The whole result: earlier parts of `out` kept, this run's on top."""
    try:
        result = json.loads(out.read_text())
        if not _same_settings(result.get("settings"), args):
            result = {}
    except (OSError, ValueError):
        result = {}
    result.update(settings=settings(args), baseline=baseline_record)
    result.setdefault("pruning", {})
    result.setdefault("quantization", {})
    commands = set(result.get("commands", []))
    for name, part in done.items():
        if part is None:
            continue
        commands.add(part.get("command", ""))
        if name.startswith("pruning-"):
            result["pruning"][name.removeprefix("pruning-")] = part["record"]
        elif name.startswith("quantization-"):
            result["quantization"][part["record"]["level"]] = part["record"]
        else:
            result["cost"] = part["record"]
    result["commands"] = sorted(c for c in commands if c)
    return result


# -- Markdown --------------------------------------------------------------------


def _pct(value):
    return "-" if value is None else f"{value:.2%}"


# Each file: a `resnet.py --only pruning ... --set <override> --out
# benchmarks/results/levers-resnet/<name>.json` result, one setting changed.
LEVERS = common.records("levers-resnet")


def lever_results(directory=LEVERS):
    """The lever results in `directory` (`resnet.py ... --out <directory>/<name>.json`)."""
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def seed_runs(result, others):
    """`result` then `others` (the same grid's other seeds) by seed, and their seeds."""
    runs = [result, *sorted(others, key=lambda r: r["settings"]["seed"])]
    return runs, [r["settings"]["seed"] for r in runs]


def setting_changes(settings, method):
    """What a result's `settings` change for `method`'s cells, against the grid's
    defaults: `--set` overrides and `--stages` (tfadmm cells), `--prune-fraction` (tfmot)."""
    if method.startswith("tfmot"):
        fraction = settings.get("prune_fraction")
        return [] if fraction is None else [f"sparsity ramped over {fraction:.0%} of the budget"]
    changes = list(settings.get("overrides", []))
    if settings.get("stages", STAGES) != STAGES:
        changes.append(f"{settings['stages']} stage(s)")
    return changes


def render_levers(result, directory=LEVERS):
    """The settings tried on ResNet-20, beside the table's own cell of each method and
    rate they ran (a cell whose settings change nothing for its method is left out).

    Nothing when `directory` holds no result. The comparison reads validation accuracy.
    """
    rows, commands, tried = [], [], set()
    for done in lever_results(directory):
        seed = done["settings"]["seed"]
        commands += done.get("commands", [])
        for r in done.get("pruning", {}).values():
            changes = setting_changes(done["settings"], r["method"])
            if not changes:
                continue
            rows.append((r["target_rate"], ", ".join(
                [r["method"], *changes, *([f"seed {seed}"] if seed else [])]), r))
            tried.add((r["method"], r["target_rate"]))
    if not rows:
        return []
    rows += [(r["target_rate"], f"{r['method']} (table above)", r)
             for r in result.get("pruning", {}).values()
             if (r["method"], r["target_rate"]) in tried]
    lines = ["", "Settings tried (" + "; ".join(f"`{c}`" for c in commands) + "):", "",
             "| rate | setting | validation | test |", "|--:|---|--:|--:|"]
    for rate, setting, r in sorted(rows, key=lambda row: (row[0], row[1])):
        lines.append(f"| {common.fmt_rate(rate)} | {setting} | {_pct(r['val_accuracy'])} | "
                     f"{_pct(r['test_accuracy'])} |")
    return lines


# The settings a lever result may change (`setting_changes`); the rest must match the grid's.
LEVER_KEYS = ("overrides", "stages", "prune_fraction")
# Each tool `render_tuned` chooses for, and the grid's methods among its candidates: tfmot's
# distillation variant too (tfadmm's default already distills).
TUNED = {"tfadmm": ("tfadmm",), "tfmot": ("tfmot", "tfmot-distill")}


def render_tuned(result, others, directory=LEVERS):
    """tfadmm and tfmot each with its settings chosen on validation, seed by seed.

    Each seed's candidates for a tool and rate: the grid's cells of the tool's `TUNED`
    methods (`result` and `others`, as in `render_seeds`) and the levers' cells of that
    seed and method made on the same grid otherwise (`directory`, as in
    `render_levers`); the candidate with the best validation accuracy is kept. A rate is
    shown when both tools had a choice there on every seed. Nothing if none.
    """
    runs, seeds = seed_runs(result, others)
    tool_of = {method: tool for tool, methods in TUNED.items() for method in methods}
    candidates = {}  # (tool, rate, seed) -> [(setting, record)]
    for run in runs:
        for r in run.get("pruning", {}).values():
            if r["method"] in tool_of:
                key = (tool_of[r["method"]], r["target_rate"], run["settings"]["seed"])
                setting = "default" if r["method"] in TUNED else r["method"]
                candidates.setdefault(key, []).append((setting, r))
    for done in lever_results(directory):
        grid = {k: v for k, v in done["settings"].items() if k not in LEVER_KEYS}
        if not same_grid(grid, result["settings"]):
            continue
        for r in done.get("pruning", {}).values():
            key = (r["method"], r["target_rate"], done["settings"]["seed"])
            changes = setting_changes(done["settings"], r["method"])
            if key in candidates and changes:
                candidates[key].append((", ".join(changes), r))
    rates = sorted(rate for rate in {rate for _, rate, _ in candidates}
                   if all(len(candidates.get((tool, rate, s), [])) > 1
                          for tool in TUNED for s in seeds))
    if not rates:
        return []
    lines = ["", "**Each tool tuned alike.** Each tool's settings chosen for each seed on "
             f"validation accuracy: tfadmm's default ({STAGES} stages) or another number of "
             "stages; tfmot's default (its sparsity ramped over 2/3 of the budget), another "
             "ramp, or `tfmot-distill`. Test accuracy, mean over seeds "
             + " and ".join(map(str, seeds)) + " (mean validation accuracy), and the setting "
             "kept on each seed:", "",
             "| rate | tfadmm | kept | tfmot | kept | lead |", "|--:|--:|---|--:|---|--:|"]
    for rate in rates:
        cells, means = [], []
        for tool in TUNED:
            kept = [max(candidates[(tool, rate, s)], key=lambda c: c[1]["val_accuracy"])
                    for s in seeds]
            test, val = (sum(r[k] for _, r in kept) / len(kept)
                         for k in ("test_accuracy", "val_accuracy"))
            means.append(test)
            cells += [f"{_pct(test)} ({_pct(val)})", " / ".join(setting for setting, _ in kept)]
        lines.append(f"| {common.fmt_rate(rate)} | " + " | ".join(cells)
                     + f" | {100 * (means[0] - means[1]):+.2f} |")
    return lines


def same_grid(a, b):
    """Whether two results' settings differ at most by seed (older results also name the
    cost cell's repeats)."""
    ignore = {"seed", "cost_repeats"}
    return ({k: v for k, v in a.items() if k not in ignore}
            == {k: v for k, v in b.items() if k not in ignore})


def render_seeds(result, others):
    """The pruning cells that were also run with other seeds: each seed's test accuracy
    and the mean, beside the main table's seed. `others`: results of `--seed N --out
    results/resnet-seed<N>.json` runs with the same other settings. Nothing if none."""
    runs, seeds = seed_runs(result, others)
    cell = {(r["settings"]["seed"], p["method"], p["target_rate"]): p
            for r in runs for p in r.get("pruning", {}).values()}
    again = sorted({(m, rate) for seed, m, rate in cell if seed != seeds[0]},
                   key=lambda k: (k[1], METHODS.index(k[0])))
    if not again:
        return []
    commands = [c for r in runs[1:] for c in r.get("commands", [])]
    lines = ["", "**Seeds.** The cells also run with another seed (the same baseline and "
             "settings; " + "; ".join(f"`{c}`" for c in commands) + "). Test accuracy "
             "(validation accuracy):", "",
             "| rate | method | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
             "|--:|---|" + "--:|" * (len(seeds) + 1)]

    def both(test, val):
        return f"{_pct(test)} ({_pct(val)})"

    for method, rate in again:
        values = [cell.get((s, method, rate)) for s in seeds]
        found = [v for v in values if v is not None]
        mean = [sum(v[k] for v in found) / len(found) for k in ("test_accuracy", "val_accuracy")]
        lines.append(f"| {common.fmt_rate(rate)} | {method} | "
                     + " | ".join("-" if v is None else both(v["test_accuracy"], v["val_accuracy"])
                                  for v in values)
                     + f" | {both(*mean)} |")
    return lines


def render(result):
    """The RESULTS.md section for a `resnet.json` result."""
    s, base = result["settings"], result["baseline"]
    acc = base["test_accuracy"]
    # Results made before the splits were settings: 10 % validation, test shrunk by take.
    validation_split = s.get("validation_split", common.VALIDATION_SPLIT)
    _, n_val, n_test = split_sizes(60_000, 10_000, validation_split=validation_split,
                                   take=s["take"])
    if s.get("test") == "all":
        n_test = 10_000
        splits = (f"Validation is the last {n_val:,} training images "
                  f"(`validation_split: {validation_split:g}`), which every choice reads; "
                  f"test is all {n_test:,} test images (`tfadmm evaluate` with the recipe's data "
                  "without `take`, which would shrink it in proportion)")
    else:
        splits = (f"`tfadmm.data.load(take={s['take']})` shrinks the other splits in "
                  f"proportion: validation is {n_val:,} held-out training images and test the "
                  f"first {n_test:,} test images")
    error = (acc * (1 - acc) / n_test) ** 0.5
    val_error = (acc * (1 - acc) / n_val) ** 0.5
    lines = [
        f"ResNet-20 (He et al. 2016, option-A shortcuts; `tfadmm.models.get(\"resnet20\", "
        f"input_shape=(28, 28, 1))`) on the first {s['take']:,} Fashion-MNIST training images, "
        f"seed {s['seed']}. {splits}. One cell's test accuracy carries a sampling error of "
        f"about {error:.1%}, its validation accuracy {val_error:.1%} (binomial standard errors "
        f"at {acc:.0%}). Dense baseline: Adam 1e-3 cosine-decayed over "
        f"{s['baseline_epochs']} epochs, the best validation epoch kept: "
        f"{_pct(acc)} test ({_pct(base['val_accuracy'])} validation). Every cell starts from "
        f"it and gets {s['budget']} epochs. Rates count the 18 block convs and `fc`; `conv1` "
        f"stays dense and `fc` keeps up to {FC_KEPT:g}x the share the block convs keep "
        "(`resnet.sparsities`, the same targets for tfadmm and tfmot).",
        "",
        "Made by: " + "; ".join(f"`{c}`" for c in result.get("commands", [])) + ".",
        "",
    ]
    pruned = result.get("pruning", {})
    if pruned:
        methods = [m for m in METHODS if any(r["method"] == m for r in pruned.values())]
        rates = sorted({r["target_rate"] for r in pruned.values()})
        cell = {(r["method"], r["target_rate"]): r for r in pruned.values()}
        lines += [
            "**Pruning.** `tfadmm`: `run_recipe` on a recipe with two progressive stages "
            "(rate / 2, then rate), half the budget each, each half ADMM and half masked "
            "retraining, every other setting the shipped default (batch-norm recalibration "
            "off; `distill: auto`, so both stages distill from their input); "
            "`tfadmm-bn`: the same with `retrain: {recalibrate_bn: true}`; `tfadmm-plain`: "
            "the same with `distill: false`; `tfadmm-sensitivity` / `tfadmm-global`: the "
            "same recipe with each stage's per-layer rates left to tfadmm (`allocate: {rate, "
            "method, layers}` over the same layers, computed on the validation split); "
            "`tfmot-global`: tfmot given the per-layer rates of `tfadmm.allocate(dense, rate, "
            "method='global')`; `tfmot-distill`: tfmot with tfadmm's distillation loss, the "
            "dense baseline as the teacher (`peer_tfmot.py --distill`); `tfmot`: "
            "`prune_low_magnitude` + `PolynomialDecay` over the first 2/3 of the budget, Adam "
            "1e-3 cosine, the best validation epoch after the schedule. Test accuracy "
            "(achieved rate, drop from the baseline in points).",
            "",
            "| method | " + " | ".join(common.fmt_rate(r) for r in rates) + " | minutes |",
            "|---|" + "--:|" * (len(rates) + 1),
        ]
        for method in methods:
            row, minutes = [], 0.0
            for rate in rates:
                r = cell.get((method, rate))
                if r is None:
                    row.append("-")
                    continue
                minutes += r["seconds"] / 60
                row.append(f"{_pct(r['test_accuracy'])} ({common.fmt_rate(r['rate'])}, "
                           f"{100 * (acc - r['test_accuracy']):+.2f})")
            lines.append(f"| {method} | " + " | ".join(row) + f" | {minutes:.1f} |")
        peer = [r for r in pruned.values() if r["method"] == "tfmot"]
        if peer:
            loaded = peer[0]["baseline_test_accuracy"]
            diff = peer[0].get("baseline_logits_max_abs_diff")
            lines += ["", f"tfmot's tf_keras copy of the baseline: {_pct(loaded)} test "
                      f"(Keras 3: {_pct(acc)}; "
                      f"{'equal within 0.1 %' if abs(loaded - acc) <= 1e-3 else 'DIFFERENT'}"
                      + ("" if diff is None else
                         f"; logits on 8 test images within {diff:.1e}") + ")."]
        lines.append("")
    quantized = result.get("quantization", {})
    if quantized:
        lines += [
            "**Quantization.** Per-channel levels on the 18 block convs; `conv1` and `fc` at 8 "
            "bits per channel. tfadmm: one recipe stage with the whole budget, half ADMM and "
            "half retraining, shipped defaults otherwise; round-to-nearest PTQ: "
            "`tfadmm.wrap` + `tfadmm.project`, no training. Bytes: `tfadmm.export` compressed "
            "SavedModel.",
            "",
            "| levels | PTQ test | tfadmm test | drop (pp) | distinct values per output channel "
            "(max over block convs) | SavedModel bytes | vs dense |",
            "|---|--:|--:|--:|--:|--:|--:|",
        ]
        for level in LEVELS:
            r = quantized.get(level)
            if r is None:
                continue
            lines.append(
                f"| {level} | {_pct(r['ptq_test_accuracy'])} | {_pct(r['test_accuracy'])} | "
                f"{100 * (acc - r['test_accuracy']):.2f} | {r['distinct']} | {r['bytes']:,} | "
                f"{r['dense_bytes'] / r['bytes']:.1f}x |")
        lines.append("")
    cost = result.get("cost")
    if cost:
        weights, seconds = cost["update"]
        lines += [
            f"**Cost.** Medians of {cost['repeats']} interleaved epochs (after a warm-up each) "
            f"at the {EXPORT_RATE}x targets, batch 128; each ratio is to the plain fit of its "
            "own process (tfmot runs in tf_keras). One Z/U update (`Sparsity(0.875)` on every "
            f"kernel, {weights:,} weights): {seconds:.4f} s.",
            "",
            "| phase | seconds / epoch | ratio to plain fit |",
            "|---|--:|--:|",
            *[f"| {name} | {sec:.2f} | {ratio:.3f}x |"
              for name, (sec, ratio) in cost["epochs"].items()],
            "",
        ]
    export = result.get("export")
    if export:
        keys = list(export)
        lines += [
            f"**Export** of the `tfadmm` {EXPORT_RATE}x model (`export_size.measure_model`; "
            "`max abs diff`: served SavedModel against Keras on 4 inputs; TFLite test accuracy "
            "against Keras').",
            "",
            "| " + " | ".join(keys) + " |",
            "|" + "--:|" * len(keys),
            "| " + " | ".join(f"{v:,}" if isinstance(v, int) else
                              f"{v:.2%}" if isinstance(v, float) else str(v)
                              for v in export.values()) + " |",
        ]
    return "\n".join(lines).rstrip()


# -- command line ----------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--take", type=int, default=20000, help="training images")
    parser.add_argument("--validation-split", type=float, default=VALIDATION_SPLIT,
                        help="share of the training data held out for every choice")
    parser.add_argument("--budget", type=int, default=10, help="epochs after the baseline")
    parser.add_argument("--rates", type=float, nargs="+", default=[4, 8, 16])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--only", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-epochs", type=int, default=BASELINE_EPOCHS)
    parser.add_argument("--cost-repeats", type=int, default=2,
                        help="timed epochs of each phase in the cost part")
    parser.add_argument("--quick", action="store_true",
                        help="2,000 images, baseline 2 epochs, budget 2, rate 8, 1 timed epoch")
    parser.add_argument("--jobs", type=int, default=1, help="cells side by side")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a recipe override for the tfadmm cells, as `tfadmm run --set`")
    parser.add_argument("--stages", type=int, default=STAGES,
                        help="progressive stages of the tfadmm pruning cells, the rate halved "
                             "from each to the previous (1: the rate at once)")
    parser.add_argument("--prune-fraction", type=float, default=None,
                        help="the share of the budget tfmot's sparsity ramps up over "
                             "(default: peer_tfmot.py's, 2/3)")
    parser.add_argument("--kept-only", action="store_true",
                        help="collect the finished cells, run none")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="default: results/resnet.json (--quick: cache/resnet-quick.json)")
    parser.add_argument("--cell", nargs="+", help=argparse.SUPPRESS)  # one cell, in-process
    args = parser.parse_args(argv)
    if args.prune_fraction is not None and not 0 < args.prune_fraction <= 1:
        parser.error("argument --prune-fraction: expected a share of the budget in (0, 1]. "
                     f"Received: {args.prune_fraction!r}")
    if args.quick:
        given = sys.argv[1:] if argv is None else argv
        args.take = args.take if "--take" in given else 2000
        args.budget, args.rates, args.baseline_epochs, args.cost_repeats = 2, [8], 2, 1
    args.out = args.out or common.records(
        "resnet-quick.json" if args.quick else "resnet.json", quick=args.quick)
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = "python benchmarks/resnet.py " + shlex.join(argv)
    if args.cell:  # a child process: one cell, its record to --out
        record = run_one(args.cell, args, log=lambda line: print(line, flush=True))
        args.out.write_text(json.dumps({"settings": settings(args), "record": record},
                                       indent=1))
        return record
    splits = load_splits(args)
    _, baseline_record = baseline(args, splits, log=lambda line: print(line, flush=True))
    print(f"baseline: test {baseline_record['test_accuracy']:.4f}", flush=True)
    done = run_grid(args, command.strip())
    result = collect(args.out, baseline_record, args, done)
    exported = result["pruning"].get(f"tfadmm-{EXPORT_RATE}x")
    if "cost" in args.only and exported and not args.kept_only:
        print("export", flush=True)
        result["export"] = export_record(exported, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(render(result))
    failed = [name for name, part in done.items() if part is None and not args.kept_only]
    if failed:
        sys.exit(f"failed cells: {', '.join(failed)}")
    return result


if __name__ == "__main__":
    main()
