#!/usr/bin/env bash
# Installs what tfadmm needs on a fresh Debian/Ubuntu machine: a virtual environment in .venv
# with the package and its test extras (a stock system Python refuses `pip install`, PEP 668),
# and Debian's Fashion-MNIST files (the offline data set the quickstart and tests use).
# Uses the first `python3` on PATH; installs python3-venv with apt when venv cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "$@" >/dev/null
}

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  apt_install dataset-fashion-mnist
fi

if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv's ensurepip in a separate package.
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
fi

"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
