"""logging_to: records reach the file only inside the block, and the lift_jax logger is left as it was."""

from __future__ import annotations

import logging
from pathlib import Path

from lift_jax.logfile import logging_to


def test_records_reach_the_file_only_inside_the_block(tmp_path: Path) -> None:
    logger = logging.getLogger("lift_jax")
    before = (logger.level, logger.propagate, list(logger.handlers))
    log = logging.getLogger("lift_jax.test")
    with logging_to(tmp_path / "a.log"):
        log.info("first document")
        assert logger.propagate
    log.warning("after the block")
    with logging_to(tmp_path / "b.log", exclusive=True):
        assert not logger.propagate
        log.info("second document")
    assert (logger.level, logger.propagate, list(logger.handlers)) == before
    first = (tmp_path / "a.log").read_text().splitlines()
    second = (tmp_path / "b.log").read_text().splitlines()
    assert [line.split(" INFO ")[-1] for line in first] == ["first document"]
    assert [line.split(" INFO ")[-1] for line in second] == ["second document"]
    assert " lift_jax.test INFO " in first[0]
