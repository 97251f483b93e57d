#!/usr/bin/env bash
# Create (or reuse) .venv, install lift_jax with its runtime and test extras and both bundled small models, run
# ruff and the suite. Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow"; two files at a time:
# -n 2 --dist loadfile --no-loadscope-reorder, not the default: one full run at 2 workers was OOM-killed on a
# machine shared with other jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
LIFT_JAX_EXTRAS=test
source scripts/setup_env.sh
python -m ruff check lift_jax tests benchmarks scripts configs notebooks
python -m pytest -q "$@"
