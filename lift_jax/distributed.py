"""Several processes, one run: jax.distributed start-up from the `mesh` config group, and the small host-side
collectives the data pipeline and checkpoints need (every process must call them at the same point).

A single process (the default) never touches jax.distributed; every helper then returns its input unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np

from lift_jax.cli import UsageError

DETECT = 0  # mesh.num_processes = 0: jax.distributed.initialize() with no arguments (Cloud TPU, SLURM, ...)


@dataclasses.dataclass(frozen=True)
class ProcessSetup:
    """Where this process sits in the run: `num_processes` 1 is a single-process run, 0 detects the cluster."""

    num_processes: int
    process_id: int
    coordinator_address: str


def process_setup(cfg: ml_collections.ConfigDict, env: dict[str, str] | None = None) -> ProcessSetup:
    """The `mesh` group's process settings, each unset one (-1 / '') read from JAX_NUM_PROCESSES,
    JAX_PROCESS_ID, JAX_COORDINATOR_ADDRESS; UsageError if they cannot describe a run."""
    env = os.environ if env is None else env
    m = cfg.mesh
    try:
        count = m.num_processes if m.num_processes >= 0 else int(env.get("JAX_NUM_PROCESSES", "1"))
        index = m.process_id if m.process_id >= 0 else int(env.get("JAX_PROCESS_ID", "-1"))
    except ValueError as e:
        raise UsageError(f"JAX_NUM_PROCESSES / JAX_PROCESS_ID must be integers: {e}") from e
    address = m.coordinator_address or env.get("JAX_COORDINATOR_ADDRESS", "")
    if count in (1, DETECT):
        return ProcessSetup(count, 0 if count == 1 else index, address)
    if count < 0:
        raise UsageError(f"mesh.num_processes must be 1, 0 (detect the cluster) or a process count, got {count}")
    if not 0 <= index < count:
        raise UsageError(
            f"mesh.num_processes={count} needs mesh.process_id in [0, {count}) (or JAX_PROCESS_ID), got {index}"
        )
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(
            f"mesh.num_processes={count} needs mesh.coordinator_address=HOST:PORT of process 0 "
            f"(or JAX_COORDINATOR_ADDRESS), got {address!r}; for local processes use 127.0.0.1:<free port>"
        )
    return ProcessSetup(count, index, address)


def initialize(cfg: ml_collections.ConfigDict) -> ProcessSetup:
    """Join the run's processes before any JAX computation (nothing to do for a single process).

    The coordinator binds exactly the address it is given (127.0.0.1 for local runs), never all interfaces.
    A peer that stops heart-beating for `mesh.heartbeat_timeout_s` makes the coordination service terminate
    every other process with an error naming the lost task.
    """
    setup = process_setup(cfg)
    if setup.num_processes == 1:
        return setup
    # Only read by the CPU client: cross-process collectives on CPU need gloo; TPU and GPU ignore it.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeouts = {
        "heartbeat_timeout_seconds": int(cfg.mesh.heartbeat_timeout_s),
        "initialization_timeout": int(cfg.mesh.initialization_timeout_s),
    }
    if setup.num_processes == DETECT:
        jax.distributed.initialize(**timeouts)
        return ProcessSetup(jax.process_count(), jax.process_index(), setup.coordinator_address)
    jax.distributed.initialize(
        setup.coordinator_address,
        setup.num_processes,
        setup.process_id,
        coordinator_bind_address=setup.coordinator_address,
        **timeouts,
    )
    return setup


def all_processes(values: Sequence[int]) -> np.ndarray:
    """[process_count, len(values)] int32: every process's `values`, in process order."""
    local = np.asarray(values, np.int32)
    if jax.process_count() == 1:
        return local[None]
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(local, tiled=False))


def all_processes_json(value: object) -> list:
    """Every process's JSON-serialisable `value`, in process order (a list of one for a single process)."""
    if jax.process_count() == 1:
        return [value]
    from jax.experimental import multihost_utils

    blob = np.frombuffer(json.dumps(value).encode("utf-8"), np.uint8)
    lengths = all_processes([len(blob)])[:, 0]
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: len(blob)] = blob
    gathered = np.asarray(multihost_utils.process_allgather(padded, tiled=False))
    return [json.loads(row[:n].tobytes().decode("utf-8")) for row, n in zip(gathered, lengths, strict=True)]
