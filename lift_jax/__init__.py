"""lift_jax: LIFT (Long Input Fine-Tuning) in JAX / Flax NNX."""

__version__ = "0.1.0"
