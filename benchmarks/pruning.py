"""Pruning quality through the product path (`run_recipe`) vs tfmot, LeNet-5 / Fashion-MNIST.

Every method starts from the same cached dense baseline (`common.dense_baseline`)
and gets the same epoch budget after it. Per-layer sparsities keep the ECCV 2018
LeNet-5 proportions, scaled to each overall rate (`common.layer_sparsities`).

tfadmm runs what a user runs: a recipe (written to `benchmarks/cache/recipes/`)
that names only the model file, the data, each stage's targets and its epochs,
run by `tfadmm.recipes.run_recipe` (the code behind `tfadmm run`), so every
other setting is tfadmm's shipped default. `--set` overrides recipe values as
the CLI does. Methods:

- `tfadmm`: the declared default: two stages (half the rate, then the rate), half
  of the budget each, each stage half ADMM and half masked retraining, nothing
  else said (so `distill: auto`: distillation in the stages that prune by less
  than 100x, `tfadmm.auto_distill`);
- `tfadmm-plain`: the same with `distill: false`;
- `tfadmm-distill`: the same with `distill: true` (teacher: each stage's input);
- `tfadmm-oneshot`: one stage with the whole budget, `distill: false`;
- `tfadmm-uniform`, `tfadmm-global`, `tfadmm-sensitivity`: as `tfadmm-plain`, but
  each stage says only its overall rate and lets `allocate:` choose the per-layer
  sparsities by that method (`tfadmm-plain` uses ECCV 2018's hand proportions);
- `tfmot`: `prune_low_magnitude` + `PolynomialDecay` in its own virtualenv
  (`peer_tfmot.py`, made here on first use under `benchmarks/cache/tfmot-venv`),
  the epoch with the best validation accuracy kept after its schedule ends;
- `tfmot-distill`: the same with tfadmm's distillation loss (teacher: the dense
  baseline), so each method gets the same two configurations.

No choice ever looks at the test set.

    python benchmarks/pruning.py --rates 10 40 100 246 --budget 30 --seeds 0 1
    python benchmarks/pruning.py --quick
    python benchmarks/pruning.py --rates 246 --methods tfadmm-plain tfadmm-uniform \
        tfadmm-global tfadmm-sensitivity      # per-layer rate allocation
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import common  # noqa: E402
import keras  # noqa: E402

# tfadmm-<allocation method>: per-layer rates from `allocate:` instead of ECCV's proportions.
ALLOCATIONS = ("tfadmm-uniform", "tfadmm-global", "tfadmm-sensitivity")
METHODS = ("tfadmm", "tfadmm-plain", "tfadmm-distill", "tfadmm-oneshot", *ALLOCATIONS,
           "tfmot", "tfmot-distill")
DEFAULT_METHODS = ("tfadmm", "tfadmm-plain", "tfadmm-distill", "tfmot", "tfmot-distill")
VENV = common.CACHE / "tfmot-venv"


def recipe_document(method, rate, *, budget, seed, baseline, take=None):
    """The recipe a user would write for one cell: targets and epochs, nothing else tuned."""
    rates = [rate] if method == "tfadmm-oneshot" else [rate / 2, rate]
    if method in ALLOCATIONS:
        allocation = method.removeprefix("tfadmm-")
        stages = [(f"prune-{r:g}x", {"allocate": {"rate": float(r), "method": allocation,
                                                  "layers": list(common.LAYERS)}})
                  for r in rates]
    else:
        stages = [(f"prune-{r:g}x", {name: {"sparsity": float(s)}
                                     for name, s in common.layer_sparsities(r).items()})
                  for r in rates]
    return common.recipe_document(f"{method}-{rate:g}x-seed{seed}", stages, budget=budget,
                                  seed=seed, baseline=baseline, take=take,
                                  defaults=None if method == "tfadmm" else
                                  {"distill": method == "tfadmm-distill"})


def run_tfadmm(method, rate, *, budget, seed, take=None, tag="", overrides=(), log=print):
    """Writes the cell's recipe and runs it with `run_recipe`; returns `(model path, record)`."""
    keras_path, _, _ = common.baseline_paths(tag)
    document = recipe_document(method, rate, budget=budget, seed=seed, baseline=keras_path,
                               take=take)
    path, record = common.run_recipe_document(document, tag=tag, overrides=overrides, log=log)
    model = keras.models.load_model(path)
    record["rate"] = common.achieved_rate(model)
    record["kept"] = common.kept_shares(model)
    return path, record


def ensure_venv(log=print):
    """`benchmarks/cache/tfmot-venv`: the system TensorFlow + tf-keras + tfmot (made once)."""
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    import tensorflow as tf

    major_minor = ".".join(tf.__version__.split(".")[:2])
    log(f"creating {VENV} (tf-keras {major_minor}.*, tensorflow-model-optimization)")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"tf-keras=={major_minor}.*",
         "tensorflow-model-optimization==0.8.0"],
        check=True,
    )
    return python


def run_tfmot(rate, *, budget, seed, take=None, timing=0, tag="", distill=False, model="lenet5",
              sparsities=None, validation_split=common.VALIDATION_SPLIT, full_test=False,
              prune_fraction=None, log=print):
    """Runs `peer_tfmot.py` in the tfmot virtualenv; returns its JSON record.

    `model` names the baseline (`common.baseline_paths`) and the architecture the
    peer builds; `sparsities` (`{layer: sparsity}`, the only layers pruned)
    default to LeNet-5's `common.layer_sparsities(rate)`. `validation_split` and
    `full_test` make the splits `common.load_splits` makes with them.
    `prune_fraction`: the share of the budget the sparsity ramps up over
    (None: `peer_tfmot.py`'s default, 2/3).
    """
    python = ensure_venv(log)
    _, npz, _ = common.baseline_paths(tag, model)
    sparsities = common.layer_sparsities(rate) if sparsities is None else sparsities
    command = [
        str(python), str(common.HERE / "peer_tfmot.py"), "--model", model,
        "--sparsities", json.dumps(sparsities),
        "--baseline", str(npz), "--budget", str(budget), "--seed", str(seed),
    ]
    if take:
        command += ["--take", str(take)]
    if validation_split != common.VALIDATION_SPLIT:
        command += ["--validation-split", repr(validation_split)]
    if full_test:
        command += ["--full-test"]
    if prune_fraction is not None:
        command += ["--prune-fraction", repr(prune_fraction)]
    if timing:
        command += ["--timing", str(timing)]
    if distill:
        command += ["--distill"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"peer_tfmot.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def run_cell(method, rate, *, budget, seed, take, tag, overrides=(), log=print):
    if method.startswith("tfmot"):
        record = run_tfmot(rate, budget=budget, seed=seed, take=take, tag=tag,
                           distill=method == "tfmot-distill", log=log)
    else:
        path, record = run_tfadmm(method, rate, budget=budget, seed=seed, take=take, tag=tag,
                                  overrides=overrides, log=log)
        record["model"] = str(path)
    record.update(method=method, target_rate=rate, seed=seed, budget=budget)
    log(f"{method} {rate}x seed {seed}: test {record['test_accuracy']:.4f} "
        f"(validation {record['val_accuracy']:.4f}), rate {record['rate']:.1f}x, "
        f"{record['seconds']:.0f} s")
    return record


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 40, 100, 246])
    parser.add_argument("--budget", type=int, default=30, help="epochs after the baseline")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--quick", action="store_true",
                        help="6,000 training images, budget 2, rates 10 and 246, one seed")
    parser.add_argument("--take", type=int, default=None, help="training images")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="recipe override for tfadmm cells, as tfadmm run")
    parser.add_argument("--out", type=pathlib.Path, default=common.records("pruning.json"))
    parser.add_argument("--kept-only", action="store_true",
                        help="collect the finished cells (results/pruning-parts), run none")
    parser.add_argument("--jobs", type=int, default=1,
                        help="cells run side by side, one process each")
    args = parser.parse_args(argv)
    if args.quick:
        args.take, args.budget, args.rates, args.seeds = args.take or 6000, 2, [10, 246], [0]
    return args


def _cells(args):
    return [(rate, seed, method) for rate in args.rates for seed in args.seeds
            for method in args.methods]


def _finished(out, args):
    """Whether `out` holds a cell already run with these settings (so a rerun resumes)."""
    try:
        done = json.loads(out.read_text())
    except (OSError, ValueError):  # not there, or cut short by an interrupted write
        return False
    return (done.get("budget"), done.get("take"), done.get("overrides")) == (
        args.budget, args.take, args.overrides) and bool(done.get("records"))


def _run_parallel(args):
    """Each cell in its own process (`--jobs` at a time, one thread pool each).

    A cell whose result file already holds a run with the same budget, image
    count and config is kept, so an interrupted run resumes where it stopped.
    """
    import concurrent.futures

    parts = args.out.parent / f"{args.out.stem}-parts"
    parts.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, BENCH_THREADS=str(max(1, (os.cpu_count() or 2) // args.jobs)))

    def one(cell):
        rate, seed, method = cell
        out = parts / f"{method}-{rate:g}x-seed{seed}.json"
        if _finished(out, args):
            print(f"{method} {rate}x seed {seed}: kept from {out.name}", flush=True)
            return json.loads(out.read_text())["records"]
        if args.kept_only:
            print(f"{method} {rate}x seed {seed}: not run (--kept-only)", flush=True)
            return []
        command = [sys.executable, __file__, "--rates", str(rate), "--seeds", str(seed),
                   "--methods", method, "--budget", str(args.budget), "--out", str(out)]
        for override in args.overrides:
            command += ["--set", override]
        if args.take:
            command += ["--take", str(args.take)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        for line in done.stdout.splitlines():
            print(line, flush=True)
        if done.returncode:
            raise RuntimeError(f"{cell} failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())["records"]

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        return [r for records in pool.map(one, _cells(args)) for r in records]


def main(argv=None):
    args = parse_args(argv)
    tag = f"-take{args.take}" if args.take else ""
    splits = common.load_splits(0, take=args.take)
    _, baseline = common.dense_baseline(
        splits, epochs=2 if args.take else common.BASELINE_EPOCHS, tag=tag,
        log=lambda line: print(line, flush=True),
    )
    print(f"baseline: test {baseline['test_accuracy']:.4f}", flush=True)

    def save(records):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(
            {"baseline": baseline, "overrides": args.overrides, "budget": args.budget,
             "take": args.take, "records": records}, indent=1))

    if args.jobs > 1 or args.kept_only:
        records = _run_parallel(args)
        save(records)
        return records
    records = []
    for rate, seed, method in _cells(args):
        records.append(run_cell(
            method, rate, budget=args.budget, seed=seed, take=args.take, tag=tag,
            overrides=args.overrides, log=lambda line: print(line, flush=True),
        ))
        save(records)
    return records


if __name__ == "__main__":
    main()
