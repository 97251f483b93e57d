"""Where the lift_jax logger's records go besides the root logger: a file (an evaluation's eval.log, a secondary
process's own log) or stderr (a command line's progress)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


@contextlib.contextmanager
def logging_to(path: Path, *, exclusive: bool = False) -> Iterator[None]:
    """While the block runs, write lift_jax's records (INFO and up) to `path` as well, or to `path` only when
    `exclusive` (the console then stays quiet); the logger's level, handlers and propagation are restored after."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("lift_jax")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    if exclusive:
        logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
        handler.close()


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever `sys.stderr` is at the time of each record."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def log_to_stderr() -> None:
    """Show lift_jax's INFO records (progress, QA pairs generated vs reused) on stderr, once per process."""
    logger = logging.getLogger("lift_jax")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # absl puts a bare handler on the root logger; print each line once
