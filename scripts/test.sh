#!/usr/bin/env bash
# Set up (.venv), lint, and run the default test suite (slow end-to-end tests: add `-m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "error: pytest collected no tests (exit 5): the suite or its selection is broken" >&2
  exit 1
fi
exit "$status"
