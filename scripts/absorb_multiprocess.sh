#!/usr/bin/env bash
# scripts/absorb_multiprocess.sh N [absorb arguments...]
#
# Runs `python -m lift_jax.absorb ARGS` as N local processes of one run (JAX_NUM_PROCESSES, JAX_PROCESS_ID and
# a coordinator on 127.0.0.1:<free port>, or LIFT_JAX_COORDINATOR_PORT). Each process keeps the devices it
# sees (on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count=K for K devices per process). Exits with
# the first non-zero status of a process, or 0. The processes run the project's .venv (created or reused
# through scripts/setup_env.sh, as demo.sh and test.sh do), or $PYTHON if set (an interpreter with lift_jax).
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 N [absorb arguments...]  (N: number of processes)" >&2
    exit 2
fi
n=$1
shift
if [[ -n ${PYTHON:-} ]]; then
    python=$PYTHON
else
    repo=$(cd "$(dirname "$0")/.." && pwd)
    (cd "$repo" && source scripts/setup_env.sh) >&2
    python=$repo/.venv/bin/python
fi
if ! "$python" -c 'import jax, lift_jax' 2>/dev/null; then
    echo "absorb_multiprocess: $python cannot import jax and lift_jax; unset PYTHON to use the project's .venv" \
        "(scripts/setup_env.sh) or set PYTHON to an interpreter with lift_jax installed" >&2
    exit 2
fi
port=${LIFT_JAX_COORDINATOR_PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

pids=()
for ((i = 0; i < n; i++)); do
    JAX_NUM_PROCESSES=$n JAX_PROCESS_ID=$i JAX_COORDINATOR_ADDRESS=127.0.0.1:$port \
        "$python" -m lift_jax.absorb "$@" &
    pids+=($!)
    echo "absorb_multiprocess: process $i is pid $!" >&2
done

# Report each process as it ends (the first failure names the lost process at once; the others follow when
# jax.distributed notices the missing peer, within mesh.heartbeat_timeout_s).
declare -A running  # pid -> process index
for ((i = 0; i < n; i++)); do running[${pids[$i]}]=$i; done
status=0
while [[ ${#running[@]} -gt 0 ]]; do
    code=0
    wait -n -p done_pid "${!running[@]}" || code=$?
    if [[ $code -ne 0 ]]; then
        echo "absorb_multiprocess: process ${running[$done_pid]} (pid $done_pid) exited with status $code" >&2
        [[ $status -ne 0 ]] || status=$code
    fi
    unset "running[$done_pid]"
done
exit $status
