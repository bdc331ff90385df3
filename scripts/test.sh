#!/usr/bin/env bash
# Set up, lint, and run the default test suite (slow end-to-end tests: add `-m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ruff check .
exec python3 -m pytest "$@"
