"""XLA_FLAGS for the subprocesses tests start: the test process's own flags with another simulated device count."""

from __future__ import annotations

import os

_DEVICE_COUNT = "--xla_force_host_platform_device_count"


def xla_flags_with_devices(devices: int | None) -> str:
    """This process's XLA_FLAGS (e.g. the one-thread setting under pytest-xdist, tests/conftest.py) with `devices`
    simulated CPU devices, or the default single device for None."""
    kept = [flag for flag in os.environ.get("XLA_FLAGS", "").split() if not flag.startswith(_DEVICE_COUNT)]
    return " ".join(kept + ([f"{_DEVICE_COUNT}={devices}"] if devices is not None else []))
