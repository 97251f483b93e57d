#!/usr/bin/env bash
# Start a vLLM OpenAI-compatible server to act as LIFT's QA generator (the paper: Qwen2.5-72B-Instruct, 8 GPUs).
#
# Usage: scripts/serve_vllm_generator.sh [MODEL] [extra `vllm serve` arguments ...]
#   MODEL            default Qwen/Qwen2.5-72B-Instruct; it is also the served model name
# Environment:
#   HOST             default 127.0.0.1 (bind 0.0.0.0 only on a trusted network, and then set VLLM_API_KEY)
#   PORT             default 8000
#   TP               tensor-parallel size, default: the number of visible GPUs
#   MAX_MODEL_LEN    default 8192 (a prompt is at most ~2,500 characters of context + sentence + instructions)
#   VLLM_API_KEY     optional; if set, vLLM requires it as a Bearer token. Give the client the same value in the
#                    variable named by generator.api_key_env (default OPENAI_API_KEY). Never write a key here.
#
# Then generate (here or on another host) with:
#   python -m lift_jax.synth --config <name> --config.document=DOC --config.output_dir=DIR \
#     --config.generator.kind=openai --config.generator.base_url=http://HOST:PORT/v1 \
#     --config.generator.model=MODEL
set -euo pipefail
model=${1:-Qwen/Qwen2.5-72B-Instruct}
[ "$#" -gt 0 ] && shift
if ! command -v vllm >/dev/null 2>&1; then
  echo "error: vllm is not installed; on a GPU host: pip install vllm" >&2
  exit 1
fi
tp=${TP:-$(nvidia-smi -L 2>/dev/null | wc -l)}
[ "$tp" -ge 1 ] || tp=1
exec vllm serve "$model" \
  --host "${HOST:-127.0.0.1}" \
  --port "${PORT:-8000}" \
  --tensor-parallel-size "$tp" \
  --max-model-len "${MAX_MODEL_LEN:-8192}" \
  --served-model-name "$model" \
  "$@"
