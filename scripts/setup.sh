#!/usr/bin/env bash
# Installs what tfadmm needs on a fresh Debian machine: the package with its test extras,
# and Debian's Fashion-MNIST files (the offline data set the quickstart and tests use).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
