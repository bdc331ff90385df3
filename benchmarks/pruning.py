"""Pruning quality: tfadmm (progressive, one-shot) vs tfmot on LeNet-5 / Fashion-MNIST.

Every method starts from the same cached dense baseline (`common.dense_baseline`)
and gets the same epoch budget after it. Per-layer sparsities keep the ECCV 2018
LeNet-5 proportions, scaled to each overall rate (`common.layer_sparsities`).

- tfadmm progressive: two stages (half the rate, then the rate), half the budget each;
- tfadmm one-shot: one stage with the whole budget;
- tfmot: `prune_low_magnitude` + `PolynomialDecay` in its own virtualenv
  (`peer_tfmot.py`, made here on first use under `benchmarks/cache/tfmot-venv`).

In a tfadmm stage, a share of the epochs is the ADMM phase and the rest masked
retraining (cosine-decayed learning rate); in each retraining the epoch with the
best validation accuracy is kept. No choice ever looks at the test set.

    python benchmarks/pruning.py --rates 10 40 100 246 --budget 30 --seeds 0 1
    python benchmarks/pruning.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import common  # noqa: E402
import keras  # noqa: E402

import tfadmm  # noqa: E402

METHODS = ("tfadmm-progressive", "tfadmm-oneshot", "tfmot")
VENV = common.CACHE / "tfmot-venv"


@dataclasses.dataclass(frozen=True)
class ADMMConfig:
    """How one tfadmm stage spends its epochs.

    Attributes:
        admm_share: share of a stage's epochs in the ADMM phase (the rest retrains).
        rho, rho_multiplier, rho_max: `tfadmm.wrap`'s penalty schedule.
        update_every_steps: steps between Z/U updates (None: once per epoch).
        rho_final: if set, `rho_multiplier` is derived so that rho reaches it at
            the last Z/U update of each ADMM phase.
        learning_rate: Adam's peak learning rate, ADMM and retraining alike.
        admm_schedule: "constant", or "restart" (cosine decay within each
            Z/U period, restarted at every update, as the authors' code does).
        retrain_schedule: "constant" or "cosine" (to 0 over the retraining).
    """

    admm_share: float = 0.5
    rho: float = 1e-3
    rho_multiplier: float = 1.3
    rho_max: float | None = None
    update_every_steps: int | None = None
    rho_final: float | None = None
    learning_rate: float = 1e-3
    admm_schedule: str = "constant"
    retrain_schedule: str = "cosine"


def _admm_lr(config, steps_per_epoch, epochs):
    period = config.update_every_steps or steps_per_epoch
    if config.admm_schedule == "restart":
        return keras.optimizers.schedules.CosineDecayRestarts(
            config.learning_rate, period, t_mul=1.0, m_mul=1.0, alpha=0.01
        )
    return config.learning_rate


def _retrain_lr(config, steps):
    if config.retrain_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, max(1, steps))
    return config.learning_rate


def stage_epochs(budget, stages):
    """Splits `budget` epochs over `stages` stages (earlier stages get the remainder last)."""
    base, extra = divmod(budget, stages)
    return [base + (1 if i >= stages - extra else 0) for i in range(stages)]


def tfadmm_prune(dense, splits, stage_targets, *, budget, seed, config, log=print):
    """Runs tfadmm stages from a copy of `dense`; returns `(plain model, record)`."""
    keras.utils.set_random_seed(seed)
    model = common.clone(dense)
    steps = int(splits.train.cardinality())
    epoch_index = 0
    best_val = None
    for stage, (targets, epochs) in enumerate(
        zip(stage_targets, stage_epochs(budget, len(stage_targets)), strict=True)
    ):
        admm_epochs = min(epochs - 1, max(1, int(config.admm_share * epochs + 0.5)))
        retrain_epochs = epochs - admm_epochs
        multiplier = config.rho_multiplier
        if config.rho_final is not None:
            updates = admm_epochs * steps // (config.update_every_steps or steps)
            multiplier = (config.rho_final / config.rho) ** (1 / max(1, updates - 1))
        wrapped = tfadmm.wrap(
            model,
            {name: tfadmm.Sparsity(s) for name, s in targets.items()},
            rho=config.rho, rho_multiplier=multiplier, rho_max=config.rho_max,
            update_every_steps=config.update_every_steps,
        )
        common.compile_classifier(
            wrapped, keras.optimizers.Adam(_admm_lr(config, steps, admm_epochs))
        )
        for _ in range(admm_epochs):
            wrapped.fit(splits.train_for_seed(seed * 10_000 + epoch_index), epochs=1, verbose=0)
            epoch_index += 1
        tfadmm.project(wrapped)
        mapped = common.accuracy(wrapped.model, splits.validation)
        common.compile_classifier(
            wrapped, keras.optimizers.Adam(_retrain_lr(config, retrain_epochs * steps))
        )
        best_val, best_weights = -1.0, None
        for _ in range(retrain_epochs):
            wrapped.fit(splits.train_for_seed(seed * 10_000 + epoch_index), epochs=1, verbose=0)
            epoch_index += 1
            val = common.accuracy(wrapped.model, splits.validation)
            if val > best_val:
                best_val, best_weights = val, wrapped.model.get_weights()
        wrapped.model.set_weights(best_weights)
        log(f"  stage {stage + 1}: {admm_epochs} ADMM + {retrain_epochs} retrain epochs, "
            f"validation {mapped:.4f} after hard mapping, {best_val:.4f} after retraining, "
            f"rate {common.achieved_rate(wrapped.model):.1f}x")
        model = wrapped
    return tfadmm.strip(model), {"val_accuracy": best_val}


def run_tfadmm(method, dense, splits, rate, *, budget, seed, config, log=print):
    final = common.layer_sparsities(rate)
    if method == "tfadmm-progressive":
        stages = [common.layer_sparsities(rate / 2), final]
    else:
        stages = [final]
    start = time.perf_counter()
    model, record = tfadmm_prune(
        dense, splits, stages, budget=budget, seed=seed, config=config, log=log
    )
    record.update(
        seconds=time.perf_counter() - start,
        test_accuracy=common.accuracy(model, splits.test),
        rate=common.achieved_rate(model),
    )
    return model, record


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


def run_tfmot(rate, *, budget, seed, take=None, timing=0, tag="", log=print):
    """Runs `peer_tfmot.py` in the tfmot virtualenv; returns its JSON record."""
    python = ensure_venv(log)
    _, npz, _ = common.baseline_paths(tag)
    command = [
        str(python), str(common.HERE / "peer_tfmot.py"),
        "--sparsities", json.dumps(common.layer_sparsities(rate)),
        "--baseline", str(npz), "--budget", str(budget), "--seed", str(seed),
    ]
    if take:
        command += ["--take", str(take)]
    if timing:
        command += ["--timing", str(timing)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"peer_tfmot.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def model_path(method, rate, seed, tag=""):
    """Where a tfadmm cell's final (stripped) model is kept, for the export sizes."""
    return common.CACHE / "models" / f"{method}-{rate:g}x-seed{seed}{tag}.keras"


def run_cell(method, dense, splits, rate, *, budget, seed, config, take, tag, log=print):
    if method == "tfmot":
        record = run_tfmot(rate, budget=budget, seed=seed, take=take, tag=tag, log=log)
    else:
        model, record = run_tfadmm(method, dense, splits, rate, budget=budget, seed=seed,
                                   config=config, log=log)
        path = model_path(method, rate, seed, tag)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        record["model"] = str(path)
    record.update(method=method, target_rate=rate, seed=seed, budget=budget)
    log(f"{method} {rate}x seed {seed}: test {record['test_accuracy']:.4f} "
        f"(validation {record['val_accuracy']:.4f}), rate {record['rate']:.1f}x, "
        f"{record['seconds']:.0f} s")
    return record


# Chosen at 246x on validation accuracy (RESULTS.md, "How the defaults were chosen"):
# Z/U updates every 100 steps with rho x1.07 per update (about x1.3 per epoch).
DEFAULT_CONFIG = ADMMConfig(update_every_steps=100, rho_multiplier=1.07)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 40, 100, 246])
    parser.add_argument("--budget", type=int, default=30, help="epochs after the baseline")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--quick", action="store_true",
                        help="6,000 training images, budget 2, rates 10 and 246, one seed")
    parser.add_argument("--take", type=int, default=None, help="training images")
    parser.add_argument("--config", default="{}", help="JSON overrides of ADMMConfig")
    parser.add_argument("--out", type=pathlib.Path, default=common.CACHE / "pruning.json")
    parser.add_argument("--jobs", type=int, default=1,
                        help="cells run side by side, one process each")
    args = parser.parse_args(argv)
    if args.quick:
        args.take, args.budget, args.rates, args.seeds = args.take or 6000, 2, [10, 246], [0]
    return args


def _cells(args):
    return [(rate, seed, method) for rate in args.rates for seed in args.seeds
            for method in args.methods]


def _finished(out, args, config):
    """Whether `out` holds a cell already run with these settings (so a rerun resumes)."""
    try:
        done = json.loads(out.read_text())
    except (OSError, ValueError):  # not there, or cut short by an interrupted write
        return False
    return (done.get("budget"), done.get("take"), done.get("config")) == (
        args.budget, args.take, dataclasses.asdict(config)) and bool(done.get("records"))


def _run_parallel(args, config):
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
        if _finished(out, args, config):
            print(f"{method} {rate}x seed {seed}: kept from {out.name}", flush=True)
            return json.loads(out.read_text())["records"]
        command = [sys.executable, __file__, "--rates", str(rate), "--seeds", str(seed),
                   "--methods", method, "--budget", str(args.budget), "--config", args.config,
                   "--out", str(out)]
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
    config = dataclasses.replace(DEFAULT_CONFIG, **json.loads(args.config))
    tag = f"-take{args.take}" if args.take else ""
    splits = common.load_splits(0, take=args.take)
    dense, baseline = common.dense_baseline(
        splits, epochs=2 if args.take else common.BASELINE_EPOCHS, tag=tag,
        log=lambda line: print(line, flush=True),
    )
    print(f"baseline: test {baseline['test_accuracy']:.4f}", flush=True)

    def save(records):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(
            {"baseline": baseline, "config": dataclasses.asdict(config),
             "budget": args.budget, "take": args.take, "records": records}, indent=1))

    if args.jobs > 1:
        records = _run_parallel(args, config)
        save(records)
        return records
    records = []
    for rate, seed, method in _cells(args):
        records.append(run_cell(
            method, dense, splits, rate, budget=args.budget, seed=seed, config=config,
            take=args.take, tag=tag, log=lambda line: print(line, flush=True),
        ))
        save(records)
    return records


if __name__ == "__main__":
    main()
