#!/usr/bin/env bash
# Create (or reuse) .venv, install lift_jax with its runtime and test extras and both bundled small models, run
# ruff and the suite. Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow").
#
# Two pytest workers (pytest-xdist, one test file per worker at a time) when the machine has at least 2 cores and
# 14 GiB of memory available: most tests are tiny models whose compilation and Python run on one core, so two
# files at once use both; the two largest real-model tests at once need about 12 GiB. Otherwise (or with
# LIFT_JAX_TEST_WORKERS=0) one process. The files with slow tests are handed out first (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
LIFT_JAX_EXTRAS=test
source scripts/setup_env.sh
python -m ruff check lift_jax tests benchmarks scripts configs notebooks

available_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
cores=$(nproc 2>/dev/null || echo 1)
workers=${LIFT_JAX_TEST_WORKERS:-$(( cores >= 2 && ${available_kib:-0} >= 14 * 1024 * 1024 ? 2 : 0 ))}
if [ "$workers" -gt 0 ]; then
  echo "pytest with $workers workers (cores $cores, $(( ${available_kib:-0} / 1048576 )) GiB available)"
  python -m pytest -q -n "$workers" --dist loadfile --no-loadscope-reorder --durations=30 "$@"
else
  python -m pytest -q --durations=30 "$@"
fi
