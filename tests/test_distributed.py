"""Process settings of a multi-process run: config and environment, and the errors for unusable ones."""

from __future__ import annotations

import pytest

from lift_jax.absorbing import local_rows
from lift_jax.absorbing.training import own_data_state
from lift_jax.cli import UsageError
from lift_jax.config import base_config
from lift_jax.distributed import ProcessSetup, process_setup
from lift_jax.models.weight_files import CheckpointError


def test_unset_fields_come_from_the_environment_and_default_to_one_process():
    cfg = base_config()
    assert process_setup(cfg, env={}) == ProcessSetup(1, 0, "")
    env = {"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1", "JAX_COORDINATOR_ADDRESS": "127.0.0.1:1234"}
    assert process_setup(cfg, env=env) == ProcessSetup(2, 1, "127.0.0.1:1234")
    cfg.mesh.num_processes, cfg.mesh.process_id, cfg.mesh.coordinator_address = 4, 3, "10.0.0.2:8476"
    assert process_setup(cfg, env=env) == ProcessSetup(4, 3, "10.0.0.2:8476")


def test_unusable_process_settings_are_usage_errors():
    cfg = base_config()
    cfg.mesh.num_processes = 2
    with pytest.raises(UsageError, match=r"needs mesh.process_id in \[0, 2\)"):
        process_setup(cfg, env={})
    cfg.mesh.process_id = 1
    with pytest.raises(UsageError, match="needs mesh.coordinator_address=HOST:PORT of process 0"):
        process_setup(cfg, env={})
    with pytest.raises(UsageError, match="must be integers"):
        process_setup(base_config(), env={"JAX_NUM_PROCESSES": "two"})


def test_batch_rows_must_split_over_the_processes():
    assert local_rows(8, 2) == 4
    with pytest.raises(UsageError, match="train.batch_size=6 rows do not split over 4 processes"):
        local_rows(6, 4)


def test_checkpoint_data_state_per_process_and_from_single_process_runs():
    state = {"epoch": 2, "position": 12}
    assert own_data_state([state], 7) == state
    assert own_data_state(state, 7) == state  # a checkpoint written before per-process states
    with pytest.raises(CheckpointError, match="checkpoint 7 was written by 2 process"):
        own_data_state([state, state], 7)
