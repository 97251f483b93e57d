"""The one base of every error lift_jax raises on purpose, and the generic kinds several modules share.

The CLIs catch `LiftError` (and nothing broader) and print it as one `error:` line with exit code 2; any other
exception is a bug and keeps its traceback. Each error class also keeps a builtin base (ValueError,
RuntimeError, FileNotFoundError) so callers that catch those still work.
"""

from __future__ import annotations


class LiftError(Exception):
    """Base of every error lift_jax raises on purpose (bad input, an unusable model, generator or cache)."""


class ConfigError(LiftError, ValueError):
    """A setting that cannot work; the message names the field and what to use instead."""


class MissingInputError(LiftError, FileNotFoundError):
    """A file or directory the user named does not exist (or is not what it must be)."""


class CorruptFileError(LiftError, ValueError):
    """A file of a run or an evaluation is damaged beyond what a crash leaves (more than a torn last line)."""


class CheckpointError(LiftError, ValueError):
    """A checkpoint file is missing, malformed or inconsistent."""
