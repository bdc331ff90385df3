#!/usr/bin/env bash
# The main job: set up (.venv), then compress LeNet-5 on Fashion-MNIST with the quickstart recipe.
# Extra arguments go to `tfadmm run` (e.g. --quiet, --set stages.0.admm.epochs=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tfadmm run recipes/quickstart.yaml --output runs/quickstart --force "$@"
