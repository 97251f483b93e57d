"""The one error type of lift_jax.export."""

from lift_jax.errors import LiftError


class ExportError(LiftError, ValueError):
    """The run cannot be exported as asked: no run, no adapter, an output path that cannot be written, or a
    model or module the format cannot express."""
