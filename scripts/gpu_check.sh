#!/usr/bin/env bash
# ADMM training on Keras' JAX backend, for a GPU machine that has JAX, no TensorFlow and no
# internet: benchmarks/gpu_check.py prints one JSON line (epoch times, masks exact).
#
#   bash scripts/gpu_check.sh build          # here, online: wheels into dist/gpu_check/
#   bash scripts/gpu_check.sh run [ARGS...]  # there, offline: install them, run the check
#
# `build` writes wheels of tfadmm and of this Keras (the version installed here) with the
# dependencies Keras needs; `run` installs them from dist/gpu_check/ only (no index) into a
# virtual environment that sees the machine's own JAX (--system-site-packages), tfadmm
# without its dependencies (TensorFlow, TFDS: the check does not use them), and runs
# benchmarks/gpu_check.py with KERAS_BACKEND=jax and ARGS. Wheels with compiled code are
# for this machine's Python and platform: build with the Python the GPU machine has.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=dist/gpu_check
PYTHON="${PYTHON:-python3}"

case "${1:-}" in
  build)
    rm -rf "$WHEELS"
    keras_version=$("$PYTHON" -c "import keras; print(keras.__version__)")
    "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps . -w "$WHEELS"
    # Keras and what it needs, but not the numpy and ml_dtypes that JAX brings.
    "$PYTHON" -m pip wheel -q --disable-pip-version-check "keras==$keras_version" -w "$WHEELS"
    rm -f "$WHEELS"/numpy-*.whl "$WHEELS"/ml_dtypes-*.whl
    du -sh "$WHEELS"
    ;;
  run)
    shift
    # GPU_CHECK_VENV: a virtual environment to reuse (one with JAX); by default a new one.
    venv="${GPU_CHECK_VENV:-$(mktemp -d)/venv}"
    if [ ! -x "$venv/bin/python" ]; then
      "$PYTHON" -m venv --system-site-packages "$venv"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index \
      --find-links "$WHEELS" keras
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --no-deps \
      --force-reinstall \
      --find-links "$WHEELS" tfadmm
    KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" benchmarks/gpu_check.py "$@"
    ;;
  *)
    echo "usage: bash scripts/gpu_check.sh build | run [ARGS...]" >&2
    exit 2
    ;;
esac
