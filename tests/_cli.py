"""Running `tfadmm` in a subprocess from this checkout (for kill -9 and multi-process tests)."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = (
    "import sys, cli; sys.modules.setdefault('tfadmm_cli', cli); "
    "from cli.main import main; main()"
)

TINY = """\
version: 1
name: tiny
seed: 0
model: {zoo: lenet5}
data: {name: fashion_mnist, batch_size: 64, take: 256, validation_split: 0.25, augment: false}
stages:
  - name: prune
    targets: {conv*: 0.5, fc*: 0.9}
    admm: {epochs: 2, rho: 0.01, optimizer: {name: sgd, learning_rate: 0.05}}
    retrain: {epochs: 1, optimizer: {name: sgd, learning_rate: 0.05}}
"""


def env(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def popen(*args, **extra_env):
    return subprocess.Popen([sys.executable, "-c", CLI, *map(str, args)], cwd=ROOT,
                            env=env(**extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def weights(path):
    import keras

    return [keras.ops.convert_to_numpy(w) for w in keras.models.load_model(path).weights]
