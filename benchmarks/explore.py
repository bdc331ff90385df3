"""Runs `pruning.py` cells side by side, one process each, and prints one table.

How tfadmm's defaults were chosen (see RESULTS.md): each named configuration
is a JSON override of `pruning.ADMMConfig`, run at one rate and budget; the
choice reads validation accuracy only.

    python benchmarks/explore.py --rate 246 --budget 30 --jobs 8 --threads 2 \
        --config 'base={}' --config 'every100={"update_every_steps": 100}'
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def launch(name, config, args, out_dir):
    method, overrides = "", config
    if not config.lstrip().startswith("{"):
        method, _, overrides = config.partition(":")
    methods = [method] if method else args.methods
    out = out_dir / f"{name}.json"
    command = [sys.executable, str(HERE / "pruning.py"), "--rates", str(args.rate),
               "--budget", str(args.budget), "--seeds", *map(str, args.seeds),
               "--methods", *methods, "--config", overrides, "--out", str(out)]
    if args.take:
        command += ["--take", str(args.take)]
    env = dict(os.environ, BENCH_THREADS=str(args.threads))
    log = open(out_dir / f"{name}.log", "w")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=246)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=["tfadmm-progressive"])
    parser.add_argument("--take", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", action="append", default=[],
                        help="NAME=[METHOD:]JSON, repeatable")
    parser.add_argument("--out-dir", type=pathlib.Path, default=HERE / "cache" / "explore")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    pending = [c.partition("=")[::2] for c in args.config]
    running, outputs = [], {}
    while pending or running:
        while pending and len(running) < args.jobs:
            name, config = pending.pop(0)
            process, out = launch(name, config, args, args.out_dir)
            running.append((name, process))
            outputs[name] = out
        time.sleep(2)
        running = [(n, p) for n, p in running if p.poll() is None]
    summary = {}
    for name, out in outputs.items():
        if not out.exists():
            print(f"{name}: no result (see {args.out_dir / name}.log)")
            continue
        for r in json.loads(out.read_text())["records"]:
            summary.setdefault(name, []).append(r)
            print(f"{name:24s} {r['method']:20s} seed {r['seed']} val {r['val_accuracy']:.4f} "
                  f"test {r['test_accuracy']:.4f} rate {r['rate']:.1f}x {r['seconds']:.0f}s")
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()


def render(directories, names=None):
    """Markdown tables of the exploration runs found in `directories`.

    Finished runs (their JSON records) with validation and test accuracy; and,
    from the logs, every run's stage-1 validation accuracy (after hard mapping
    and after retraining), which also covers runs stopped early.
    """
    import re

    finished, stages = [], []
    for directory in directories:
        for log in sorted(pathlib.Path(directory).glob("*.log")):
            name = log.stem
            if names and name not in names:
                continue
            out = log.with_suffix(".json")
            if out.exists():
                data = json.loads(out.read_text())
                for r in data["records"]:
                    finished.append((name, r, data["budget"]))
            for line in log.read_text().splitlines():
                match = re.match(r"\s+stage 1: (\d+) ADMM \+ (\d+) retrain epochs, validation "
                                 r"([\d.]+) after hard mapping, ([\d.]+) after retraining", line)
                if match:
                    stages.append((name, *match.groups()))
                else:
                    match = re.match(r"\s+stage 1: (\d+) ADMM \+ (\d+) retrain epochs, "
                                     r"validation ([\d.]+), rate", line)
                    if match:
                        stages.append((name, match[1], match[2], "-", match[3]))
    lines = ["| run | method | budget | validation | test | seconds |", "|---|---|--:|--:|--:|--:|"]
    for name, r, budget in finished:
        lines.append(f"| {name} | {r['method']} | {budget} | {r['val_accuracy']:.2%} | "
                     f"{r['test_accuracy']:.2%} | {r['seconds']:.0f} |")
    lines += ["", "| run | stage 1 ADMM + retrain epochs | validation after hard mapping | "
              "after retraining |", "|---|--:|--:|--:|"]
    for name, admm, retrain, mapped, retrained in stages:
        mapped = f"{float(mapped):.2%}" if mapped != "-" else "-"
        lines.append(f"| {name} | {admm} + {retrain} | {mapped} | {float(retrained):.2%} |")
    return "\n".join(lines)
