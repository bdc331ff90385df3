"""Which LeNet-5 layers tolerate quantization best: `tfadmm.quantization_sensitivity`.

On the shared dense LeNet-5 (`common.dense_baseline`) and the validation split,
each layer is quantized alone (per-channel scales, no training) to each level
set, and the layers ranked from the least to the most sensitive: the order in
which progressive stages should quantize them. The paper quantizes the middle
layers first and conv1 and fc2 last; this says whether the measurement agrees.

    python benchmarks/quantization_order.py        # writes results/quantization-order.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import common  # noqa: E402

import tfadmm  # noqa: E402

LEVELS = {"4-bit": tfadmm.Quantize(4, per_channel=True),
          "3-bit": tfadmm.Quantize(3, per_channel=True),
          "ternary": tfadmm.Ternary(per_channel=True),
          "binary": tfadmm.Binary(per_channel=True)}


def measure(model, validation):
    """`{level: QuantizationSensitivity.to_dict()}` for every level set."""
    return {name: tfadmm.quantization_sensitivity(model, constraint, validation).to_dict()
            for name, constraint in LEVELS.items()}


def render(result, command):
    lines = [f"Each LeNet-5 layer quantized alone (per-channel scales, no training) on the "
             f"validation split, from the dense baseline; `{command}`. Validation accuracy "
             f"with that layer quantized (dense: {result['base_accuracy']:.2%}); order: the "
             "least sensitive first (by the loss increase).", "",
             "| levels | " + " | ".join(common.LAYERS) + " | order | seconds |",
             "|---|" + "--:|" * len(common.LAYERS) + "---|--:|"]
    for name, r in result["levels"].items():
        lines.append(f"| {name} | " + " | ".join(f"{r['accuracy'][n]:.2%}" for n in common.LAYERS)
                     + f" | {', '.join(r['order'])} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=pathlib.Path,
                        default=common.records("quantization-order.json"))
    args = parser.parse_args(argv)
    command = "python benchmarks/quantization_order.py" + (
        "" if argv is None and len(sys.argv) == 1 else " " + " ".join(argv or sys.argv[1:]))
    splits = common.load_splits(0)
    model, _ = common.dense_baseline(splits)
    levels = measure(model, splits.validation)
    first = next(iter(levels.values()))
    result = {"command": command, "base_accuracy": first["base_accuracy"], "levels": levels}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(render(result, command))
    return result


if __name__ == "__main__":
    main()
