"""Shared fixtures. Eight simulated CPU devices so sharding tests can build real meshes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
from tiny_models import make_tiny_checkpoint, tiny_configs  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One saved tiny random checkpoint per family, made once per session."""
    root = tmp_path_factory.mktemp("tiny")
    return {name: make_tiny_checkpoint(name, root / name, seed=i) for i, name in enumerate(tiny_configs())}


@pytest.fixture(autouse=True)
def restore_lift_jax_logger():
    """CLIs run in-process (e.g. lift_jax.eval's log_to_stderr) configure the `lift_jax` logger for the rest of
    the process; give every test the logger as it found it."""
    import logging

    logger = logging.getLogger("lift_jax")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
