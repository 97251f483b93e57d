"""Wall-clock marks of an absorb run and its time to first answer token."""

from __future__ import annotations

import dataclasses
import time

import ml_collections

from lift_jax.absorbing.settings import prompt_format
from lift_jax.answering import Answerer
from lift_jax.models import LoadedModel
from lift_jax.sampling import SamplingParams

FIRST_TOKEN_PROBE = "What is the document about?"  # any question: only the latency of its first token is kept


@dataclasses.dataclass
class Timing:
    """Wall-clock marks of one absorb run (seconds since the document was read)."""

    start: float = dataclasses.field(default_factory=time.perf_counter)
    marks: dict[str, float] = dataclasses.field(default_factory=dict)

    def mark(self, name: str) -> None:
        """Record `name` at the current time (first occurrence wins)."""
        self.marks.setdefault(name, round(time.perf_counter() - self.start, 3))


def time_to_first_token(loaded: LoadedModel, cfg: ml_collections.ConfigDict, timing: Timing) -> dict[str, float]:
    """Decode one answer token with the fresh adapter and return the time-to-first-token breakdown (seconds).

    `overlapped_s`: document in -> first answer token out, as this run did it. `sequential_estimate_s`: the same
    had training started only after generation ended (generation time + training time + first token); an
    estimate, since overlapped training shared the machine with the generator.
    """
    began = time.perf_counter()
    Answerer(loaded, prompt_format(cfg), SamplingParams(max_new_tokens=1)).answer([FIRST_TOKEN_PROBE])
    first_token = time.perf_counter() - began
    timing.mark("first_answer_token")
    m = timing.marks
    training = m["training_done"] - m.get("first_step_started", m["training_done"])
    generation = m.get("generation_done", m.get("model_loaded", 0.0))
    return {
        "overlapped_s": m["first_answer_token"],
        "sequential_estimate_s": round(generation + training + (m["adapter_written"] - m["training_done"])
                                       + first_token, 3),
        "first_token_decode_s": round(first_token, 3),
    }
