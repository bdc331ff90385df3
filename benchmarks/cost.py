"""Training cost: seconds per epoch of plain fit, the ADMM phase, retraining and tfmot pruning.

tfadmm's three are measured side by side by `overhead.epoch_costs` (interleaved
epochs in one process); tfmot runs in its own process (Keras 2), where plain
`tf_keras` fit and pruning are interleaved the same way, so each method is a
ratio to the plain fit measured with it. Z/U update times come from
`overhead.update_seconds`.

    python benchmarks/cost.py [--repeats 3] [--take N]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import common  # noqa: E402
import keras  # noqa: E402
import overhead  # noqa: E402
import pruning  # noqa: E402

from tfadmm import models  # noqa: E402


def measure(repeats=3, take=None, resnet=True, tag=""):
    """`{"epochs": {phase: (seconds, ratio)}, "updates": [(name, weights, seconds)]}`."""
    splits = common.load_splits(0, take=take)
    costs = overhead.epoch_costs(splits.train, repeats)
    plain = costs["plain fit"]
    epochs = {name: (sec, sec / plain) for name, sec in costs.items()}
    peer = pruning.run_tfmot(10, budget=1, seed=0, take=take, timing=repeats, tag=tag)
    plain_peer, pruning_peer = peer["plain_seconds"], peer["tfmot_seconds"]
    epochs["plain fit (tf_keras, tfmot's process)"] = (plain_peer, 1.0)
    epochs["tfmot pruning"] = (pruning_peer, pruning_peer / plain_peer)
    updates = [("LeNet-5", *overhead.update_seconds(models.get("lenet5")))]
    if resnet:
        weights, seconds = overhead.update_seconds(keras.applications.ResNet50(weights=None), 2)
        updates.append(("ResNet-50 kernels", weights, seconds))
    return {"epochs": epochs, "updates": updates, "repeats": repeats, "take": take}


def render(result):
    lines = [
        "| phase | seconds / epoch | ratio to plain fit |",
        "|---|--:|--:|",
        *[f"| {name} | {sec:.2f} | {ratio:.3f}x |" for name, (sec, ratio) in
          result["epochs"].items()],
        "",
        "| Z/U update (Sparsity 8x, every kernel) | weights | seconds |",
        "|---|--:|--:|",
        *[f"| {name} | {weights:,} | {sec:.4f} |" for name, weights, sec in result["updates"]],
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--take", type=int, default=None)
    args = parser.parse_args(argv)
    print(render(measure(args.repeats, args.take)))


if __name__ == "__main__":
    main()
