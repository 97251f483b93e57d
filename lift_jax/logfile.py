"""Copies of the lift_jax logger's records in a file: an evaluation's eval.log, a secondary process's own log."""

from __future__ import annotations

import contextlib
import logging
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
