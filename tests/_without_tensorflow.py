"""Runs Python code in a subprocess on another Keras backend, with TensorFlow blocked.

Keras' backend is fixed once Keras is imported (TensorFlow in the test process); a fresh
process on `KERAS_BACKEND=jax` (or `numpy`), where `import tensorflow` fails, shows what
works on a machine without TensorFlow.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BLOCKED = ("tensorflow", "tensorboard")

HAS_JAX = importlib.util.find_spec("jax") is not None
NO_JAX = "jax is not installed (pip install 'jax[cpu]'): the JAX backend cannot run"


def run_without_tensorflow(code, backend="jax", timeout=600, blocked=BLOCKED):
    """`subprocess.CompletedProcess` of `code` run in this checkout, TensorFlow blocked.

    `blocked` names the packages that cannot be imported there (default: TensorFlow and
    TensorBoard, which a JAX-only install may lack).
    """
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    block = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", block + code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
