"""Export sizes of LeNet-5 pruned 10x, 40x and 100x (random weights: sizes need no training).

Writes benchmarks/results/export_size.md. Run from the repository root:

    TF_CPP_MIN_LOG_LEVEL=3 python benchmarks/export_size.py
"""

from __future__ import annotations

import gzip
import os
import pathlib
import tempfile

import keras
import numpy as np
import tensorflow as tf

import tfadmm

RATES = (10, 40, 100)
RESULTS = pathlib.Path(__file__).parent / "results" / "export_size.md"


def measure(rate, folder):
    keras.utils.set_random_seed(rate)
    targets = {"*": tfadmm.Sparsity(1 - 1 / rate)}
    model = tfadmm.strip(tfadmm.wrap(tfadmm.models.get("lenet5"), targets))
    return measure_model(model, folder, f"{rate}x")


def measure_model(model, folder, label):
    """Export sizes of one compressed model: tfadmm's SavedModel, TFLite, gzipped .keras."""
    report = tfadmm.build_report(model)
    stem = label.replace(" ", "_").replace("/", "_")
    compact = tfadmm.export(model, folder / f"sm{stem}")
    tflite = tfadmm.export(model, folder / f"m{stem}.tflite", "tflite", measure_dense=False)
    model.save(folder / f"m{stem}.keras")
    gzipped = len(gzip.compress((folder / f"m{stem}.keras").read_bytes(), compresslevel=9))
    x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype("float32")
    served = tf.saved_model.load(str(folder / f"sm{stem}")).signatures["serving_default"]
    diff = float(np.max(np.abs(served(tf.constant(x))["output_0"].numpy() - model(x).numpy())))
    return {
        "target": label,
        "pruning rate": f"{report.pruning_rate:.1f}x",
        "non-zeros": f"{report.nonzeros:,}",
        "dense SavedModel": compact.dense_savedmodel_bytes,
        "compressed SavedModel": compact.bytes,
        "gzipped .keras": gzipped,
        "TFLite (sparsity)": tflite.bytes,
        "theoretical minimum": compact.theoretical_bytes,
        "max abs diff": f"{diff:.1e}",
    }


def render(rows):
    headers = list(rows[0])
    out = [
        "# Export sizes: LeNet-5 (430,500 kernel weights, 431,080 parameters)",
        "",
        "Random weights pruned by `tfadmm.wrap` + `tfadmm.strip` with `Sparsity(1 - 1/rate)` on",
        "every layer. Bytes on disk. Dense SavedModel: Keras' `model.export`; compressed",
        "SavedModel: `tfadmm.export`; gzipped .keras: the pruned model saved dense, then gzip -9;",
        "TFLite: `EXPERIMENTAL_SPARSITY`; theoretical minimum: non-zeros x 32 bits + the",
        "cheaper index (bitmask or relative), plus the biases. `max abs diff`: compressed",
        "SavedModel vs the Keras model on 4 random inputs.",
        "",
        "Both SavedModels carry a graph of about 57-60 KB (`saved_model.pb`), a fixed cost that",
        "dominates at high rates; the compressed one's `variables/` holds the packed weights,",
        "within a few percent of the theoretical minimum at byte-aligned widths. Keras'",
        "dense export writes each weight twice (its `variables/` is about 2 x 1.72 MB).",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("--:" for _ in headers) + "|",
    ]
    for row in rows:
        cells = [f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(rate, pathlib.Path(tmp)) for rate in RATES]
    text = render(rows)
    os.makedirs(RESULTS.parent, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
