"""Regenerates benchmarks/RESULTS.md: pruning, quantization, training cost, export size, allocation.

    python benchmarks/run_all.py            # the full run (see RESULTS.md for its time)
    python benchmarks/run_all.py --quick    # subsets and 1-2 epochs: a smoke run of every part

Each section can be skipped (`--skip pruning quantization cost export allocation structured
resnet backends`); a skipped section keeps the text it had in RESULTS.md. Pruning records are also
kept in `benchmarks/results/pruning.json`, and each finished pruning cell in
`benchmarks/results/pruning-parts/` (kept in git): a rerun with the same settings keeps those
cells, so an interrupted full run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import common  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

RESULTS = common.HERE / "RESULTS.md"
SECTIONS = ("pruning", "quantization", "cost", "export", "allocation", "structured", "resnet",
            "backends")


def guarded(name, function, *args):
    """Runs one section; a failure becomes its text, so the other sections still land."""
    import traceback

    try:
        return function(*args)
    except Exception:  # noqa: BLE001 - reported in RESULTS.md and the log
        text = traceback.format_exc()
        log(f"{name} failed:\n{text}")
        return f"(failed: {text.strip().splitlines()[-1]})"


def log(line):
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


# -- pruning ---------------------------------------------------------------------


def pruning_section(args, baseline):
    import pruning

    argv = ["--budget", str(args.budget), "--seeds", *map(str, args.seeds),
            "--rates", *map(str, args.rates), "--out", str(args.pruning_json),
            "--jobs", str(args.jobs)]
    if args.take:
        argv += ["--take", str(args.take)]
    if args.kept_only:
        argv += ["--kept-only"]
    records = pruning.main(argv)
    return render_pruning(records, baseline, args), records


def _cells(records):
    cells = {}
    for r in records:
        cells.setdefault((r["target_rate"], r["method"]), {})[r["seed"]] = r
    return cells


# Each method's configurations, its declared default first.
CONFIGURATIONS = {"tfadmm": ("tfadmm", "tfadmm-plain", "tfadmm-distill"),
                  "tfmot": ("tfmot", "tfmot-distill")}


def picked(cells, rate, method, seed):
    """The method's configuration with the best validation accuracy for `seed` (never test)."""
    options = [c for c in CONFIGURATIONS[method] if seed in cells.get((rate, c), {})]
    if not options:
        return None
    return max(options, key=lambda c: cells[rate, c][seed]["val_accuracy"])


def _mean(values):
    return statistics.mean(values) if values else float("nan")


def _stage_choices(record):
    stages = record.get("stages") or []
    return " / ".join(f"{s['chosen']} (start {s['start_val_accuracy']:.2%})"
                      for s in stages if s.get("start_val_accuracy") is not None) or "-"


def render_pruning(records, baseline, args):
    import pruning

    base = baseline["test_accuracy"]
    cells = _cells(records)
    rates = sorted({r for r, _ in cells})
    seeds = sorted({r["seed"] for r in records})
    lines = [
        f"Dense baseline: {base:.2%} test ({baseline['val_accuracy']:.2%} validation), "
        f"{baseline['epochs']} epochs, Adam 1e-3 cosine, best validation epoch; shared by "
        f"every method. Budget after it: {args.budget} epochs per cell; seeds "
        f"{', '.join(map(str, seeds))}{f'; {args.take} training images' if args.take else ''}. "
        "Per-layer kept shares: ECCV 2018's (20 / 8 / 0.9 / 7 % at 71.2x) scaled to each rate "
        "(`common.layer_sparsities`). tfadmm cells are recipes that give only targets and "
        "epochs (two stages, half the rate then the rate, each half ADMM and half retraining), "
        "run by `run_recipe` (what `tfadmm run` runs) with the shipped defaults; the recipes "
        "are kept under `benchmarks/cache/recipes/`. `tfadmm` is tfadmm's declared default "
        "(the recipe says nothing else, so `distill: auto`: knowledge distillation from each "
        "stage's input in the stages that prune by less than 100x); `tfadmm-plain` says "
        "`distill: false`, `tfadmm-distill` `distill: true`. tfmot: "
        "`prune_low_magnitude` with a cubic `PolynomialDecay` over the first two thirds of the "
        "budget, Adam 1e-3 cosine, best validation epoch after the schedule ends; "
        "`tfmot-distill` adds the same distillation loss (teacher: the dense baseline). Drop = "
        "baseline - accuracy, in points; time = wall seconds per cell (cells ran two side by "
        "side on 2 shared cores).",
        "",
        "| rate | method | test accuracy | drop (pp) | validation | achieved rate | time (s) | "
        "stages ended on (start: validation before training) |",
        "|--:|---|--:|--:|--:|--:|--:|---|",
    ]
    for rate in rates:
        for method in pruning.METHODS:
            rs = [cells[rate, method][s] for s in seeds if s in cells.get((rate, method), {})]
            if not rs:
                continue
            tests = [r["test_accuracy"] for r in rs]
            each = f" ({' / '.join(f'{t:.2%}' for t in tests)})" if len(rs) > 1 else ""
            lines.append(
                f"| {common.fmt_rate(rate)} | {method} | {_mean(tests):.2%}{each} | "
                f"{100 * (base - _mean(tests)):.2f} | "
                f"{_mean([r['val_accuracy'] for r in rs]):.2%} | "
                f"{_mean([r['rate'] for r in rs]):.1f}x | "
                f"{_mean([r['seconds'] for r in rs]):.0f} | {_stage_choices(rs[0])} |"
            )
    lines += [
        "", "Declared defaults against each other, then each method's configuration picked on "
        "validation per seed (test accuracy, means over seeds):", "",
        "| rate | tfadmm | tfmot | lead | tfadmm picked | tfmot picked | lead | "
        "tfadmm-distill - tfmot-distill |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for rate in rates:
        def test(method, seed, rate=rate):
            return cells.get((rate, method), {}).get(seed, {}).get("test_accuracy")

        row = [common.fmt_rate(rate)]
        plain = [test("tfadmm", s) for s in seeds]
        peer = [test("tfmot", s) for s in seeds]
        ours = [test(picked(cells, rate, "tfadmm", s), s) for s in seeds]
        theirs = [test(picked(cells, rate, "tfmot", s), s) for s in seeds]
        both = [(test("tfadmm-distill", s), test("tfmot-distill", s)) for s in seeds]
        for values in (plain, peer):
            row.append("-" if None in values else f"{_mean(values):.2%}")
        row.append("-" if None in plain + peer else
                   f"{100 * (_mean(plain) - _mean(peer)):+.2f}")
        for values, method in ((ours, "tfadmm"), (theirs, "tfmot")):
            names = {picked(cells, rate, method, s) for s in seeds}
            row.append("-" if None in values else
                       f"{_mean(values):.2%} ({', '.join(sorted(n for n in names if n))})")
        row.append("-" if None in ours + theirs else
                   f"{100 * (_mean(ours) - _mean(theirs)):+.2f}")
        row.append("-" if any(None in b for b in both) else
                   f"{100 * (_mean([a for a, _ in both]) - _mean([b for _, b in both])):+.2f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines + render_levers(cells) + render_longer(cells, base))


# Each file: `pruning.py --out benchmarks/results/levers/<name>.json` with one setting changed.
LEVERS = common.records("levers")


def render_levers(cells):
    """The settings tried before the defaults were chosen, beside the defaults' own cells.

    Reads `results/levers/*.json` (each a `pruning.py` run with its `--set` overrides and
    methods); nothing when there are none. The choice read the validation column only.
    """
    rows = []
    for path in sorted(LEVERS.glob("*.json")):
        done = json.loads(path.read_text())
        for r in done["records"]:
            setting = ", ".join([r["method"], *done.get("overrides", [])])
            rows.append((r["target_rate"], r["seed"], setting, r))
    if not rows:
        return []
    for rate, seed in sorted({(rate, seed) for rate, seed, _, _ in rows}):
        for method in ("tfadmm", "tfadmm-plain"):
            record = cells.get((rate, method), {}).get(seed)
            if record is not None:
                rows.append((rate, seed, f"{method} (table above)", record))
    lines = [
        "", "Settings tried on the way to the default (`python benchmarks/pruning.py --methods "
        "<method> --set <override> --out benchmarks/results/levers/<name>.json`; the choice read "
        "the validation column only):", "",
        "| rate | seed | setting | validation | test |", "|--:|--:|---|--:|--:|",
    ]
    for rate, seed, setting, r in sorted(rows, key=lambda row: (row[0], row[1], row[2])):
        lines.append(f"| {common.fmt_rate(rate)} | {seed} | {setting} | "
                     f"{r['val_accuracy']:.2%} | {r['test_accuracy']:.2%} |")
    return lines


# `pruning.py --budget 160 --out benchmarks/results/pruning-long.json`: 40 + 40 epochs a stage.
LONGER = common.records("pruning-long.json")


def render_longer(cells, base, path=LONGER):
    """The paper's longer budget beside the table's own cells of the same rate, method and seed.

    Reads `path` (a `pruning.py` run with a larger `--budget`); nothing when it is absent.
    """
    if not path.exists():
        return []
    done = json.loads(path.read_text())
    budget, per_stage, records = done["budget"], done["budget"] // 4, done["records"]

    def listed(key, form="{}"):
        return " ".join(sorted({form.format(r[key]) for r in records}))

    lines = [
        "", f"A longer budget, the paper's {per_stage} ADMM + {per_stage} retraining epochs a "
        f"stage ({budget} epochs a cell; `python benchmarks/pruning.py --rates "
        f"{listed('target_rate', '{:g}')} --seeds {listed('seed')} --methods "
        f"{listed('method')} --budget {budget} --out benchmarks/results/pruning-long.json`), "
        "beside the same cell at the table's budget:", "",
        "| rate | method | seed | budget | test accuracy | drop (pp) | validation | "
        "achieved rate | time (s) |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in sorted(records, key=lambda r: (r["target_rate"], r["method"], r["seed"])):
        short = cells.get((r["target_rate"], r["method"]), {}).get(r["seed"])
        for record in (short, r):
            if record is None:
                continue
            lines.append(
                f"| {common.fmt_rate(r['target_rate'])} | {r['method']} | {r['seed']} | "
                f"{record['budget']} | {record['test_accuracy']:.2%} | "
                f"{100 * (base - record['test_accuracy']):.2f} | {record['val_accuracy']:.2%} | "
                f"{record['rate']:.1f}x | {record['seconds']:.0f} |")
    return lines


# -- allocation ------------------------------------------------------------------


def allocation_section(args, baseline):
    """Hand proportions (the pruning table's `tfadmm-plain` cells) vs `allocate:` methods."""
    import shutil

    import pruning

    parts = args.allocation_json.parent / f"{args.allocation_json.stem}-parts"
    parts.mkdir(parents=True, exist_ok=True)
    for rate in args.allocation_rates:
        for seed in args.seeds:
            name = f"tfadmm-plain-{rate:g}x-seed{seed}.json"
            source = args.pruning_json.parent / f"{args.pruning_json.stem}-parts" / name
            if source.exists() and not (parts / name).exists():
                shutil.copyfile(source, parts / name)  # the same recipe: run once
    argv = ["--budget", str(args.budget), "--seeds", *map(str, args.seeds),
            "--rates", *map(str, args.allocation_rates), "--out", str(args.allocation_json),
            "--jobs", str(args.jobs), "--methods", "tfadmm-plain", *pruning.ALLOCATIONS]
    if args.take:
        argv += ["--take", str(args.take)]
    if args.kept_only:
        argv += ["--kept-only"]
    return render_allocation(pruning.main(argv), baseline, args)


def render_allocation(records, baseline, args):
    import pruning

    base = baseline["test_accuracy"]
    cells = _cells(records)
    methods = ("tfadmm-plain", *pruning.ALLOCATIONS)
    seeds = sorted({r["seed"] for r in records})
    lines = [
        "The pruning table's tfadmm recipe (two stages, half the rate then the rate, "
        f"{args.budget} epochs, shipped defaults), with the per-layer sparsities chosen four "
        "ways: `hand` is ECCV 2018's proportions scaled to the rate (`tfadmm-plain` above); "
        "the others give each stage only `allocate: {rate, method, layers: [conv1, conv2, fc1, "
        "fc2]}`, computed by tfadmm on the validation split when the stage starts. Seeds "
        f"{', '.join(map(str, seeds)) or '-'}: the mean (each seed in brackets) over the seeds "
        "the methods with the most seeds at that rate all ran; a method with fewer is named "
        "with its own; kept: each layer's non-zero share at the end (first seed). Made by "
        f"`python benchmarks/pruning.py --rates {' '.join(f'{r:g}' for r in args.allocation_rates)}"
        f" --seeds {' '.join(map(str, seeds))} --methods {' '.join(methods)} --budget "
        f"{args.budget} --jobs 2 --out {args.allocation_json.relative_to(common.HERE.parent)}` "
        "(what `run_all.py` runs for this section; a record per cell in "
        f"`{args.allocation_json.parent.relative_to(common.HERE.parent)}/"
        f"{args.allocation_json.stem}-parts/`).",
        "",
        "| rate | allocation | test accuracy | drop (pp) | validation | achieved rate | "
        "kept conv1 / conv2 / fc1 / fc2 |",
        "|--:|---|--:|--:|--:|--:|---|",
    ]
    for rate in sorted({r for r, _ in cells}):
        ran = [set(cells[rate, m]) for m in methods if (rate, m) in cells]
        if len(ran) < 2:  # the hand proportions alone: nothing to compare
            continue
        # The seeds every method with the most seeds ran; a method with fewer shows its own,
        # named beside it.
        most = max(map(len, ran))
        common_seeds = sorted(set.intersection(*[s for s in ran if len(s) == most]))
        for method in methods:
            ran_here = cells.get((rate, method), {})
            rs = [ran_here[s] for s in common_seeds if s in ran_here]
            fewer = len(rs) < len(common_seeds)
            if fewer:
                rs = [ran_here[s] for s in sorted(ran_here)]
            if not rs:
                continue
            tests = [r["test_accuracy"] for r in rs]
            each = f" ({' / '.join(f'{t:.2%}' for t in tests)})" if len(rs) > 1 else ""
            kept = rs[0].get("kept")
            if kept is None and pathlib.Path(rs[0].get("model", "")).is_file():
                kept = common.kept_shares(keras.models.load_model(rs[0]["model"]))  # older cells
            kept = " / ".join(f"{kept[n]:.2%}" for n in common.LAYERS) if kept else "-"
            name = "hand" if method == "tfadmm-plain" else method.removeprefix("tfadmm-")
            if fewer:
                name += f" (seed {', '.join(str(r['seed']) for r in rs)} only)"
            lines.append(
                f"| {common.fmt_rate(rate)} | {name} | {_mean(tests):.2%}{each} | "
                f"{100 * (base - _mean(tests)):.2f} | "
                f"{_mean([r['val_accuracy'] for r in rs]):.2%} | "
                f"{_mean([r['rate'] for r in rs]):.1f}x | {kept} |")
    return "\n".join(lines)


# -- quantization ----------------------------------------------------------------


def quantization_section(args, dense, splits):
    """The quantization table; a finished `quantization.py` run with these settings is kept."""
    import quantization

    kept = quantization.finished(args.quantization_json, args.quantization_budget, args.take)
    if kept is not None:
        log(f"quantization: kept from {args.quantization_json}")
        return kept
    table, records = quantization.benchmark(dense, splits, budget=args.quantization_budget,
                                            take=args.take, log=log)
    quantization.save(args.quantization_json, args.quantization_budget, args.take, table,
                      records)
    return table


# -- cost ------------------------------------------------------------------------


def cost_section(args):
    import cost

    tag = f"-take{args.take}" if args.take else ""
    result = cost.measure(repeats=1 if args.quick else 3, take=args.take,
                          resnet=not args.quick, tag=tag)
    text = cost.render(result)
    return (f"Medians of {result['repeats']} interleaved epochs (plus one warm-up each), "
            f"LeNet-5, batch 128{f', {args.take} training images' if args.take else ''}. "
            "tfadmm's rows come from one process (`overhead.epoch_costs`); tfmot runs in its "
            "own Keras 2 process, where its plain fit is measured the same way; each ratio is "
            "to the plain fit of its own process.\n\n" + text), result


# -- export ----------------------------------------------------------------------


def export_section(args, records):
    import export_size

    cells = _cells(records)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        seed = args.seeds[0]
        for rate in sorted({r for r, _ in cells}):
            record = cells.get((rate, "tfadmm-plain"), {}).get(seed)
            if record is None:
                continue
            model = keras.models.load_model(record["model"])
            row = export_size.measure_model(model, pathlib.Path(tmp), f"{common.fmt_rate(rate)}")
            peer = cells.get((rate, "tfmot"), {}).get(seed, {})
            row["tfmot stripped .h5, gzipped"] = peer.get("gzipped_bytes", "-")
            rows.append(row)
    if not rows:
        return "(no pruned models: run the pruning section)"
    order = ["target", "pruning rate", "non-zeros", "dense SavedModel", "compressed SavedModel",
             "tfmot stripped .h5, gzipped", "TFLite (sparsity)", "gzipped .keras",
             "theoretical minimum", "max abs diff"]
    lines = [
        "Bytes on disk for the trained models of the pruning section (tfadmm: `tfadmm-plain`, "
        "seed "
        f"{args.seeds[0]}; tfmot: its seed-{args.seeds[0]} model, `strip_pruning` then saved "
        "as .h5 without optimizer and gzip -9). Dense SavedModel: Keras' `model.export` of the "
        "same model; compressed SavedModel: `tfadmm.export`; TFLite: `tfadmm.export(..., "
        "'tflite')` (`EXPERIMENTAL_SPARSITY`); gzipped .keras: the tfadmm model saved dense then "
        "gzip -9; theoretical minimum: non-zeros x 32 bits + the cheaper index, plus biases. "
        "Measured with `export_size.measure_model`.",
        "",
        "| " + " | ".join(order) + " |",
        "|" + "|".join("--:" for _ in order) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(
            f"{row[k]:,}" if isinstance(row[k], int) else str(row[k]) for k in order) + " |")
    return "\n".join(lines)


# -- ResNet-20 -------------------------------------------------------------------


def resnet_section(args):
    """Rendered from `benchmarks/resnet.py`'s output; None (keep the earlier text) if none.

    run_all never runs that grid (hours on 2 CPU cores): `resnet.py` writes
    `results/resnet.json` (`--quick`: `cache/resnet-quick.json`), and this renders it.
    """
    import resnet

    path = common.records("resnet-quick.json" if args.quick else "resnet.json", args.quick)
    if not path.exists():
        log(f"resnet: no {path.name}, earlier text kept")
        return None
    result = json.loads(path.read_text())
    # Other seeds' runs of the same grid: `resnet.py --seed N --out results/resnet-seedN.json`.
    others = [json.loads(p.read_text())
              for p in sorted(common.RESULTS_DIR.glob("resnet-seed*.json"))]
    others = [o for o in others
              if resnet.same_grid(o["settings"], result["settings"])
              and o["settings"]["seed"] != result["settings"]["seed"]]
    return "\n".join([resnet.render(result), *resnet.render_seeds(result, others),
                      *resnet.render_tuned(result, others), *resnet.render_levers(result)])


# -- Keras backends --------------------------------------------------------------


def backends_section(args):
    """Rendered from `benchmarks/overhead.py --backends`' output; None (keep the earlier text)
    if none. run_all does not run it (its worker processes want a quiet machine):
    `python benchmarks/overhead.py --backends tensorflow jax --repeats 5 --take 20000` writes
    `results/overhead_backends.json`, and this renders it."""
    import overhead

    if not overhead.BACKENDS_JSON.exists():
        log(f"backends: no {overhead.BACKENDS_JSON.name}, earlier text kept")
        return None
    result = json.loads(overhead.BACKENDS_JSON.read_text())
    take = f", {result['take']} training images" if result["take"] else ""
    return (f"Made by `{result['command']}` (Keras {result['keras']}): LeNet-5, Fashion-MNIST"
            f"{take}, batch 128, medians of {result['repeats']} epochs (plus one warm-up each). "
            "One worker process per backend, the JAX one with TensorFlow blocked (its data "
            "comes from `tfadmm.data.load` as `ArrayBatches`); epochs interleaved across "
            "backends and phases, so each ratio is to the plain fit of its own backend, "
            "measured alongside.\n\n" + overhead.render_backends(result))


# -- structured pruning -------------------------------------------------------------


def structured_section(args):
    """Rendered from `benchmarks/structured.py`'s output; None (keep the earlier text) if none.

    run_all never runs it (hours on 2 CPU cores; its latencies want a quiet machine):
    `structured.py` keeps each model's cells in `results/structured.json` (`--quick`:
    `cache/structured-quick.json`), and this renders them.
    """
    import structured

    path = common.records("structured-quick.json" if args.quick else "structured.json",
                          args.quick)
    result = structured.read_result(path)
    if not result:
        log(f"structured: no {path.name}, earlier text kept")
        return None
    return structured.render(result)


# -- RESULTS.md ------------------------------------------------------------------

TITLES = {
    "pruning": "1. Pruning quality: LeNet-5, full Fashion-MNIST",
    "quantization": "2. Quantization quality: LeNet-5, Fashion-MNIST",
    "cost": "3. Training cost",
    "export": "4. Export size",
    "allocation": "5. Per-layer rate allocation: LeNet-5, full Fashion-MNIST",
    # Rendered from `benchmarks/structured.py`'s output (`structured_section`), else kept.
    "structured": "6. Structured pruning: accuracy against FLOPs, and latency",
    # Rendered from `benchmarks/resnet.py`'s output (`resnet_section`), else kept.
    "resnet": "7. ResNet-20: pruning, quantization and cost, Fashion-MNIST",
    # Rendered from `benchmarks/overhead.py --backends`' output (`backends_section`), else kept.
    "backends": "8. Keras backends: ADMM epoch cost on TensorFlow and JAX (CPU)",
}


def previous_sections(path):
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    out = {}
    for key, title in TITLES.items():
        match = re.search(rf"## {re.escape(title)}\n\n(.*?)(?=\n## |\Z)", text, re.S)
        if match:
            out[key] = match.group(1).rstrip()
    return out


def previous_header(path):
    """The "Written by" line of the last run that ran the pruning section."""
    if not path.exists():
        return None
    match = re.search(r"^Written by .*$", path.read_text(encoding="utf-8"), re.M)
    return match.group(0) if match else None


def write_results(path, sections, command, minutes, header=None, kept_only=False):
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, " \
              f"Keras {keras.__version__}"
    took = ("from cells finished earlier (each cell's wall time is in its table)" if kept_only
            else f"the run took {minutes:.0f} minutes")
    lines = [
        "# tfadmm benchmarks",
        "",
        header or f"Written by `{command}` on {datetime.date.today()} ({machine}); {took}. "
        "Sections not rerun keep their earlier text.",
        "",
    ]
    for key, title in TITLES.items():
        lines += [f"## {title}", "", sections.get(key, "(not run yet)"), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=int, default=None, help="pruning epochs per cell")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--rates", type=float, nargs="+", default=None)
    parser.add_argument("--take", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2, help="pruning cells side by side")
    parser.add_argument("--kept-only", action="store_true",
                        help="render the pruning cells already finished; run no new ones")
    parser.add_argument("--quantization-budget", type=int, default=12,
                        help="epochs per quantization cell")
    parser.add_argument("--allocation-rates", type=float, nargs="+", default=[40, 100, 246],
                        help="rates of the allocation section")
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.take = args.take or 6000
        args.budget = args.budget or 4
        args.seeds = args.seeds or [0]
        args.rates = args.rates or [10, 246]
        args.allocation_rates = [246]
        args.quantization_budget = 2
        if args.out == RESULTS:
            args.out = common.CACHE / "RESULTS-quick.md"
    args.budget = args.budget or FULL_BUDGET
    args.seeds = args.seeds or FULL_SEEDS
    args.rates = args.rates or [10, 40, 100, 246]
    tag = f"-take{args.take}" if args.take else ""
    args.pruning_json = common.records(f"pruning{tag}.json", args.quick)
    args.quantization_json = common.records(f"quantization{tag}.json", args.quick)
    args.allocation_json = common.records(f"allocation{tag}.json", args.quick)
    return args


# The full run: issue 7's budget (30 epochs after the baseline) and two seeds per
# cell. 127 minutes on 2 shared CPU cores; `--budget 10 --seeds 0` fits in 35 minutes.
FULL_BUDGET = 30
FULL_SEEDS = [0, 1]


def main(argv=None):
    args = parse_args(argv)
    command = "python benchmarks/run_all.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    start = time.time()
    sections = previous_sections(args.out)
    splits = common.load_splits(0, take=args.take)
    tag = f"-take{args.take}" if args.take else ""
    dense, baseline = common.dense_baseline(
        splits, epochs=2 if args.take else common.BASELINE_EPOCHS, tag=tag, log=log)
    log(f"baseline: test {baseline['test_accuracy']:.4f}")
    records = None
    quant = None
    if "quantization" not in args.skip:
        # Side by side with the pruning cells (separate processes); cost runs alone after.
        import threading

        def run_quantization():
            log("quantization")
            sections["quantization"] = guarded(
                "quantization", quantization_section, args, dense, splits)
            log("quantization done")

        quant = threading.Thread(target=run_quantization)
        quant.start()
    if "pruning" not in args.skip:
        log("pruning")
        sections["pruning"], records = pruning_section(args, baseline)
    elif args.pruning_json.exists():
        records = json.loads(args.pruning_json.read_text())["records"]
    if quant is not None:
        quant.join()
    if "cost" not in args.skip:
        log("cost")
        sections["cost"] = guarded("cost", lambda: cost_section(args)[0])
    if "export" not in args.skip and records:
        log("export")
        sections["export"] = guarded("export", export_section, args, records)
    if "allocation" not in args.skip:
        log("allocation")
        sections["allocation"] = guarded("allocation", allocation_section, args, baseline)
    if "structured" not in args.skip:
        text = guarded("structured", structured_section, args)
        if text:
            sections["structured"] = text
    if "resnet" not in args.skip:
        text = guarded("resnet", resnet_section, args)
        if text:
            sections["resnet"] = text
    if "backends" not in args.skip:
        text = guarded("backends", backends_section, args)
        if text:
            sections["backends"] = text
    header = None if "pruning" not in args.skip else previous_header(args.out)
    write_results(args.out, sections, command, (time.time() - start) / 60, header,
                  kept_only=args.kept_only)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
