#!/usr/bin/env bash
# Create (or reuse) .venv, install lift_jax with its runtime and test extras and both bundled small models, run
# ruff and the suite, two test files at a time (pytest-xdist: the XLA compilations of one test mostly use one
# core, and the session's compilation cache is shared by both workers, see tests/conftest.py), in the order
# tests/conftest.py gives (modules with slow tests first; xdist would otherwise start the files with the most
# tests first and leave the long one-test files for the end). Extra arguments go to pytest (e.g.
# scripts/test.sh -m "not slow", or -n 0 for one process).
set -euo pipefail
cd "$(dirname "$0")/.."
LIFT_JAX_EXTRAS=test
source scripts/setup_env.sh
python -m ruff check lift_jax tests benchmarks scripts configs notebooks
python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder "$@"
