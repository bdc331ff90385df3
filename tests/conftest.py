"""Fixed seeds and quiet TensorFlow for every test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import sys  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402

import cli  # noqa: E402

# `tfadmm_cli` is this checkout's `cli/` package (pyproject maps it so), also
# when another checkout is the installed one.
sys.modules.setdefault("tfadmm_cli", cli)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
