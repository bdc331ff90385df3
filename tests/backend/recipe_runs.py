"""A recipe run through `tfadmm run` on Keras' JAX backend, TensorFlow blocked.

`test_jax_recipes.py` runs `main(directory)` in a subprocess with `KERAS_BACKEND=jax` and
`import tensorflow` failing (TensorBoard importable): a tiny `.npz` data set, a tiny CNN, a
pruning stage and a quantization stage; the same run interrupted in its second stage and
finished with `--resume`; and the commands that need TensorFlow. It prints what the test
checks as JSON; the run directories stay in `directory` for the test to read.
"""

from __future__ import annotations

import json
import pathlib
import sys

import keras
import numpy as np
from click.testing import CliRunner

from tests._interrupts import InterruptAtFit, Interrupted
from tfadmm.recipes import load_recipe, run_recipe
from tfadmm_cli.main import main as cli

SIZE = 12  # pixels a side
RECIPE = """\
version: 1
name: jax
model: {{file: {model}}}
data: {{name: quarters, source: npz, path: {data}, batch_size: 32, validation_split: 0.2}}
defaults:
  admm: {{epochs: 1, update_every_steps: 2}}
  retrain: {{epochs: 1}}
stages:
  - name: prune
    targets: {{"fc*": {{sparsity: 0.75}}}}
  - name: quantize
    targets: {{"conv*": {{bits: 2, per_channel: true}}}}
    admm: {{epochs: 2}}
"""


def tiny_cnn():
    """conv1, conv2, fc1, fc2 on 12x12 grey images, four classes (logits)."""
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv2"),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu", name="fc1"),
        keras.layers.Dense(4, name="fc2"),
    ], name="tiny_cnn")


def write_data(path, train=160, test=32):
    """A `.npz` data set of images whose label is their brightest quarter."""
    rng = np.random.default_rng(0)
    half = SIZE // 2

    def examples(n):
        x = rng.integers(0, 80, (n, SIZE, SIZE), dtype=np.uint8)
        y = rng.integers(0, 4, n)
        for image, label in zip(x, y, strict=True):
            top, left = divmod(int(label), 2)
            image[top * half:(top + 1) * half, left * half:(left + 1) * half] += 120
        return x, y

    x_train, y_train = examples(train)
    x_test, y_test = examples(test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return {"exit_code": result.exit_code, "output": result.output,
            "exception": None if result.exception is None or isinstance(
                result.exception, SystemExit) else repr(result.exception)}


def _kernels(path):
    model = keras.models.load_model(path)
    return {layer.name: keras.ops.convert_to_numpy(layer.kernel)
            for layer in model.layers if hasattr(layer, "kernel")}


def main(directory):
    directory = pathlib.Path(directory)
    write_data(directory / "data.npz")
    recipe = directory / "jax.yaml"
    keras.utils.set_random_seed(0)
    tiny_cnn().save(directory / "tiny_cnn.keras")
    recipe.write_text(RECIPE.format(data=directory / "data.npz",
                                    model=directory / "tiny_cnn.keras"))

    straight = _invoke("run", recipe, "--output", directory / "straight", "--quiet")

    resumed_dir = directory / "resumed"
    try:  # stage 1: 1 + 1, stage 2: its second ADMM epoch
        run_recipe(load_recipe(recipe), resumed_dir, verbose=0,
                   callbacks=[InterruptAtFit(4)])
        interrupted = False
    except Interrupted:
        interrupted = True
    state = json.loads((resumed_dir / "state.json").read_text())
    resumed = _invoke("run", recipe, "--output", resumed_dir, "--resume", "--quiet")

    kernels = _kernels(directory / "straight" / "model.keras")
    again = _kernels(resumed_dir / "model.keras")
    results = {
        "backend": keras.backend.backend(),
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
        "straight": straight,
        "interrupted": interrupted,
        "interrupted_at": state.get("position"),
        "resumed": resumed,
        "resumed_equal": all(np.array_equal(kernels[k], again[k]) for k in kernels),
        "zeros": {k: float(np.mean(v == 0)) for k, v in kernels.items()},
        "levels": {k: max(len(np.unique(v[..., c])) for c in range(v.shape[-1]))
                   for k, v in kernels.items()},
        "history": json.loads((directory / "straight" / "history.json").read_text()),
        "evaluate": _invoke("evaluate", directory / "straight"),
        "export_keras": _invoke("export", directory / "straight", "--format", "keras",
                                "--output", directory / "exported.keras"),
        "export_savedmodel": _invoke("export", directory / "straight", "--output",
                                     directory / "savedmodel"),
        "mirrored": _invoke("run", recipe, "--output", directory / "mirrored",
                            "--set", "distribute=mirrored"),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
