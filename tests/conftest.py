"""Shared fixtures. Eight simulated CPU devices so sharding tests can build real meshes (one XLA compute thread
per pytest-xdist worker). One XLA compilation cache for the whole session, shared by every process the session
starts."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

# LLVM's -O0 for XLA's CPU kernels: most tests run tiny models whose time is compilation, and the matmuls of the
# real-model ones are library calls that the level does not touch (measured on test_batching + test_custom_vjps:
# 140 -> 101 s of CPU; a SmolLM2 greedy parity test 91 -> 85 s). XLA's HLO passes, fusion included, run as
# always; results move only in the last float32 bits (a tiny Llama's logits: at most 2e-6 from the default level).
_XLA_FLAGS = ["--xla_force_host_platform_device_count=8", "--xla_backend_optimization_level=0"]
if os.environ.get("PYTEST_XDIST_WORKER"):  # set by pytest-xdist before it loads this file
    # One thread per worker for XLA's matmuls: scripts/test.sh starts one worker per core, and two workers whose
    # thread pools each want both cores spend the difference waiting on each other.
    _XLA_FLAGS.append("--xla_cpu_multi_thread_eigen=false")
os.environ.setdefault("XLA_FLAGS", " ".join(_XLA_FLAGS))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
from tiny_models import make_tiny_checkpoint, tiny_configs  # noqa: E402

_SESSION_CACHE = "LIFT_JAX_TEST_XLA_CACHE"  # set by the process that made the cache (the controller under xdist)
_made_cache: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Share compiled XLA programs between the test process, its xdist workers and every `python -m lift_jax...`
    subprocess, in a directory that lives for this session only.

    The persistent cache is keyed by the compiled program's HLO, the compile options, the XLA flags and the
    jax/jaxlib versions, so a changed program is a new entry and nothing is reused across sessions. Every
    compilation is stored (no minimum compile time or size: the tiny models' programs compile in under the
    1 s lift_jax's CLIs require), and the size limit turns on jax's file lock so concurrent processes never
    read a half-written entry."""
    global _made_cache
    if _SESSION_CACHE not in os.environ:
        _made_cache = tempfile.mkdtemp(prefix="lift_jax_test_xla_")
        os.environ[_SESSION_CACHE] = _made_cache
    directory = os.environ[_SESSION_CACHE]
    settings = {
        "jax_compilation_cache_dir": directory,
        "jax_persistent_cache_min_compile_time_secs": 0,
        "jax_persistent_cache_min_entry_size_bytes": -1,
        "jax_compilation_cache_max_size": 16 << 30,
    }
    for name, value in settings.items():
        os.environ[name.upper()] = str(value)  # read by jax at import in subprocesses
    os.environ["LIFT_JAX_COMPILATION_CACHE"] = directory  # lift_jax.cli.enable_compilation_cache's directory
    import jax

    for name, value in settings.items():
        jax.config.update(name, value)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _made_cache is not None:
        shutil.rmtree(_made_cache, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One saved tiny random checkpoint per family, made once per session."""
    root = tmp_path_factory.mktemp("tiny")
    return {name: make_tiny_checkpoint(name, root / name, seed=i) for i, name in enumerate(tiny_configs())}


@pytest.fixture(autouse=True)
def restore_lift_jax_logger():
    """CLIs run in-process (e.g. the eval CLIs, through lift_jax.logfile.log_to_stderr) configure the `lift_jax`
    logger for the rest of the process; give every test the logger as it found it."""
    import logging

    logger = logging.getLogger("lift_jax")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with slow tests first (stable otherwise): under `pytest -n 2 --dist loadfile` (scripts/test.sh)
    the long modules then start at once and the many short ones fill the gaps, instead of one long module
    running alone at the end."""
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow") and item.module}
    items.sort(key=lambda item: item.module is None or item.module.__name__ not in slow_modules)
