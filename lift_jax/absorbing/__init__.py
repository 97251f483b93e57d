"""The main job as a library: `prepare` a base model on the run's mesh, then `absorb_document` into it (or
`absorb` a config's document end to end). `python -m lift_jax.absorb` is its command line; the eval harness,
the benchmarks and the notebook call it directly."""

from lift_jax.absorbing.job import Prepared, absorb, absorb_document, check_inputs, prepare, prepare_adapter
from lift_jax.absorbing.settings import estimate_total_steps, local_rows, prompt_format
from lift_jax.absorbing.timing import Timing

__all__ = [
    "Prepared",
    "Timing",
    "absorb",
    "absorb_document",
    "check_inputs",
    "estimate_total_steps",
    "local_rows",
    "prepare",
    "prepare_adapter",
    "prompt_format",
]
