#!/usr/bin/env bash
# scripts/absorb_multiprocess.sh N [absorb arguments...]
#
# Runs `python -m lift_jax.absorb ARGS` as N local processes of one run (JAX_NUM_PROCESSES, JAX_PROCESS_ID and
# a coordinator on 127.0.0.1:<free port>, or LIFT_JAX_COORDINATOR_PORT). Each process keeps the devices it
# sees (on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count=K for K devices per process). Exits with
# the first non-zero status of a process, or 0.
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 N [absorb arguments...]  (N: number of processes)" >&2
    exit 2
fi
n=$1
shift
python=${PYTHON:-python}
port=${LIFT_JAX_COORDINATOR_PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

pids=()
for ((i = 0; i < n; i++)); do
    JAX_NUM_PROCESSES=$n JAX_PROCESS_ID=$i JAX_COORDINATOR_ADDRESS=127.0.0.1:$port \
        "$python" -m lift_jax.absorb "$@" &
    pids+=($!)
    echo "absorb_multiprocess: process $i is pid $!" >&2
done

status=0
for ((i = 0; i < n; i++)); do
    if wait "${pids[$i]}"; then
        continue
    else
        code=$?
        echo "absorb_multiprocess: process $i (pid ${pids[$i]}) exited with status $code" >&2
        [[ $status -ne 0 ]] || status=$code
    fi
done
exit $status
